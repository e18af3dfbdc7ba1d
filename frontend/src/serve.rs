//! `tributary serve`: opens the log and runs until SIGINT or SIGTERM.

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;
use tributary_storage::{Log, MetadataStore, open_object_store};

use crate::config::{ServeConfig, absolute};

/// Runs the server until a shutdown signal, then stops cleanly: every
/// acknowledged append is already durable, queued appends are finished.
pub(crate) async fn run(config: ServeConfig) -> anyhow::Result<()> {
    // First, so that everything opened below is counted.
    let metrics =
        tributary_web_ui::metrics::install().context("installing the metrics recorder")?;
    let data_dir = absolute(&config.data_dir)?;
    let object_store_url = config.object_store_url()?;
    let store = open_object_store(&object_store_url)
        .with_context(|| format!("opening object store {object_store_url}"))?;
    let metadata = match &config.metadata_url {
        Some(url) => MetadataStore::connect(url).await,
        None => MetadataStore::open_sqlite(&data_dir.join("metadata.db")).await,
    }
    .context("opening the metadata store")?;
    let mut log_config = config.log.clone();
    log_config.data_dir = data_dir.clone();
    log_config.local_object_root = tributary_storage::objects::local_root(&object_store_url);
    let log = Log::open(log_config, store, metadata)
        .await
        .context("opening the log")?;
    let engine = tributary_executor::Engine::new(log.clone()).context("starting the SQL engine")?;
    engine.set_checkpoint_interval(std::time::Duration::from_millis(
        config.checkpoint_interval_ms.max(1),
    ));
    engine.start_writers();
    if config.demo {
        crate::demo::create(&engine).await?;
    }
    let pg_listener = tokio::net::TcpListener::bind(&config.pg_listen)
        .await
        .with_context(|| format!("binding the Postgres port {}", config.pg_listen))?;
    let kafka_listener = tokio::net::TcpListener::bind(&config.kafka_listen)
        .await
        .with_context(|| format!("binding the Kafka port {}", config.kafka_listen))?;
    let kafka_config = kafka_config(&config, kafka_listener.local_addr()?)?;
    let http_listener = tokio::net::TcpListener::bind(&config.http_listen)
        .await
        .with_context(|| format!("binding the HTTP port {}", config.http_listen))?;
    // Handlers first: a signal sent as soon as "running" is logged must
    // find them installed, not the default action that kills the process.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    info!("listening pg={}", pg_listener.local_addr()?);
    info!("listening kafka={}", kafka_listener.local_addr()?);
    info!("listening http={}", http_listener.local_addr()?);
    let pg = tokio::spawn(crate::pg::serve(engine.clone(), pg_listener));
    let kafka = tokio::spawn(tributary_kafka_compat::serve(
        engine.clone(),
        kafka_listener,
        kafka_config,
    ));
    let http = tokio::spawn(tributary_web_ui::serve(
        engine.clone(),
        http_listener,
        tributary_web_ui::WebConfig {
            allowed_hosts: config.http_allowed_hosts.clone(),
            ..Default::default()
        },
        Some(metrics),
    ));
    info!(data_dir = %data_dir.display(), object_store = %object_store_url, "tributary is running");

    tokio::select! {
        _ = terminate.recv() => info!("SIGTERM received; shutting down"),
        _ = interrupt.recv() => info!("SIGINT received; shutting down"),
    }
    pg.abort();
    kafka.abort();
    http.abort();
    engine.stop_writers();
    log.shutdown().await;
    info!("tributary stopped");
    Ok(())
}

/// The Kafka listener's settings: the advertised address defaults to the
/// bound one.
fn kafka_config(
    config: &ServeConfig,
    bound: std::net::SocketAddr,
) -> anyhow::Result<tributary_kafka_compat::KafkaConfig> {
    let (advertised_host, advertised_port) = match &config.kafka_advertised {
        Some(advertised) => {
            let (host, port) = advertised
                .rsplit_once(':')
                .with_context(|| format!("--kafka-advertised {advertised} is not HOST:PORT"))?;
            let port = port
                .parse()
                .with_context(|| format!("--kafka-advertised {advertised}: bad port"))?;
            (host.to_string(), port)
        }
        None => (bound.ip().to_string(), bound.port()),
    };
    Ok(tributary_kafka_compat::KafkaConfig {
        advertised_host,
        advertised_port,
        auto_create_topics: config.kafka_auto_create_topics,
        default_partitions: config.kafka_default_partitions.max(1),
        ..Default::default()
    })
}
