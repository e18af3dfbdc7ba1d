//! `COPY ... FROM STDIN` over the wire: the statement answers with
//! CopyInResponse, the client's CopyData messages feed the connection's
//! [`CopyIn`], and CopyDone appends the rows and completes with `COPY n`.
//! After a bad line the rest of the data is read and dropped, and the error
//! is reported at CopyDone, with nothing appended.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::ClientInfo;
use pgwire::api::copy::CopyHandler;
use pgwire::api::results::{CopyResponse, Response, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use tributary_executor::{CopyIn, Engine, ExecError};
use tributary_planner::CopyFrom;

use super::errors::to_pg;

/// The connection's `COPY` in progress, kept in its session extensions.
#[derive(Default)]
struct CopySlot(Mutex<Option<CopyState>>);

struct CopyState {
    copy: CopyIn,
    /// The first error; later data is ignored.
    failed: Option<ExecError>,
    /// Lines read when the next progress NOTICE is due.
    next_notice: usize,
}

/// A NOTICE tells the client how far a long COPY has come every this many
/// lines (psql prints each as it arrives).
const NOTICE_EVERY_LINES: usize = 250_000;

impl CopySlot {
    fn of<C: ClientInfo>(client: &C) -> Arc<Self> {
        client
            .session_extensions()
            .get_or_insert_with(Self::default)
    }

    fn lock(&self) -> MutexGuard<'_, Option<CopyState>> {
        // A poisoned lock means a panic mid-push; the state is dropped below.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts a `COPY ... FROM STDIN` on this connection.
pub(crate) fn start<C: ClientInfo>(
    client: &C,
    engine: &Engine,
    copy: &CopyFrom,
) -> PgWireResult<Response> {
    let copy = engine.copy_in(copy).map_err(to_pg)?;
    let columns = copy.column_count();
    *CopySlot::of(client).lock() = Some(CopyState {
        copy,
        failed: None,
        next_notice: NOTICE_EVERY_LINES,
    });
    Ok(Response::CopyIn(CopyResponse::new(
        0,
        columns,
        futures::stream::empty(),
    )))
}

/// Receives `COPY` data for every connection of a server.
#[derive(Debug)]
pub(crate) struct CopyReceiver;

#[async_trait]
impl CopyHandler for CopyReceiver {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let progress = {
            let slot = CopySlot::of(client);
            let mut guard = slot.lock();
            let Some(state) = guard.as_mut() else {
                return Ok(());
            };
            if state.failed.is_none()
                && let Err(e) = state.copy.push(&copy_data.data)
            {
                state.failed = Some(e);
            }
            let lines = state.copy.lines_read();
            (state.failed.is_none() && lines >= state.next_notice).then(|| {
                state.next_notice = lines + NOTICE_EVERY_LINES;
                format!(
                    "COPY {}: {lines} lines read; they are appended when the data ends",
                    state.copy.stream()
                )
            })
        };
        if let Some(message) = progress {
            let notice = ErrorInfo::new("NOTICE".into(), "00000".into(), message);
            client
                .send(PgWireBackendMessage::NoticeResponse(notice.into()))
                .await?;
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let state = CopySlot::of(client).lock().take();
        let Some(state) = state else {
            return Err(protocol_error("CopyDone without a COPY in progress"));
        };
        if let Some(e) = state.failed {
            return Err(to_pg(e));
        }
        let rows = state.copy.finish().await.map_err(to_pg)?;
        client
            .send(PgWireBackendMessage::CommandComplete(
                Tag::new("COPY").with_rows(rows as usize).into(),
            ))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        CopySlot::of(client).lock().take();
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            "57014".into(),
            format!("COPY from stdin failed: {}", fail.message),
        )))
    }
}

fn protocol_error(message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "08P01".into(),
        message.into(),
    )))
}
