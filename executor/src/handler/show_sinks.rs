//! `SHOW SINKS`: every sink with the stream it writes, its query, the
//! stream it reads, and how many records it has written.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tributary_planner::StreamDefinition;

use crate::engine::Output;
use crate::error::Result;
use crate::session::Session;

pub(crate) fn execute(session: &Session) -> Result<Output> {
    let log = session.engine().log();
    let mut names = Vec::new();
    let mut targets = Vec::new();
    let mut queries = Vec::new();
    let mut inputs = Vec::new();
    let mut records = Vec::new();
    for stream in log.streams() {
        let definition =
            StreamDefinition::from_json(&stream.name, stream.config.definition.as_ref())?;
        let (Some(sink), Some(view)) = (definition.sink(), &definition.view) else {
            continue;
        };
        names.push(sink.to_string());
        targets.push(stream.name.clone());
        queries.push(view.query_with_clauses());
        inputs.push(view.inputs.join(", "));
        records.push(
            (0..stream.config.partitions)
                .filter_map(|p| log.partition(&stream.name, p).ok())
                .map(|p| p.high_watermark())
                .sum::<i64>(),
        );
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(names)),
        Arc::new(StringArray::from(targets)),
        Arc::new(StringArray::from(queries)),
        Arc::new(StringArray::from(inputs)),
        Arc::new(Int64Array::from(records)),
    ];
    let batch = RecordBatch::try_new(schema(), columns)?;
    Ok(Output::Rows(session.context().read_batch(batch)?))
}

/// The columns of `SHOW SINKS`.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("stream", DataType::Utf8, false),
        Field::new("query", DataType::Utf8, false),
        Field::new("inputs", DataType::Utf8, false),
        Field::new("records", DataType::Int64, false),
    ]))
}
