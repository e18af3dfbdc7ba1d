//! One uncompressed RecordBatch v2, written record by record straight into
//! the caller's buffer: no record structs, no second copy of keys and
//! values. What a producer would send with `compression.type=none`; the
//! log's own writers (INSERT, jobs, the generator) use it.

use bytes::{BufMut, BytesMut};

use crate::batch::{BATCH_HEADER_LEN, LOG_OVERHEAD, MAGIC_V2};
use crate::error::{Error, Result};

/// Where the CRC-covered part of the header starts (the attributes).
const CRC_COVERED_FROM: usize = 21;

/// Builds one batch at the end of a buffer: [`BatchBuilder::push`] each
/// record, then [`BatchBuilder::finish`] writes the header. Base offset 0,
/// no producer id, creation timestamps.
#[derive(Debug)]
pub struct BatchBuilder<'a> {
    out: &'a mut BytesMut,
    /// Where the batch starts in `out`.
    start: usize,
    records: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl<'a> BatchBuilder<'a> {
    /// Starts a batch at the end of `out`, whose records' timestamps are
    /// stored relative to `base_timestamp_ms` (as kafka-protocol writes
    /// batches, the smallest of them; any value decodes the same).
    pub fn new(out: &'a mut BytesMut, base_timestamp_ms: i64) -> Self {
        let start = out.len();
        out.put_bytes(0, BATCH_HEADER_LEN);
        Self {
            out,
            start,
            records: 0,
            base_timestamp: base_timestamp_ms,
            max_timestamp: i64::MIN,
        }
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.records as usize
    }

    /// Whether no record was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Appends one record.
    pub fn push(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        timestamp_ms: i64,
    ) {
        let (timestamp_delta, offset_delta) = self.deltas(timestamp_ms);
        let body = len_around_value(timestamp_delta, offset_delta, key, headers) + bytes_len(value);
        self.out.reserve(body + varint_len(body as i64));
        put_varint(self.out, body as i64);
        self.put_fields_before_value(timestamp_delta, offset_delta, key);
        put_bytes(self.out, value);
        self.put_headers(headers);
        self.counted(timestamp_ms);
    }

    /// Appends one record whose value `write_value` writes at the end of
    /// the batch's buffer: the value goes straight into the batch, without
    /// a buffer of its own. The lengths in front of it are written for
    /// `value_len_guess` bytes (say, the value before's length) and the
    /// value is moved only when its own length takes another number of
    /// bytes. Returns the value's length.
    pub fn push_written(
        &mut self,
        key: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        timestamp_ms: i64,
        value_len_guess: usize,
        write_value: impl FnOnce(&mut BytesMut),
    ) -> usize {
        let (timestamp_delta, offset_delta) = self.deltas(timestamp_ms);
        let around_value = len_around_value(timestamp_delta, offset_delta, key, headers);
        let body_for = |value_len: usize| around_value + bytes_len_of(value_len);
        let guessed_body = body_for(value_len_guess);
        let body_len_bytes = varint_len(guessed_body as i64);
        let value_len_bytes = varint_len(value_len_guess as i64);

        let start = self.out.len();
        self.out.reserve(body_len_bytes + guessed_body);
        self.out.put_bytes(0, body_len_bytes);
        self.put_fields_before_value(timestamp_delta, offset_delta, key);
        let value_len_at = self.out.len();
        self.out.put_bytes(0, value_len_bytes);
        let value_at = self.out.len();
        write_value(self.out);
        let value_len = self.out.len() - value_at;
        let body = body_for(value_len);
        if varint_len(value_len as i64) != value_len_bytes
            || varint_len(body as i64) != body_len_bytes
        {
            // The guess was off by a length byte: write the record again.
            let value = self.out[value_at..].to_vec();
            self.out.truncate(start);
            self.push(key, Some(&value), headers, timestamp_ms);
            return value_len;
        }
        write_varint_at(&mut self.out[start..start + body_len_bytes], body as i64);
        write_varint_at(&mut self.out[value_len_at..value_at], value_len as i64);
        self.put_headers(headers);
        self.counted(timestamp_ms);
        value_len
    }

    /// The next record's timestamp and offset deltas.
    fn deltas(&self, timestamp_ms: i64) -> (i64, i64) {
        (
            timestamp_ms.wrapping_sub(self.base_timestamp),
            i64::from(self.records),
        )
    }

    /// The attributes, the timestamp and offset deltas, and the key.
    fn put_fields_before_value(
        &mut self,
        timestamp_delta: i64,
        offset_delta: i64,
        key: Option<&[u8]>,
    ) {
        self.out.put_u8(0); // attributes: none are defined for records
        put_varint(self.out, timestamp_delta);
        put_varint(self.out, offset_delta);
        put_bytes(self.out, key);
    }

    fn put_headers(&mut self, headers: &[(&str, Option<&[u8]>)]) {
        put_varint(self.out, headers.len() as i64);
        for (k, v) in headers {
            put_bytes(self.out, Some(k.as_bytes()));
            put_bytes(self.out, *v);
        }
    }

    /// Counts a record just written.
    fn counted(&mut self, timestamp_ms: i64) {
        self.records += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
    }

    /// Writes the header and CRC; an error if no record was pushed (a
    /// batch holds at least one), in which case `out` is left as it was.
    pub fn finish(self) -> Result<()> {
        if self.records == 0 {
            self.out.truncate(self.start);
            return Err(Error::invalid_batch("cannot encode an empty batch"));
        }
        let batch = &mut self.out[self.start..];
        let length = i32::try_from(batch.len() - LOG_OVERHEAD)
            .map_err(|_| Error::invalid_batch("a batch of more than 2 GiB"))?;
        let mut header = &mut batch[..BATCH_HEADER_LEN];
        header.put_i64(0); // base offset: the log assigns it
        header.put_i32(length);
        header.put_i32(-1); // partition leader epoch
        header.put_i8(MAGIC_V2);
        header.put_u32(0); // the CRC, below
        header.put_i16(0); // attributes: no compression, creation time
        header.put_i32(self.records - 1); // last offset delta
        header.put_i64(self.base_timestamp);
        header.put_i64(self.max_timestamp);
        header.put_i64(-1); // producer id
        header.put_i16(-1); // producer epoch
        header.put_i32(-1); // base sequence
        header.put_i32(self.records);
        let crc = crc32c::crc32c(&batch[CRC_COVERED_FROM..]);
        batch[CRC_COVERED_FROM - 4..CRC_COVERED_FROM].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }
}

