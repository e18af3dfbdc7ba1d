//! Kafka RecordBatch v2: the unit the log stores, on disk and in objects.
//!
//! The log never re-encodes a producer's batch. On append it checks the
//! header, the length and the CRC32C, then writes the base offset (which the
//! CRC does not cover) into the first eight bytes. Encoding and decoding of
//! the records inside a batch is delegated to `kafka-protocol`.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, RecordBatchDecoder,
    RecordBatchEncoder, RecordEncodeOptions, TimestampType as WireTimestampType,
};

use crate::batch_builder::BatchBuilder;
use crate::error::{Error, Result};

pub use kafka_protocol::records::{Compression, Record};

/// Bytes before the records of a v2 batch.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes of the base offset and length fields, which the length excludes.
pub const LOG_OVERHEAD: usize = 12;
/// The magic byte of RecordBatch v2.
pub const MAGIC_V2: i8 = 2;

const LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const TIMESTAMP_TYPE_BIT: i16 = 0b1000;
const CONTROL_BIT: i16 = 0b10_0000;

/// The fixed header of one v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Whole size of the batch in bytes, header included.
    pub size: usize,
    /// The producer's leader epoch field.
    pub partition_leader_epoch: i32,
    /// CRC32C over everything after the CRC field.
    pub crc: u32,
    /// Compression (bits 0–2), timestamp type (bit 3), transactional, control.
    pub attributes: i16,
    /// Offset of the last record, relative to the base.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch (the append time for LogAppendTime).
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Idempotent producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl BatchHeader {
    /// Reads the header at the start of `bytes`. Checks only what is needed
    /// to know the batch's extent: enough bytes, a sane length, magic 2.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < BATCH_HEADER_LEN {
            return Err(Error::invalid_batch(format!(
                "{} bytes is shorter than a batch header ({BATCH_HEADER_LEN})",
                bytes.len()
            )));
        }
        let mut b = bytes;
        let base_offset = b.get_i64();
        let length = b.get_i32();
        let partition_leader_epoch = b.get_i32();
        let magic = b.get_i8();
        let crc = b.get_u32();
        let attributes = b.get_i16();
        let last_offset_delta = b.get_i32();
        let base_timestamp = b.get_i64();
        let max_timestamp = b.get_i64();
        let producer_id = b.get_i64();
        let producer_epoch = b.get_i16();
        let base_sequence = b.get_i32();
        let record_count = b.get_i32();
        if magic != MAGIC_V2 {
            return Err(Error::invalid_batch(format!(
                "magic {magic} is not supported (only RecordBatch v2)"
            )));
        }
        let min_length = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
        if length < min_length {
            return Err(Error::invalid_batch(format!(
                "batch length {length} is shorter than the header"
            )));
        }
        Ok(Self {
            base_offset,
            size: length as usize + LOG_OVERHEAD,
            partition_leader_epoch,
            crc,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            record_count,
        })
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Whether the timestamps are log-append times.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// Whether this is a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// The compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression_id(&self) -> i16 {
        self.attributes & 0b111
    }
}

/// Whether the batch's stored CRC matches its content.
pub fn crc_matches(batch: &[u8], header: &BatchHeader) -> bool {
    batch.len() >= header.size
        && batch.len() >= ATTRIBUTES_AT
        && crc32c::crc32c(&batch[ATTRIBUTES_AT..header.size]) == header.crc
}

/// Checks one batch from a producer completely: extent, CRC, counts and
/// codec. Returns its header.
pub fn validate(batch: &[u8]) -> Result<BatchHeader> {
    let header = validate_framing(batch)?;
    if !crc_matches(batch, &header) {
        return Err(Error::invalid_batch("CRC32C mismatch"));
    }
    Ok(header)
}

/// Checks one batch's extent, counts and codec, but not its CRC. Returns
/// its header.
fn validate_framing(batch: &[u8]) -> Result<BatchHeader> {
    let header = BatchHeader::parse(batch)?;
    if header.size > batch.len() {
        return Err(Error::invalid_batch(format!(
            "batch claims {} bytes but only {} were sent",
            header.size,
            batch.len()
        )));
    }
    if header.compression_id() > 4 {
        return Err(Error::invalid_batch(format!(
            "unknown compression codec {}",
            header.compression_id()
        )));
    }
    if header.record_count <= 0 {
        return Err(Error::invalid_batch(
            "a batch must hold at least one record",
        ));
    }
    if header.last_offset_delta < 0 || header.last_offset_delta != header.record_count - 1 {
        return Err(Error::invalid_batch(format!(
            "record count {} does not match last offset delta {}",
            header.record_count, header.last_offset_delta
        )));
    }
    Ok(header)
}

