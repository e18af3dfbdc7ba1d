//! Record values to Arrow and back, by the stream's format (json, csv, raw).
//!
//! Decoding turns the records of one read into one Arrow batch with the
//! stream's full table schema: metadata columns (`_partition`, `_offset`,
//! `_timestamp`, `_key`) then value columns. Encoding turns rows of the value
//! columns into record values, one per row.

mod civil;
mod csv;
mod flat_json_reader;
mod flat_json_writer;
mod json;
mod json_floats;
mod json_timestamps;
mod storable_times;
mod surrogate_pairs;
#[cfg(test)]
mod test_support;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use datafusion::arrow::array::{
    ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch, RecordBatchOptions,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::SchemaRef;
use tributary_planner::{Format, StreamDefinition};
use tributary_storage::records::RecordRef;

use crate::error::{ExecError, Result};

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

/// The columns a scan produces, in order: a projection of the table, so
/// that only the value columns a query uses are decoded.
#[derive(Debug, Clone)]
pub struct ScanColumns {
    /// The schema of the produced batches.
    pub schema: SchemaRef,
    /// The value columns decoded: for json, those projected; csv and raw
    /// values are decoded whole.
    values: SchemaRef,
    /// Where each produced column comes from.
    sources: Vec<ColumnSource>,
}

#[derive(Debug, Clone, Copy)]
enum ColumnSource {
    Partition,
    Offset,
    Timestamp,
    Key,
    /// The n-th decoded value column.
    Value(usize),
}

/// Metadata columns at the start of every table schema.
const METADATA_COLUMNS: usize = 4;

impl ScanColumns {
    /// Every value column and no metadata column: what checking that
    /// values fit the stream decodes.
    pub fn values(definition: &StreamDefinition, schemas: &StreamSchemas) -> Result<Self> {
        let projection: Vec<usize> = (METADATA_COLUMNS..schemas.table.fields().len()).collect();
        Self::new(definition, schemas, Some(&projection))
    }

    /// The columns at `projection` (indices into the table schema), or all.
    pub fn new(
        definition: &StreamDefinition,
        schemas: &StreamSchemas,
        projection: Option<&[usize]>,
    ) -> Result<Self> {
        let all: Vec<usize> = (0..schemas.table.fields().len()).collect();
        let projection = projection.unwrap_or(&all);
        let schema = Arc::new(
            schemas
                .table
                .project(projection)
                .map_err(|e| ExecError::Internal(format!("bad scan projection: {e}")))?,
        );
        let value_indices: Vec<usize> = match definition.format {
            Format::Json => projection
                .iter()
                .filter_map(|i| i.checked_sub(METADATA_COLUMNS))
                .collect(),
            Format::Csv | Format::Raw => (0..schemas.values.fields().len()).collect(),
        };
        let mut decoded: Vec<usize> = value_indices.clone();
        decoded.sort_unstable();
        decoded.dedup();
        let values = Arc::new(
            schemas
                .values
                .project(&decoded)
                .map_err(|e| ExecError::Internal(format!("bad scan projection: {e}")))?,
        );
        let sources = projection
            .iter()
            .map(|i| match i {
                0 => ColumnSource::Partition,
                1 => ColumnSource::Offset,
                2 => ColumnSource::Timestamp,
                3 => ColumnSource::Key,
                value => ColumnSource::Value(
                    decoded
                        .binary_search(&(value - METADATA_COLUMNS))
                        .unwrap_or_default(),
                ),
            })
            .collect();
        Ok(Self {
            schema,
            values,
            sources,
        })
    }
}

/// Decodes records into one batch of the scan's columns.
pub fn decode(
    definition: &StreamDefinition,
    scan: &ScanColumns,
    origin: Origin<'_>,
    records: &[RecordRef<'_>],
) -> Result<RecordBatch> {
    let values: Vec<ArrayRef> = match definition.format {
        Format::Raw => vec![
            Arc::new(BinaryArray::from_iter(records.iter().map(|r| r.key))),
            Arc::new(BinaryArray::from_iter(records.iter().map(|r| r.value))),
        ],
        Format::Json if scan.values.fields().is_empty() => Vec::new(),
        Format::Json => json::decode(&scan.values, origin, records)?,
        Format::Csv => csv::decode(&scan.values, origin, records)?,
    };
    let columns: Vec<ArrayRef> = scan
        .sources
        .iter()
        .map(|source| -> ArrayRef {
            match source {
                ColumnSource::Partition => Arc::new(Int32Array::from(vec![
                    origin.partition as i32;
                    records.len()
                ])),
                ColumnSource::Offset => Arc::new(Int64Array::from_iter_values(
                    records.iter().map(|r| r.offset),
                )),
                ColumnSource::Timestamp => Arc::new(TimestampMillisecondArray::from_iter_values(
                    records.iter().map(|r| r.timestamp),
                )),
                ColumnSource::Key => {
                    Arc::new(BinaryArray::from_iter(records.iter().map(|r| r.key)))
                }
                ColumnSource::Value(n) => values[*n].clone(),
            }
        })
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(records.len()));
    RecordBatch::try_new_with_options(scan.schema.clone(), columns, &options).map_err(|e| {
        ExecError::Decode {
            stream: origin.stream.to_string(),
            partition: origin.partition,
            offset: records.first().map_or(-1, |r| r.offset),
            format: definition.format.as_str(),
            reason: e.to_string(),
        }
    })
}

/// Encodes each row of `values` (the value columns, in definition order)
/// as a record value.
pub fn encode(definition: &StreamDefinition, values: &RecordBatch) -> Result<Vec<Bytes>> {
    storable_times::check(values)?;
    match definition.format {
        Format::Json => json::encode(values),
        Format::Csv => csv::encode(values),
        Format::Raw => Err(ExecError::Internal(
            "raw streams take their value column as is".into(),
        )),
    }
}

/// Writes the rows of one batch (the value columns, in definition order)
/// as record values, one at a time, at the end of the caller's buffer:
/// straight into a record batch being built, where the rows are JSON of
/// plain columns; else each copied from what [`encode`] makes.
pub struct ValueWriter<'a>(Rows<'a>);

enum Rows<'a> {
    Flat(flat_json_writer::FlatWriter<'a>),
    Encoded(Vec<Bytes>),
}

impl std::fmt::Debug for ValueWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueWriter").finish_non_exhaustive()
    }
}

impl<'a> ValueWriter<'a> {
    /// A writer of the rows of `values`, for a stream of `definition`.
    pub fn new(definition: &StreamDefinition, values: &'a RecordBatch) -> Result<Self> {
        if definition.format == Format::Json
            && let Some(writer) = flat_json_writer::FlatWriter::new(values)
        {
            return Ok(Self(Rows::Flat(writer)));
        }
        Ok(Self(Rows::Encoded(encode(definition, values)?)))
    }

    /// Appends row `row`'s value to `out`.
    pub fn write_row(&mut self, row: usize, out: &mut BytesMut) {
        match &mut self.0 {
            Rows::Flat(writer) => writer.write_row(row, out),
            Rows::Encoded(values) => out.extend_from_slice(&values[row]),
        }
    }
}

/// Encodes each row of `values` as a JSON object, whatever the stream's
/// format: the keys of a view's change records.
pub fn encode_json(values: &RecordBatch) -> Result<Vec<Bytes>> {
    storable_times::check(values)?;
    json::encode(values)
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
