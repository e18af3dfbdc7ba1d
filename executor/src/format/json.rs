//! JSON values: one object per record, keys named like the columns.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::json::writer::{LineDelimited, WriterBuilder};
use tributary_storage::records::RecordRef;

use super::flat_json_writer::FlatWriter;
use super::json_timestamps::FastTimestamps;
use super::{Origin, decode_error};
use super::{flat_json_reader, surrogate_pairs};
use crate::error::{ExecError, Result};

/// Decodes the records' values into arrays of the value schema. A value
/// that is not exactly one JSON object, or whose fields do not convert, is
/// an error naming the record's offset.
pub(super) fn decode(
    schema: &SchemaRef,
    origin: Origin<'_>,
    records: &[RecordRef<'_>],
) -> Result<Vec<ArrayRef>> {
    match decode_all(schema, records) {
        Ok(arrays) => Ok(arrays),
        // Find the record at fault to name it.
        Err(_) => {
            for record in records {
                if let Err(reason) = decode_all(schema, std::slice::from_ref(record)) {
                    return Err(decode_error(origin, record.offset, "json", reason));
                }
            }
            Err(ExecError::Internal(
                "JSON batch failed but every record decodes".into(),
            ))
        }
    }
}

/// The schema the JSON reader decodes with: the value schema, except that
/// types the reader does not know (intervals) are read as their text and
/// cast afterwards.
fn wire_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| needs_text(f.data_type())) {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if needs_text(f.data_type()) {
                Field::new(f.name(), DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn needs_text(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Interval(_))
}

fn decode_all(
    schema: &SchemaRef,
    records: &[RecordRef<'_>],
) -> std::result::Result<Vec<ArrayRef>, String> {
    if let Some(arrays) = flat_json_reader::decode(schema, records) {
        return Ok(arrays);
    }
    let wire = wire_schema(schema);
    let arrays = decode_wire(&wire, records)?;
    if Arc::ptr_eq(&wire, schema) {
        return Ok(arrays);
    }
    arrays
        .iter()
        .zip(schema.fields())
        .map(|(array, field)| {
            if array.data_type() == field.data_type() {
                Ok(array.clone())
            } else {
                cast(array, field.data_type()).map_err(|e| e.to_string())
            }
        })
        .collect()
}

/// Decodes with arrow-json alone: what the fast way of [`flat_json_reader`] is
/// measured against.
pub(super) fn decode_wire(
    schema: &SchemaRef,
    records: &[RecordRef<'_>],
) -> std::result::Result<Vec<ArrayRef>, String> {
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(records.len().max(1))
        .build_decoder()
        .map_err(|e| e.to_string())?;
    for (n, record) in records.iter().enumerate() {
        let value = surrogate_pairs::join_for_arrow_json(record.value.unwrap_or(b"{}"));
        let mut rest = &value[..];
        while !rest.is_empty() {
            let read = decoder.decode(rest).map_err(|e| e.to_string())?;
            if read == 0 {
                return Err("more than one JSON value".into());
            }
            rest = &rest[read..];
        }
        if decoder.has_partial_record() {
            return Err("incomplete JSON value".into());
        }
        if decoder.len() != n + 1 {
            return Err(format!(
                "expected one JSON object, found {}",
                decoder.len() - n
            ));
        }
    }
    let batch = decoder.flush().map_err(|e| e.to_string())?;
    Ok(match batch {
        Some(batch) => batch.columns().to_vec(),
        None => RecordBatch::new_empty(schema.clone()).columns().to_vec(),
    })
}

/// Encodes each row as one JSON object (NULL fields left out).
/// The rows of plain columns are written the fast way of
/// [`flat_json_writer`](super::flat_json_writer), the rest by arrow-json's writer.
pub(super) fn encode(values: &RecordBatch) -> Result<Vec<Bytes>> {
    let Some(mut writer) = FlatWriter::new(values) else {
        return encode_with_arrow_json(values);
    };
    let mut buf = BytesMut::with_capacity(text_capacity(values));
    let mut ends = Vec::with_capacity(values.num_rows());
    for row in 0..values.num_rows() {
        writer.write_row(row, &mut buf);
        ends.push(buf.len());
    }
    let buf = buf.freeze();
    let mut start = 0;
    Ok(ends
        .into_iter()
        .map(|end| {
            let row = buf.slice(start..end);
            start = end;
            row
        })
        .collect())
}

/// About what the JSON of `values` takes, so the buffer is not copied as
/// it grows.
fn text_capacity(values: &RecordBatch) -> usize {
    values.get_array_memory_size() + values.num_rows() * 32
}

/// [`encode`] by arrow-json's writer alone: what the fast way of
/// [`flat_json_writer`](super::flat_json_writer) is measured against.
pub(super) fn encode_with_arrow_json(values: &RecordBatch) -> Result<Vec<Bytes>> {
    let mut buf = Vec::with_capacity(text_capacity(values));
    {
        let mut writer = WriterBuilder::new()
            .with_encoder_factory(Arc::new(FastTimestamps))
            .build::<_, LineDelimited>(&mut buf);
        writer
            .write(values)
            .map_err(|e| ExecError::NotSupported(format!("encoding these values as JSON ({e})")))?;
        writer
            .finish()
            .map_err(|e| ExecError::Internal(format!("JSON writer: {e}")))?;
    }
    let buf = Bytes::from(buf);
    // JSON escapes newlines inside strings, so lines are rows.
    let mut rows = Vec::with_capacity(values.num_rows());
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', &buf) {
        rows.push(buf.slice(start..end));
        start = end + 1;
    }
    if rows.len() != values.num_rows() {
        return Err(ExecError::Internal(format!(
            "JSON writer produced {} lines for {} rows",
            rows.len(),
            values.num_rows()
        )));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, IntervalMonthDayNanoArray};
    use datafusion::arrow::datatypes::IntervalMonthDayNano;

    use super::*;
    use crate::format::test_support::records;

    #[test]
    fn intervals_round_trip_through_their_text() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new(
            "iv",
            DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
            true,
        )]));
        let interval = IntervalMonthDayNano::new(14, 1, 7_200_000_000_123);
        let values = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(IntervalMonthDayNanoArray::from(vec![
                Some(interval),
                None,
            ]))],
        )
        .unwrap();
        let encoded = encode(&values).unwrap();
        let records = records(encoded.iter().map(|value| Some(&value[..])));
        let origin = Origin {
            stream: "s",
            partition: 0,
        };
        let decoded = decode(&schema, origin, &records).unwrap();
        let decoded = decoded[0]
            .as_any()
            .downcast_ref::<IntervalMonthDayNanoArray>()
            .unwrap();
        assert_eq!(decoded.value(0), interval);
        assert!(decoded.is_null(1));
    }
}
