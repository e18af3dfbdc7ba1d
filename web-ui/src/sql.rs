//! `POST /api/sql`: runs statements through a session of the Engine, as
//! pgwire does, and answers typed columns and rows, or the error with its
//! SQLSTATE.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tributary_executor::{Output, Session, Statement};

use crate::AppState;
use crate::error::ApiError;
use crate::rows::{Column, append_rows, columns};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SqlRequest {
    /// One or more `;`-separated statements.
    pub(crate) sql: String,
    /// At most this many rows per result are sent (all are counted);
    /// the server's limit when absent or larger.
    pub(crate) max_rows: Option<usize>,
}

/// What one statement produced.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum StatementResult {
    /// A query's rows.
    Rows {
        /// The result's columns.
        columns: Vec<Column>,
        /// The first rows, each an array in column order.
        rows: Vec<Vec<Value>>,
        /// How many rows the query produced in all.
        row_count: usize,
        /// Whether `rows` holds fewer than `row_count`.
        truncated: bool,
        /// Milliseconds the statement took.
        elapsed_ms: f64,
    },
    /// A command's completion.
    Command {
        /// The command tag (`CREATE STREAM`, `INSERT`).
        tag: String,
        /// Rows affected, where that applies.
        rows: Option<u64>,
        /// What the server tells beside the completion (psql shows it as a
        /// NOTICE), if anything.
        #[serde(skip_serializing_if = "Option::is_none")]
        notice: Option<String>,
        /// Milliseconds the statement took.
        elapsed_ms: f64,
    },
}

/// Runs the statements in order; an error stops at the failing one and
/// answers 400 with the results of those before it.
pub(crate) async fn run(
    State(state): State<AppState>,
    request: Result<Json<SqlRequest>, JsonRejection>,
) -> Response {
    let request = match request {
        Ok(Json(request)) => request,
        Err(rejection) => return ApiError::from(rejection).into_response(),
    };
    let limit = request
        .max_rows
        .unwrap_or(state.config.max_rows)
        .min(state.config.max_rows);
    let session = state.engine.session();
    let mut results = Vec::new();
    match run_all(&session, &request.sql, limit, &mut results).await {
        Ok(()) => Json(serde_json::json!({ "results": results })).into_response(),
        Err(error) => {
            let status = error.status();
            if status.is_server_error() {
                tracing::warn!(%error, sql = request.sql, "an HTTP SQL statement failed inside the server");
            } else {
                tracing::debug!(%error, "an HTTP SQL statement was refused");
            }
            let body = serde_json::json!({ "results": results, "error": error.body() });
            (status, Json(body)).into_response()
        }
    }
}

async fn run_all(
    session: &Session,
    sql: &str,
    limit: usize,
    results: &mut Vec<StatementResult>,
) -> Result<(), ApiError> {
    let statements = session.parse(sql).map_err(|e| ApiError::sql(&e, sql))?;
    if statements.is_empty() {
        return Err(ApiError::BadRequest("no statement to run".into()));
    }
    // Refused before anything runs: a request is not half done for it.
    if statements
        .iter()
        .any(|s| matches!(s, Statement::Subscribe(_) | Statement::CopySubscribe(_)))
    {
        return Err(ApiError::Sql {
            sqlstate: "0A000",
            message: "SUBSCRIBE never ends: open it as a live tail (GET /api/subscribe?sql=...)"
                .into(),
            position: None,
        });
    }
    for statement in statements {
        let started = Instant::now();
        let output = session
            .execute_statement(statement)
            .await
            .map_err(|e| ApiError::sql(&e, sql))?;
        results.push(collect(output, limit, started, sql).await?);
    }
    Ok(())
}

/// Reads a statement's output: every row is counted, the first `limit`
/// kept.
async fn collect(
    output: Output,
    limit: usize,
    started: Instant,
    sql: &str,
) -> Result<StatementResult, ApiError> {
    let frame = match output {
        Output::Command { tag, rows, notice } => {
            return Ok(StatementResult::Command {
                tag,
                rows,
                notice,
                elapsed_ms: elapsed_ms(started),
            });
        }
        Output::Rows(frame) => frame,
    };
    let schema = frame.schema().as_arrow().clone();
    let failed = |e: datafusion::error::DataFusionError| {
        ApiError::sql(&tributary_executor::ExecError::DataFusion(e), sql)
    };
    let mut batches = frame.execute_stream().await.map_err(failed)?;
    let mut rows = Vec::new();
    let mut row_count = 0;
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(failed)?;
        row_count += batch.num_rows();
        if rows.len() < limit {
            append_rows(&batch, limit - rows.len(), &mut rows)
                .map_err(|e| ApiError::Internal(format!("rendering rows: {e}")))?;
        }
    }
    Ok(StatementResult::Rows {
        columns: columns(&schema),
        truncated: rows.len() < row_count,
        rows,
        row_count,
        elapsed_ms: elapsed_ms(started),
    })
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}
