//! `GET /api/subscribe?sql=SUBSCRIBE ...`: a subscription as server-sent
//! events. The first event (`columns`) names the columns; each batch of
//! changes is one `rows` event; a failure is a `failure` event. Closing the
//! connection (the browser's `EventSource.close()`) ends the subscription.

use std::convert::Infallible;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};
use serde::Deserialize;
use tributary_executor::{Output, Statement};

use crate::AppState;
use crate::error::ApiError;
use crate::rows::{append_rows, columns};

/// The query string.
#[derive(Debug, Deserialize)]
pub(crate) struct SubscribeParams {
    /// One `SUBSCRIBE` statement (`SUBSCRIBE TO view`, `SUBSCRIBE
    /// stream`, `SUBSCRIBE (query)`).
    pub(crate) sql: String,
}

/// Starts the subscription; statement errors are answered before the
/// event stream begins, as a JSON error with its SQLSTATE.
pub(crate) async fn open(
    State(state): State<AppState>,
    params: Result<Query<SubscribeParams>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(params) = params.map_err(|rejection| ApiError::Rejected {
        status: rejection.status(),
        message: rejection.body_text(),
    })?;
    let sql = params.sql;
    let session = state.engine.session();
    let mut statements = session.parse(&sql).map_err(|e| ApiError::sql(&e, &sql))?;
    let statement = match (statements.pop(), statements.is_empty()) {
        (Some(statement @ (Statement::Subscribe(_) | Statement::CopySubscribe(_))), true) => {
            statement
        }
        _ => {
            return Err(ApiError::BadRequest(
                "a live tail takes exactly one SUBSCRIBE statement".into(),
            ));
        }
    };
    let output = session
        .execute_statement(statement)
        .await
        .map_err(|e| ApiError::sql(&e, &sql))?;
    let Output::Rows(frame) = output else {
        return Err(ApiError::Internal("SUBSCRIBE returned no rows".into()));
    };
    let header = columns(frame.schema().as_arrow());
    let batches = frame
        .execute_stream()
        .await
        .map_err(|e| ApiError::sql(&tributary_executor::ExecError::DataFusion(e), &sql))?;
    tracing::debug!(%sql, "live tail opened");
    let first = Event::default().event("columns").json_data(&header);
    let changes = batches.map(|batch| {
        let event = batch
            .map_err(|e| e.to_string())
            .and_then(|batch| {
                let mut rows = Vec::with_capacity(batch.num_rows());
                append_rows(&batch, usize::MAX, &mut rows).map_err(|e| e.to_string())?;
                Event::default()
                    .event("rows")
                    .json_data(&rows)
                    .map_err(|e| e.to_string())
            })
            .unwrap_or_else(|message| Event::default().event("failure").data(message));
        Ok(event)
    });
    let first = first.unwrap_or_else(|e| Event::default().event("failure").data(e.to_string()));
    Ok(
        Sse::new(stream::once(async move { Ok(first) }).chain(changes))
            .keep_alive(KeepAlive::default()),
    )
}