/// Splits a blob of one or more batches (a produce request's records) into
/// validated batches. Trailing bytes that are not a whole batch are an error.
pub fn split_batches(blob: Bytes) -> Result<Vec<(BatchHeader, Bytes)>> {
    split_with(blob, validate)
}

/// Splits a blob of batches this process built (with
/// [`BatchBuilder`](crate::batch_builder::BatchBuilder), which computed
/// their CRCs) as [`split_batches`] does, without computing each CRC
/// again: nothing came between the two to corrupt them.
pub fn split_built_batches(blob: Bytes) -> Result<Vec<(BatchHeader, Bytes)>> {
    split_with(blob, validate_framing)
}

fn split_with(
    mut blob: Bytes,
    validate: fn(&[u8]) -> Result<BatchHeader>,
) -> Result<Vec<(BatchHeader, Bytes)>> {
    let mut batches = Vec::new();
    while !blob.is_empty() {
        let header = validate(&blob)?;
        batches.push((header, blob.split_to(header.size)));
    }
    if batches.is_empty() {
        return Err(Error::invalid_batch("no record batch in the request"));
    }
    Ok(batches)
}

/// Writes the base offset into a batch (not covered by the CRC).
pub(crate) fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[..LENGTH_AT].copy_from_slice(&base_offset.to_be_bytes());
}

/// A batch to store, as two parts written back to back: the base offset the
/// log assigns, and the producer's bytes after it, unchanged (the offset is
/// outside the CRC), so they are written without a copy.
pub(crate) fn with_base_offset(batch: &Bytes, base_offset: i64) -> [Bytes; 2] {
    [
        Bytes::copy_from_slice(&base_offset.to_be_bytes()),
        batch.slice(LENGTH_AT..),
    ]
}

/// Marks a batch as LogAppendTime with the given append time, as a Kafka
/// broker does for topics with `message.timestamp.type=LogAppendTime`, and
/// recomputes the CRC.
pub(crate) fn stamp_log_append_time(batch: &mut [u8], append_time_ms: i64) {
    let attributes = i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]);
    let attributes = attributes | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&append_time_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Marks a batch as sent by an idempotent producer: its producer id, epoch
/// and the sequence number of its first record, as a Kafka client with
/// `enable.idempotence=true` sets them; recomputes the CRC. For tools and
/// tests that write as such a producer.
pub fn set_producer(batch: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) {
    let mut at = PRODUCER_ID_AT;
    for field in [
        &producer_id.to_be_bytes()[..],
        &producer_epoch.to_be_bytes()[..],
        &base_sequence.to_be_bytes()[..],
    ] {
        batch[at..at + field.len()].copy_from_slice(field);
        at += field.len();
    }
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A record to encode into a batch (see [`encode_batch`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord {
    /// The key, if any.
    pub key: Option<Bytes>,
    /// The value, if any (None is a tombstone).
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in milliseconds since the epoch.
    pub timestamp_ms: i64,
}

/// Encodes records into one v2 batch with base offset 0, the way a Kafka
/// producer would. SQL inserts and tests use it.
pub fn encode_batch(records: &[NewRecord], compression: Compression) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    encode_batch_into(records, compression, &mut buf)?;
    Ok(buf.freeze())
}

/// [`encode_batch`] appending to `out`: a job writes many batches back to
/// back into one buffer without copying them again. Uncompressed batches
/// are written in place by [`BatchBuilder`]; compressed ones through
/// `kafka-protocol`'s encoder.
pub fn encode_batch_into(
    records: &[NewRecord],
    compression: Compression,
    out: &mut BytesMut,
) -> Result<()> {
    if records.is_empty() {
        return Err(Error::invalid_batch("cannot encode an empty batch"));
    }
    if compression == Compression::None {
        let base_timestamp = records.iter().map(|r| r.timestamp_ms).min().unwrap_or(0);
        let mut builder = BatchBuilder::new(out, base_timestamp);
        let mut headers = Vec::new();
        for record in records {
            headers.clear();
            headers.extend(
                record
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_deref())),
            );
            builder.push(
                record.key.as_deref(),
                record.value.as_deref(),
                &headers,
                record.timestamp_ms,
            );
        }
        return builder.finish();
    }
    encode_with_kafka_protocol(records, compression, out)
}

