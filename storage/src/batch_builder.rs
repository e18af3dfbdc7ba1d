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
        let timestamp_delta = timestamp_ms.wrapping_sub(self.base_timestamp);
        let offset_delta = i64::from(self.records);
        let body = 1
            + varint_len(timestamp_delta)
            + varint_len(offset_delta)
            + bytes_len(key)
            + bytes_len(value)
            + varint_len(headers.len() as i64)
            + headers
                .iter()
                .map(|(k, v)| bytes_len(Some(k.as_bytes())) + bytes_len(*v))
                .sum::<usize>();
        self.out.reserve(body + varint_len(body as i64));
        put_varint(self.out, body as i64);
        self.out.put_u8(0); // attributes: none are defined for records
        put_varint(self.out, timestamp_delta);
        put_varint(self.out, offset_delta);
        put_bytes(self.out, key);
        put_bytes(self.out, value);
        put_varint(self.out, headers.len() as i64);
        for (k, v) in headers {
            put_bytes(self.out, Some(k.as_bytes()));
            put_bytes(self.out, *v);
        }
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

/// Bytes of a length-prefixed field (-1 for none).
fn bytes_len(bytes: Option<&[u8]>) -> usize {
    match bytes {
        Some(b) => varint_len(b.len() as i64) + b.len(),
        None => 1,
    }
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
