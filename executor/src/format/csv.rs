//! CSV values: one line per record, columns in definition order, no header.

use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::csv::{ReaderBuilder, WriterBuilder};
use datafusion::arrow::datatypes::SchemaRef;
use tributary_storage::records::RecordRef;

use super::{Origin, decode_error};
use crate::error::{ExecError, Result};

/// Decodes the records' values into arrays of the value schema.
pub(super) fn decode(
    schema: &SchemaRef,
    origin: Origin<'_>,
    records: &[RecordRef<'_>],
) -> Result<Vec<ArrayRef>> {
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_header(false)
        .with_batch_size(records.len().max(1))
        .build_decoder();
    for record in records {
        let mut line = record.value.unwrap_or_default().to_vec();
        line.push(b'\n');
        let mut rest = &line[..];
        while !rest.is_empty() {
            let read = decoder
                .decode(rest)
                .map_err(|e| decode_error(origin, record.offset, "csv", e))?;
            if read == 0 {
                return Err(decode_error(
                    origin,
                    record.offset,
                    "csv",
                    "more than one line",
                ));
            }
            rest = &rest[read..];
        }
    }
    let batch = decoder
        .flush()
        .map_err(|e| decode_error(origin, records.first().map_or(-1, |r| r.offset), "csv", e))?;
    let columns = match batch {
        Some(batch) if batch.num_rows() == records.len() => batch.columns().to_vec(),
        Some(batch) => {
            return Err(decode_error(
                origin,
                records.first().map_or(-1, |r| r.offset),
                "csv",
                format!("{} lines for {} records", batch.num_rows(), records.len()),
            ));
        }
        None => RecordBatch::new_empty(schema.clone()).columns().to_vec(),
    };
    Ok(columns)
}

/// Encodes each row as one CSV line (without the line end).
pub(super) fn encode(values: &RecordBatch) -> Result<Vec<Bytes>> {
    let mut rows = Vec::with_capacity(values.num_rows());
    for i in 0..values.num_rows() {
        let mut buf = Vec::new();
        {
            let mut writer = WriterBuilder::new().with_header(false).build(&mut buf);
            writer.write(&values.slice(i, 1)).map_err(|e| {
                ExecError::NotSupported(format!("encoding these values as CSV ({e})"))
            })?;
        }
        while buf.last() == Some(&b'\n') {
            buf.pop();
        }
        rows.push(Bytes::from(buf));
    }
    Ok(rows)
}
