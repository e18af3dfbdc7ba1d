//! Cancel requests: psql's Ctrl-C and drivers' `cancel_query` arrive on a
//! new connection and fire the target connection's handle (pgwire's
//! `ConnectionManager`). pgwire itself stops a statement cancelled while the
//! handler runs it; rows are produced lazily, after the handler returns, so
//! [`Cancel`] extends the same request to the result still streaming out,
//! which then ends with 57014.

use std::sync::Arc;

use futures::channel::oneshot;
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use pgwire::api::{ClientInfo, ConnectionHandle};
use pgwire::error::{PgWireError, PgWireResult};

/// Watches for a cancel request against the results of one query message.
pub(crate) struct Cancel {
    arm: oneshot::Sender<oneshot::Receiver<()>>,
    fired: Shared<BoxFuture<'static, ()>>,
}

impl Cancel {
    /// A watcher not yet listening: results guarded by it can be built
    /// while pgwire still listens for the cancel itself.
    pub(crate) fn new() -> Self {
        let (arm, armed) = oneshot::channel::<oneshot::Receiver<()>>();
        let fired = async move {
            if let Ok(request) = armed.await
                && request.await.is_ok()
            {
                return;
            }
            // Never armed, or the next statement took the handle over
            // (which drops, rather than fires, this one): not a cancel.
            std::future::pending::<()>().await;
        };
        Self {
            arm,
            fired: fired.boxed().shared(),
        }
    }

    /// Takes over the connection's cancel handle from pgwire. Call it last
    /// in the handler, with nothing awaited after it: pgwire stops waiting
    /// for a cancel once the handler returns.
    pub(crate) async fn arm<C: ClientInfo>(self, client: &C) {
        if let Some(handle) = client.session_extensions().get::<Arc<ConnectionHandle>>() {
            let _ = self.arm.send(handle.start_query().await);
        }
    }

    /// Ends `items` with a 57014 error if the query is cancelled while they
    /// stream.
    pub(crate) fn guard<T: Send + 'static>(
        &self,
        items: impl Stream<Item = PgWireResult<T>> + Send + 'static,
    ) -> BoxStream<'static, PgWireResult<T>> {
        let state = (items.boxed(), self.fired.clone(), false);
        futures::stream::unfold(state, |(mut items, mut fired, stopped)| async move {
            if stopped {
                return None;
            }
            tokio::select! {
                biased;
                () = &mut fired => Some((Err(PgWireError::QueryCanceled), (items, fired, true))),
                next = items.next() => next.map(|item| (item, (items, fired, false))),
            }
        })
        .boxed()
    }
}
