//! The pgwire listener: one task per connection.

use std::sync::Arc;

use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use tokio::net::TcpListener;
use tracing::{debug, warn};
use tributary_executor::Engine;
use tributary_executor::engine::CATALOG;

use super::handler::Handlers;

/// Installs `pg_catalog` (for psql's `\d` and drivers' introspection) and
/// serves connections from `listener` until the task is dropped.
pub(crate) async fn serve(engine: Arc<Engine>, listener: TcpListener) -> anyhow::Result<()> {
    datafusion_pg_catalog::setup_pg_catalog(
        engine.session_context(),
        CATALOG,
        EmptyContextProvider,
    )
    .map_err(|e| anyhow::anyhow!("setting up pg_catalog: {e}"))?;
    super::comment_functions::register(engine.session_context());
    let handlers = Arc::new(Handlers::new(engine));
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "pgwire accept failed");
                continue;
            }
        };
        let handlers = handlers.clone();
        tokio::spawn(async move {
            debug!(%peer, "pgwire connection");
            if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                debug!(%peer, error = %e, "pgwire connection ended with an error");
            }
        });
    }
}