/// Encodes records into one v2 batch through `kafka-protocol`'s encoder
/// (any compression); the reference `BatchBuilder` is tested against.
pub(crate) fn encode_with_kafka_protocol(
    records: &[NewRecord],
    compression: Compression,
    out: &mut BytesMut,
) -> Result<()> {
    let wire: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: WireTimestampType::Creation,
            offset: i as i64,
            // kafka-protocol starts a new batch wherever offset minus
            // sequence changes; this keeps one batch with base sequence -1.
            sequence: NO_SEQUENCE.wrapping_add(i as i32),
            timestamp: r.timestamp_ms,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(out, &wire, &options)
        .map_err(|e| Error::invalid_batch(format!("encoding failed: {e}")))?;
    Ok(())
}

/// Decodes the records of one stored batch (decompressing if needed). The
/// batch must already be known to be whole; its CRC is checked again.
pub fn decode_batch(batch: Bytes) -> Result<Vec<Record>> {
    let header = validate(&batch)?;
    // kafka-protocol reserves `record_count` entries up front; keep that
    // bounded by what the bytes could possibly hold when uncompressed.
    if header.compression_id() == 0 && header.record_count as usize > batch.len() {
        return Err(Error::invalid_batch("record count exceeds the batch size"));
    }
    let mut buf = batch;
    let set = RecordBatchDecoder::decode(&mut buf)
        .map_err(|e| Error::invalid_batch(format!("decoding failed: {e}")))?;
    Ok(set.records)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC_AT: usize = 16;

    fn sample(n: usize) -> Vec<NewRecord> {
        (0..n)
            .map(|i| NewRecord {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value number {i}"))),
                headers: vec![("h".into(), Some(Bytes::from_static(b"x")))],
                timestamp_ms: 1_000 + i as i64,
            })
            .collect()
    }

    #[test]
    fn encode_validate_decode_round_trip() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = encode_batch(&sample(10), compression).unwrap();
            let header = validate(&batch).unwrap();
            assert_eq!(header.record_count, 10);
            assert_eq!(header.size, batch.len());
            assert_eq!(header.max_timestamp, 1_009);
            let records = decode_batch(batch).unwrap();
            assert_eq!(records.len(), 10);
            assert_eq!(records[3].value.as_deref(), Some(&b"value number 3"[..]));
        }
    }

    #[test]
    fn base_offset_does_not_touch_crc() {
        let mut batch = encode_batch(&sample(3), Compression::None)
            .unwrap()
            .to_vec();
        set_base_offset(&mut batch, 42);
        let header = validate(&batch).unwrap();
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.last_offset(), 44);
        let records = decode_batch(Bytes::from(batch)).unwrap();
        assert_eq!(records[0].offset, 42);
    }

    #[test]
    fn log_append_time_restamps_and_keeps_crc_valid() {
        let mut batch = encode_batch(&sample(2), Compression::Lz4).unwrap().to_vec();
        stamp_log_append_time(&mut batch, 99_999);
        let header = validate(&batch).unwrap();
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp, 99_999);
    }

    #[test]
    fn producer_fields_are_set_and_the_crc_kept_valid() {
        let mut batch = encode_batch(&sample(3), Compression::Zstd)
            .unwrap()
            .to_vec();
        set_producer(&mut batch, 42, 7, 1_000);
        let header = validate(&batch).unwrap();
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (42, 7, 1_000)
        );
        assert_eq!(decode_batch(Bytes::from(batch)).unwrap().len(), 3);
    }

    #[test]
    fn corrupt_batches_are_rejected() {
        let batch = encode_batch(&sample(2), Compression::None).unwrap();
        let mut flipped = batch.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(validate(&flipped).is_err());
        assert!(validate(&batch[..batch.len() - 1]).is_err());
        assert!(validate(&batch[..10]).is_err());
        let mut bad_magic = batch.to_vec();
        bad_magic[MAGIC_AT] = 1;
        assert!(validate(&bad_magic).is_err());
        let mut two = batch.to_vec();
        two.extend_from_slice(&batch);
        assert_eq!(split_batches(Bytes::from(two)).unwrap().len(), 2);
        let mut trailing = batch.to_vec();
        trailing.extend_from_slice(&[0; 5]);
        assert!(split_batches(Bytes::from(trailing)).is_err());
    }

    #[test]
    fn built_batches_split_on_their_framing_alone() {
        let batch = encode_batch(&sample(2), Compression::None).unwrap();
        let mut two = batch.to_vec();
        two.extend_from_slice(&batch);
        let split = split_built_batches(Bytes::from(two.clone())).unwrap();
        assert_eq!(split, split_batches(Bytes::from(two)).unwrap());
        // The CRC is the builder's and is not computed again; the framing
        // is still checked.
        let mut flipped = batch.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(split_built_batches(Bytes::from(flipped)).unwrap().len(), 1);
        assert!(split_built_batches(batch.slice(..batch.len() - 1)).is_err());
        assert!(split_built_batches(Bytes::new()).is_err());
    }
}
