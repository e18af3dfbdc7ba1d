//! `SHOW MATERIALIZED VIEWS`: every view with its query, the stream it
//! reads, and how many change records it has written.

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
    let mut queries = Vec::new();
    let mut inputs = Vec::new();
    let mut changes = Vec::new();
    for stream in log.streams() {
        let definition =
            StreamDefinition::from_json(&stream.name, stream.config.definition.as_ref())?;
        if !definition.is_view() {
            continue;
        }
        let Some(view) = definition.view else {
            continue;
        };
        names.push(stream.name.clone());
        queries.push(view.query_with_clauses());
        inputs.push(view.inputs.join(", "));
        changes.push(
            log.partition(&stream.name, 0)
                .map_or(0, |p| p.high_watermark()),
        );
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(names)),
        Arc::new(StringArray::from(queries)),
        Arc::new(StringArray::from(inputs)),
        Arc::new(Int64Array::from(changes)),
    ];
    let batch = RecordBatch::try_new(schema(), columns)?;
    Ok(Output::Rows(session.context().read_batch(batch)?))
}

/// The columns of `SHOW MATERIALIZED VIEWS`.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("query", DataType::Utf8, false),
        Field::new("inputs", DataType::Utf8, false),
        Field::new("changes", DataType::Int64, false),
    ]))
}
