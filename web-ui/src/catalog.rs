//! `GET /api/catalog`: streams, materialized views and sinks with their
//! columns, read with the same SHOW and DESCRIBE statements psql users run.

use axum::Json;
use axum::extract::State;
use datafusion::dataframe::DataFrame;
use futures::StreamExt;
use serde_json::{Map, Value};
use tributary_executor::{Output, Session};

use crate::AppState;
use crate::error::ApiError;
use crate::rows::{append_rows, columns};

/// The catalog: `{"streams": [...], "views": [...], "sinks": [...]}`, each
/// entry the object's SHOW row; streams and views also list `columns`.
pub(crate) async fn get(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let session = state.engine.session();
    let mut streams = objects(&session, "SHOW STREAMS").await?;
    let mut views = objects(&session, "SHOW MATERIALIZED VIEWS").await?;
    let sinks = objects(&session, "SHOW SINKS").await?;
    for object in streams.iter_mut().chain(views.iter_mut()) {
        let Some(name) = object.get("name").and_then(Value::as_str) else {
            continue;
        };
        let describe = format!("DESCRIBE {}", quote_identifier(name));
        let described = match objects(&session, &describe).await {
            Ok(columns) => columns.into_iter().map(Value::Object).collect(),
            // Dropped between SHOW and DESCRIBE: list it without columns.
            Err(error) => {
                tracing::debug!(name, %error, "catalog: DESCRIBE failed");
                Vec::new()
            }
        };
        object.insert("columns".into(), Value::Array(described));
    }
    Ok(Json(serde_json::json!({
        "streams": streams,
        "views": views,
        "sinks": sinks,
    })))
}

/// The rows of `sql` as JSON objects keyed by column name.
pub(crate) async fn objects(
    session: &Session,
    sql: &str,
) -> Result<Vec<Map<String, Value>>, ApiError> {
    frame_objects(rows_of(session, sql).await?, sql).await
}

/// The rows `sql` (a statement that returns rows) produces.
pub(crate) async fn rows_of(session: &Session, sql: &str) -> Result<DataFrame, ApiError> {
    let mut outputs = session
        .execute(sql)
        .await
        .map_err(|e| ApiError::sql(&e, sql))?;
    match outputs.pop() {
        Some(Output::Rows(frame)) => Ok(frame),
        _ => Err(ApiError::Internal(format!("{sql} returned no rows"))),
    }
}

/// Every row of `frame` as a JSON object keyed by column name; `what`
/// names it in errors.
pub(crate) async fn frame_objects(
    frame: DataFrame,
    what: &str,
) -> Result<Vec<Map<String, Value>>, ApiError> {
    let names: Vec<String> = columns(frame.schema().as_arrow())
        .into_iter()
        .map(|c| c.name)
        .collect();
    let failed = |e: &dyn std::fmt::Display| ApiError::Internal(format!("{what}: {e}"));
    let mut batches = frame.execute_stream().await.map_err(|e| failed(&e))?;
    let mut rows = Vec::new();
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(|e| failed(&e))?;
        append_rows(&batch, usize::MAX, &mut rows).map_err(|e| failed(&e))?;
    }
    Ok(rows
        .into_iter()
        .map(|row| names.iter().cloned().zip(row).collect())
        .collect())
}

/// `name` as a double-quoted SQL identifier.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
