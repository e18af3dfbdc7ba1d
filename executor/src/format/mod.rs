//! Record values to Arrow and back, by the stream's format (json, csv, raw).
//!
//! Decoding turns the records of one read into one Arrow batch with the
//! stream's full table schema: metadata columns (`_partition`, `_offset`,
//! `_timestamp`, `_key`) then value columns. Encoding turns rows of the value
//! columns into record values, one per row.

mod csv;
mod json;

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::SchemaRef;
use tributary_planner::{Format, StreamDefinition};

use crate::error::{ExecError, Result};

/// One stored record, as needed for decoding.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (ms since the epoch).
    pub timestamp_ms: i64,
    /// Its key.
    pub key: Option<Bytes>,
    /// Its value.
    pub value: Option<Bytes>,
}

/// Where records come from, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The stream.
    pub stream: &'a str,
    /// The partition.
    pub partition: u32,
}

/// The stream's schemas, computed once per table.
#[derive(Debug, Clone)]
pub struct StreamSchemas {
    /// Metadata columns then value columns, as SQL sees them.
    pub table: SchemaRef,
    /// Value columns alone (for raw streams: key, value).
    pub values: SchemaRef,
}

impl StreamSchemas {
    /// Derives both schemas from a definition.
    pub fn new(definition: &StreamDefinition) -> Result<Self> {
        Ok(Self {
            table: definition.table_schema()?,
            values: definition.value_schema()?,
        })
    }
}

/// Decodes records into one batch with the table schema.
pub fn decode(
    definition: &StreamDefinition,
    schemas: &StreamSchemas,
    origin: Origin<'_>,
    records: &[StoredRecord],
) -> Result<RecordBatch> {
    let values: Vec<ArrayRef> = match definition.format {
        Format::Raw => vec![
            Arc::new(BinaryArray::from_iter(
                records.iter().map(|r| r.key.as_deref()),
            )),
            Arc::new(BinaryArray::from_iter(
                records.iter().map(|r| r.value.as_deref()),
            )),
        ],
        Format::Json => json::decode(&schemas.values, origin, records)?,
        Format::Csv => csv::decode(&schemas.values, origin, records)?,
    };
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(vec![
            origin.partition as i32;
            records.len()
        ])),
        Arc::new(Int64Array::from_iter_values(
            records.iter().map(|r| r.offset),
        )),
        Arc::new(TimestampMillisecondArray::from_iter_values(
            records.iter().map(|r| r.timestamp_ms),
        )),
        Arc::new(BinaryArray::from_iter(
            records.iter().map(|r| r.key.as_deref()),
        )),
    ];
    columns.extend(values);
    RecordBatch::try_new(schemas.table.clone(), columns).map_err(|e| ExecError::Decode {
        stream: origin.stream.to_string(),
        partition: origin.partition,
        offset: records.first().map_or(-1, |r| r.offset),
        format: definition.format.as_str(),
        reason: e.to_string(),
    })
}

/// Encodes each row of `values` (the value columns, in definition order)
/// as a record value.
pub fn encode(definition: &StreamDefinition, values: &RecordBatch) -> Result<Vec<Bytes>> {
    match definition.format {
        Format::Json => json::encode(values),
        Format::Csv => csv::encode(values),
        Format::Raw => Err(ExecError::Internal(
            "raw streams take their value column as is".into(),
        )),
    }
}

fn decode_error(
    origin: Origin<'_>,
    offset: i64,
    format: &'static str,
    reason: impl ToString,
) -> ExecError {
    ExecError::Decode {
        stream: origin.stream.to_string(),
        partition: origin.partition,
        offset,
        format,
        reason: reason.to_string(),
    }
}
