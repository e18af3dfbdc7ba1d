//! The listener: one task per connection.

use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::{debug, warn};
use tributary_executor::Engine;

use crate::connection::Connection;
use crate::group::GroupCoordinator;

/// Settings of the Kafka listener.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// The host clients are told to connect to (in Metadata responses).
    pub advertised_host: String,
    /// The port clients are told to connect to.
    pub advertised_port: u16,
    /// The largest request frame accepted; a larger one closes its
    /// connection (Kafka's `socket.request.max.bytes`).
    pub max_frame_bytes: usize,
    /// Whether a Metadata request for a missing topic creates it (Kafka's
    /// `auto.create.topics.enable`), as a raw stream.
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic (Kafka's `num.partitions`).
    pub default_partitions: u32,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            max_frame_bytes: 100 * 1024 * 1024,
            auto_create_topics: true,
            default_partitions: 1,
        }
    }
}

/// Serves Kafka clients from `listener` until the task is dropped.
/// The group coordinator's timers run as long as this does.
pub async fn serve(engine: Arc<Engine>, listener: TcpListener, config: KafkaConfig) {
    let config = Arc::new(config);
    let groups = Arc::new(GroupCoordinator::new());
    let _timers = AbortOnDrop(tokio::spawn({
        let groups = groups.clone();
        async move { groups.run_timers().await }
    }));
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "kafka accept failed");
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let connection = Connection::new(engine.clone(), config.clone(), groups.clone(), peer);
        tokio::spawn(async move {
            debug!(%peer, "kafka connection");
            connection.run(socket).await;
        });
    }
}

/// Stops a task when the future that started it is dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
