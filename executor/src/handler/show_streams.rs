//! `SHOW STREAMS`: every stream with its shape and size.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tributary_planner::StreamDefinition;

use crate::engine::Output;
use crate::error::{ExecError, Result};
use crate::session::Session;

pub(crate) fn execute(session: &Session) -> Result<Output> {
    let streams = session.engine().log().streams();
    let mut names = Vec::new();
    let mut partitions = Vec::new();
    let mut formats = Vec::new();
    let mut keys = Vec::new();
    let mut retention = Vec::new();
    let mut records = Vec::new();
    let mut bytes = Vec::new();
    for stream in streams {
        let definition =
            StreamDefinition::from_json(&stream.name, stream.config.definition.as_ref())?;
        if definition.is_view() {
            // SHOW MATERIALIZED VIEWS lists those.
            continue;
        }
        let (mut count, mut size) = (0i64, 0i64);
        for p in 0..stream.config.partitions {
            if let Ok(partition) = session.engine().log().partition(&stream.name, p) {
                count += partition.high_watermark() - partition.log_start_offset();
                size += partition.size_bytes() as i64;
            }
        }
        names.push(stream.name.clone());
        partitions.push(stream.config.partitions as i32);
        formats.push(definition.format.as_str().to_string());
        keys.push(definition.key.clone());
        retention.push(stream.config.retention_ms.map(human_duration));
        records.push(count);
        bytes.push(size);
    }
    let schema = schema();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(names)),
        Arc::new(Int32Array::from(partitions)),
        Arc::new(StringArray::from(formats)),
        Arc::new(StringArray::from(keys)),
        Arc::new(StringArray::from(retention)),
        Arc::new(Int64Array::from(records)),
        Arc::new(Int64Array::from(bytes)),
    ];
    let batch = RecordBatch::try_new(schema, columns)
        .map_err(|e| ExecError::Internal(format!("SHOW STREAMS: {e}")))?;
    Ok(Output::Rows(session.context().read_batch(batch)?))
}

/// The columns of `SHOW STREAMS`.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("partitions", DataType::Int32, false),
        Field::new("format", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, true),
        Field::new("retention", DataType::Utf8, true),
        Field::new("records", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
    ]))
}

/// Milliseconds as the largest whole unit: `7 days`, `90 minutes`.
pub(crate) fn human_duration(ms: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "day"),
        (3_600_000, "hour"),
        (60_000, "minute"),
        (1_000, "second"),
    ];
    for (size, name) in UNITS {
        if ms >= size && ms.is_multiple_of(size) {
            let count = ms / size;
            let plural = if count == 1 { "" } else { "s" };
            return format!("{count} {name}{plural}");
        }
    }
    format!("{ms} ms")
}