/// Bytes of a zigzag varint.
fn varint_len(value: i64) -> usize {
    let zigzag = ((value << 1) ^ (value >> 63)) as u64;
    (64 - (zigzag | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(out: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.put_u8((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.put_u8(zigzag as u8);
}

/// Writes `value` as a zigzag varint that fills `slot` exactly (its
/// length is [`varint_len`]).
fn write_varint_at(slot: &mut [u8], value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    let last = slot.len() - 1;
    for (i, byte) in slot.iter_mut().enumerate() {
        *byte = (zigzag as u8 & 0x7f) | if i < last { 0x80 } else { 0 };
        zigzag >>= 7;
    }
}

/// Bytes of a length-prefixed field (-1 for none).
fn bytes_len(bytes: Option<&[u8]>) -> usize {
    match bytes {
        Some(b) => bytes_len_of(b.len()),
        None => 1,
    }
}

/// Bytes of a length-prefixed field of `len` bytes.
fn bytes_len_of(len: usize) -> usize {
    varint_len(len as i64) + len
}

/// Bytes of a record's body but its value: the attributes, the deltas,
/// the key and the headers.
fn len_around_value(
    timestamp_delta: i64,
    offset_delta: i64,
    key: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
) -> usize {
    1 + varint_len(timestamp_delta)
        + varint_len(offset_delta)
        + bytes_len(key)
        + headers_len(headers)
}

/// Bytes of a record's headers, their count included.
fn headers_len(headers: &[(&str, Option<&[u8]>)]) -> usize {
    varint_len(headers.len() as i64)
        + headers
            .iter()
            .map(|(k, v)| bytes_len(Some(k.as_bytes())) + bytes_len(*v))
            .sum::<usize>()
}

fn put_bytes(out: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.put_slice(b);
        }
        None => put_varint(out, -1),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    use super::*;
    use crate::batch::{NewRecord, decode_batch, encode_with_kafka_protocol, validate};

    #[test]
    fn writes_the_bytes_kafka_protocol_writes() {
        let long = Bytes::from(vec![b'x'; 300]);
        let records = vec![
            NewRecord {
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"v")),
                headers: vec![],
                timestamp_ms: 1_000,
            },
            NewRecord {
                key: None,
                value: Some(long.clone()),
                headers: vec![("h".into(), None)],
                timestamp_ms: 900,
            },
            NewRecord {
                key: Some(long),
                value: None,
                headers: vec![
                    ("a".into(), Some(Bytes::from_static(b"1"))),
                    ("b".into(), Some(Bytes::new())),
                ],
                timestamp_ms: 70_000_000,
            },
        ];
        let mut out = BytesMut::from(&b"before"[..]);
        let mut builder = BatchBuilder::new(&mut out, 900);
        for record in &records {
            let headers: Vec<(&str, Option<&[u8]>)> = record
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .collect();
            builder.push(
                record.key.as_deref(),
                record.value.as_deref(),
                &headers,
                record.timestamp_ms,
            );
        }
        assert_eq!(builder.len(), 3);
        builder.finish().unwrap();
        let mut reference = BytesMut::new();
        encode_with_kafka_protocol(&records, Compression::None, &mut reference).unwrap();
        assert_eq!(&out[..6], b"before");
        assert_eq!(&out[6..], &reference[..]);
        let batch = Bytes::copy_from_slice(&out[6..]);
        let header = validate(&batch).unwrap();
        assert_eq!((header.record_count, header.max_timestamp), (3, 70_000_000));
        assert_eq!(decode_batch(batch).unwrap()[1].timestamp, 900);
    }

    #[test]
    fn values_written_in_place_make_the_bytes_pushed_values_make() {
        // Lengths whose varints take 1, 2 and 3 bytes, each guessed right,
        // too short and too long; around the 63/64 and 8191/8192 steps of
        // both the value's length and the record's.
        let lengths = [0, 1, 50, 63, 64, 100, 127, 128, 8_150, 8_191, 8_192, 20_000];
        let value = |len: usize| -> Vec<u8> { (0..len).map(|i| b'a' + (i % 26) as u8).collect() };
        let headers: &[(&str, Option<&[u8]>)] = &[("h", Some(b"v"))];
        for (key, headers) in [(None, &[][..]), (Some(&b"key"[..]), headers)] {
            let mut pushed = BytesMut::new();
            let mut written = BytesMut::new();
            let mut by_push = BatchBuilder::new(&mut pushed, 1_000);
            let mut in_place = BatchBuilder::new(&mut written, 1_000);
            for (n, &len) in lengths.iter().enumerate() {
                for guess in lengths {
                    let timestamp = 1_000 + (n * 7) as i64;
                    by_push.push(key, Some(&value(len)), headers, timestamp);
                    let wrote = in_place.push_written(key, headers, timestamp, guess, |out| {
                        out.extend_from_slice(&value(len))
                    });
                    assert_eq!(wrote, len);
                }
            }
            by_push.finish().unwrap();
            in_place.finish().unwrap();
            assert_eq!(written, pushed);
            validate(&written.freeze()).unwrap();
        }
    }

    #[test]
    fn an_empty_batch_is_refused_and_leaves_the_buffer() {
        let mut out = BytesMut::from(&b"kept"[..]);
        assert!(BatchBuilder::new(&mut out, 0).finish().is_err());
        assert_eq!(&out[..], b"kept");
    }

    #[test]
    fn varint_lengths_match_what_is_written() {
        for value in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            8_191,
            8_192,
            i64::from(i32::MAX),
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = BytesMut::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
        }
    }
}
