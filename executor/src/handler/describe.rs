//! `DESCRIBE name`: columns with types, nullability and roles.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tributary_planner::StreamDefinition;

use crate::engine::Output;
use crate::error::{ExecError, Result};
use crate::session::Session;

pub(crate) fn execute(session: &Session, name: &str) -> Result<Output> {
    let record = session
        .engine()
        .log()
        .stream(name)
        .map_err(|_| ExecError::UnknownStream(name.to_string()))?;
    let definition = StreamDefinition::from_json(name, record.config.definition.as_ref())?;
    let mut rows: Vec<(String, String, bool, Option<String>)> = vec![
        (
            "_partition".into(),
            "INTEGER".into(),
            false,
            Some("metadata".into()),
        ),
        (
            "_offset".into(),
            "BIGINT".into(),
            false,
            Some("metadata".into()),
        ),
        (
            "_timestamp".into(),
            "TIMESTAMP".into(),
            false,
            Some("metadata".into()),
        ),
        ("_key".into(), "BYTEA".into(), true, Some("metadata".into())),
    ];
    if definition.is_raw() {
        rows.push((
            "key".into(),
            "BYTEA".into(),
            true,
            Some("record key".into()),
        ));
        rows.push((
            "value".into(),
            "BYTEA".into(),
            true,
            Some("record value".into()),
        ));
    }
    for column in &definition.columns {
        let mut notes = Vec::new();
        if definition.key.as_deref() == Some(column.name.as_str()) {
            notes.push("key".to_string());
        }
        if let Some(wm) = definition
            .watermark
            .as_ref()
            .filter(|w| w.column == column.name)
        {
            notes.push(format!("watermark {}", wm.expression));
        }
        rows.push((
            column.name.clone(),
            column.sql_type.clone(),
            column.nullable,
            (!notes.is_empty()).then(|| notes.join(", ")),
        ));
    }
    let schema = schema();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.0.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.1.as_str()),
        )),
        Arc::new(BooleanArray::from(
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.3.clone()).collect::<Vec<_>>(),
        )),
    ];
    let batch = RecordBatch::try_new(schema, columns)
        .map_err(|e| ExecError::Internal(format!("DESCRIBE: {e}")))?;
    Ok(Output::Rows(session.context().read_batch(batch)?))
}

/// The columns of `DESCRIBE`.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("column", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("nullable", DataType::Boolean, false),
        Field::new("note", DataType::Utf8, true),
    ]))
}
