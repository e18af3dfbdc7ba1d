//! The records inside stored batches, read in place: an uncompressed batch
//! is walked over its own bytes, each key and value a borrowed slice, with
//! no allocation per record. Scans of millions of records spend their time
//! on the values, not on the envelope around them. Compressed batches are
//! decompressed once (by `kafka-protocol`) and read the same way.

use bytes::Bytes;

use crate::batch::{self, BATCH_HEADER_LEN, BatchHeader, Record};
use crate::error::{Error, Result};

/// One record, borrowed from its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp in ms since the epoch: the producer's create time, or
    /// for a LogAppendTime batch the time the log appended it (as a Kafka
    /// consumer sees it).
    pub timestamp: i64,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// Its value.
    pub value: Option<&'a [u8]>,
}

/// The records of one stored batch.
#[derive(Debug)]
pub struct BatchRecords {
    header: BatchHeader,
    body: Body,
}

#[derive(Debug)]
enum Body {
    /// The batch itself; records are read from its bytes.
    Plain(Bytes),
    /// A compressed batch, decoded.
    Decoded(Vec<Record>),
}

impl BatchRecords {
    /// Checks a stored batch (extent, CRC, counts) and prepares its records
    /// for reading; a compressed batch is decompressed here.
    pub fn new(bytes: Bytes) -> Result<Self> {
        let header = batch::validate(&bytes)?;
        let body = if header.compression_id() == 0 {
            Body::Plain(bytes.slice(..header.size))
        } else {
            Body::Decoded(batch::decode_batch(bytes)?)
        };
        Ok(Self { header, body })
    }

    /// The batch's header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The records, in offset order. A record that does not parse ends the
    /// iteration with an error.
    pub fn iter(&self) -> RecordIter<'_> {
        let state = match &self.body {
            Body::Plain(bytes) => Walk::Plain {
                rest: &bytes[BATCH_HEADER_LEN..],
                remaining: self.header.record_count,
            },
            Body::Decoded(records) => Walk::Decoded(records.iter()),
        };
        RecordIter {
            header: &self.header,
            state,
        }
    }
}

/// Iterator over the records of a [`BatchRecords`].
#[derive(Debug)]
pub struct RecordIter<'a> {
    header: &'a BatchHeader,
    state: Walk<'a>,
}

#[derive(Debug)]
enum Walk<'a> {
    Plain { rest: &'a [u8], remaining: i32 },
    Decoded(std::slice::Iter<'a, Record>),
    Failed,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let header = self.header;
        let log_append_time = header.is_log_append_time();
        match &mut self.state {
            Walk::Plain { rest, remaining } => {
                if *remaining == 0 {
                    return (!rest.is_empty()).then(|| {
                        self.state = Walk::Failed;
                        Err(malformed(header, "bytes left after the last record"))
                    });
                }
                *remaining -= 1;
                match parse_record(rest, header) {
                    Ok(record) => Some(Ok(record)),
                    Err(e) => {
                        self.state = Walk::Failed;
                        Some(Err(e))
                    }
                }
            }
            Walk::Decoded(records) => records.next().map(|r| {
                Ok(RecordRef {
                    offset: r.offset,
                    timestamp: if log_append_time {
                        header.max_timestamp
                    } else {
                        r.timestamp
                    },
                    key: r.key.as_deref(),
                    value: r.value.as_deref(),
                })
            }),
            Walk::Failed => None,
        }
    }
}

/// Reads one record from the front of `rest` and advances past it.
fn parse_record<'a>(rest: &mut &'a [u8], header: &BatchHeader) -> Result<RecordRef<'a>> {
    let size = read_varint(rest).ok_or_else(|| malformed(header, "record length"))?;
    let size = usize::try_from(size).map_err(|_| malformed(header, "negative record length"))?;
    if size > rest.len() {
        return Err(malformed(header, "record longer than its batch"));
    }
    let (mut record, after) = rest.split_at(size);
    *rest = after;
    let fields = (|| -> Option<RecordRef<'a>> {
        let _attributes = take(&mut record, 1)?;
        let timestamp_delta = read_varlong(&mut record)?;
        let offset_delta = read_varint(&mut record)?;
        let key = read_bytes(&mut record)?;
        let value = read_bytes(&mut record)?;
        let headers = read_varint(&mut record)?;
        for _ in 0..headers {
            let _key = read_bytes(&mut record)??;
            let _value = read_bytes(&mut record)?;
        }
        Some(RecordRef {
            offset: header.base_offset + i64::from(offset_delta),
            timestamp: if header.is_log_append_time() {
                header.max_timestamp
            } else {
                header.base_timestamp.wrapping_add(timestamp_delta)
            },
            key,
            value,
        })
    })();
    match fields {
        Some(parsed) if record.is_empty() => Ok(parsed),
        Some(_) => Err(malformed(header, "record longer than its fields")),
        None => Err(malformed(header, "record fields run past its length")),
    }
}

