//! `GET /api/jobs`: what `SHOW JOBS` says, as JSON objects, with the time
//! it was read so a client can turn the counters into rates.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use crate::AppState;
use crate::catalog::objects;
use crate::error::ApiError;

/// `{"at_ms": <now>, "jobs": [{name, kind, status, inputs, lag, rows_in,
/// rows_out, watermark, late_rows, rows_in_per_second}, ...]}`.
pub(crate) async fn get(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let jobs = objects(&state.engine.session(), "SHOW JOBS").await?;
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Ok(Json(serde_json::json!({ "at_ms": at_ms, "jobs": jobs })))
}