fn malformed(header: &BatchHeader, what: &str) -> Error {
    Error::invalid_batch(format!(
        "batch at offset {}: malformed record ({what})",
        header.base_offset
    ))
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if n > buf.len() {
        return None;
    }
    let (taken, rest) = buf.split_at(n);
    *buf = rest;
    Some(taken)
}

/// A length-prefixed byte string: `Some(None)` for length -1 (null).
fn read_bytes<'a>(buf: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    match read_varint(buf)? {
        -1 => Some(None),
        len => take(buf, usize::try_from(len).ok()?).map(Some),
    }
}

/// A zigzag varint of at most 5 bytes (Kafka's `varint`).
fn read_varint(buf: &mut &[u8]) -> Option<i32> {
    let raw = read_unsigned(buf, 5)?;
    let raw = u32::try_from(raw).ok()?;
    Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// A zigzag varint of at most 10 bytes (Kafka's `varlong`).
fn read_varlong(buf: &mut &[u8]) -> Option<i64> {
    let raw = read_unsigned(buf, 10)?;
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn read_unsigned(buf: &mut &[u8], max_bytes: usize) -> Option<u64> {
    // Most varints of a record (its deltas, short keys, the header count)
    // take one byte.
    if let Some((&byte, rest)) = buf.split_first()
        && byte & 0x80 == 0
    {
        *buf = rest;
        return Some(u64::from(byte));
    }
    let mut value = 0u64;
    for (i, byte) in buf.iter().take(max_bytes).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Compression, NewRecord, encode_batch};

    fn sample() -> Vec<NewRecord> {
        (0..50)
            .map(|i| NewRecord {
                key: (i % 3 != 0).then(|| Bytes::from(format!("k{i}"))),
                value: (i % 7 != 0).then(|| Bytes::from("v".repeat(i * 40))),
                headers: if i % 2 == 0 {
                    vec![("h".into(), Some(Bytes::from("x"))), ("n".into(), None)]
                } else {
                    Vec::new()
                },
                timestamp_ms: 1_700_000_000_000 + (i as i64) * if i % 2 == 0 { 1 } else { -1 },
            })
            .collect()
    }

    #[test]
    fn reads_what_kafka_protocol_decodes_for_every_codec() {
        let records = sample();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut batch = encode_batch(&records, codec).unwrap().to_vec();
            batch::set_base_offset(&mut batch, 1000);
            let batch = Bytes::from(batch);
            let expected = batch::decode_batch(batch.clone()).unwrap();
            let read = BatchRecords::new(batch).unwrap();
            let got: Vec<RecordRef<'_>> = read.iter().map(Result::unwrap).collect();
            assert_eq!(got.len(), expected.len(), "{codec:?}");
            for (got, want) in got.iter().zip(&expected) {
                assert_eq!(got.offset, want.offset, "{codec:?}");
                assert_eq!(got.timestamp, want.timestamp, "{codec:?}");
                assert_eq!(got.key, want.key.as_deref(), "{codec:?}");
                assert_eq!(got.value, want.value.as_deref(), "{codec:?}");
            }
        }
    }

    #[test]
    fn log_append_time_is_the_batch_time() {
        let mut batch = encode_batch(&sample(), Compression::None).unwrap().to_vec();
        batch::stamp_log_append_time(&mut batch, 42);
        let read = BatchRecords::new(Bytes::from(batch)).unwrap();
        assert!(read.iter().all(|r| r.unwrap().timestamp == 42));
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let good = encode_batch(&sample(), Compression::None).unwrap().to_vec();
        // Damage each byte of the records (fixing the CRC so the damage
        // reaches the record parser) and check nothing panics.
        for at in BATCH_HEADER_LEN..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[at] ^= flip;
                let crc = crc32c::crc32c(&bad[21..]);
                bad[17..21].copy_from_slice(&crc.to_be_bytes());
                if let Ok(read) = BatchRecords::new(Bytes::from(bad)) {
                    let _ = read.iter().collect::<Vec<_>>();
                }
            }
        }
    }
}
