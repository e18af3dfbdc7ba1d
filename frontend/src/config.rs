//! Server configuration: defaults, then a TOML file (`--config`), then
//! `TRIBUTARY_*` environment variables, then flags.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use tributary_storage::LogConfig;

/// Flags of `tributary serve`. Each also reads a `TRIBUTARY_*` variable.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "TRIBUTARY_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for write-ahead segments, cache and embedded metadata
    /// [default: ./tributary-data].
    #[arg(long, env = "TRIBUTARY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Object store URL: file:///dir, s3://bucket/prefix (AWS_* variables
    /// configure endpoint and credentials) [default: file://<data-dir>/objects].
    #[arg(long, env = "TRIBUTARY_OBJECT_STORE")]
    object_store: Option<String>,
    /// Metadata store URL: sqlite://path or postgres://user:pass@host/db
    /// [default: sqlite://<data-dir>/metadata.db].
    #[arg(long, env = "TRIBUTARY_METADATA_URL")]
    metadata_url: Option<String>,
    /// Address for the Postgres wire protocol (port 0 picks a free port)
    /// [default: 127.0.0.1:5433].
    #[arg(long, env = "TRIBUTARY_PG_LISTEN")]
    pg_listen: Option<String>,
    /// Address for the Kafka protocol (port 0 picks a free port)
    /// [default: 127.0.0.1:9092].
    #[arg(long, env = "TRIBUTARY_KAFKA_LISTEN")]
    kafka_listen: Option<String>,
    /// Address for the web console, JSON API and /metrics (port 0 picks a
    /// free port) [default: 127.0.0.1:8080].
    #[arg(long, env = "TRIBUTARY_HTTP_LISTEN")]
    http_listen: Option<String>,
    /// Host names the web console and API answer to, comma-separated,
    /// beside IP addresses and localhost (`*` for any) [default: none].
    #[arg(long, env = "TRIBUTARY_HTTP_ALLOWED_HOSTS", value_delimiter = ',')]
    http_allowed_hosts: Option<Vec<String>>,
    /// Create sample streams fed by the built-in Nexmark generator, views
    /// over windows and a sink (each only if its name is free), so the web
    /// console has live data at once.
    #[arg(long)]
    demo: bool,
    /// HOST:PORT Kafka clients are told to connect to [default: the
    /// address the Kafka listener bound].
    #[arg(long, env = "TRIBUTARY_KAFKA_ADVERTISED")]
    kafka_advertised: Option<String>,
    /// Milliseconds between checkpoints of each stateful job (views and
    /// sinks with GROUP BY or windows) [default: 5000].
    #[arg(long, env = "TRIBUTARY_CHECKPOINT_INTERVAL_MS")]
    checkpoint_interval_ms: Option<u64>,
}

/// The resolved server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ServeConfig {
    /// Directory for local data.
    pub(crate) data_dir: PathBuf,
    /// Object store URL; `None` means `file://<data_dir>/objects`.
    pub(crate) object_store: Option<String>,
    /// Metadata store URL; `None` means SQLite in the data dir.
    pub(crate) metadata_url: Option<String>,
    /// Postgres wire protocol listen address.
    pub(crate) pg_listen: String,
    /// Kafka protocol listen address.
    pub(crate) kafka_listen: String,
    /// Whether to create the demo's streams, views and sink at start.
    pub(crate) demo: bool,
    /// HTTP listen address (web console, API, metrics).
    pub(crate) http_listen: String,
    /// Host names the HTTP server answers to beside addresses and localhost.
    pub(crate) http_allowed_hosts: Vec<String>,
    /// `HOST:PORT` advertised to Kafka clients; `None` means the bound
    /// listen address.
    pub(crate) kafka_advertised: Option<String>,
    /// Whether Kafka Metadata requests create missing topics.
    pub(crate) kafka_auto_create_topics: bool,
    /// Partitions of topics created by Kafka clients.
    pub(crate) kafka_default_partitions: u32,
    /// Milliseconds between checkpoints of each stateful job.
    pub(crate) checkpoint_interval_ms: u64,
    /// Log settings (`[log]` table).
    pub(crate) log: LogConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("tributary-data"),
            object_store: None,
            metadata_url: None,
            pg_listen: "127.0.0.1:5433".into(),
            kafka_listen: "127.0.0.1:9092".into(),
            http_listen: "127.0.0.1:8080".into(),
            http_allowed_hosts: Vec::new(),
            demo: false,
            kafka_advertised: None,
            kafka_auto_create_topics: true,
            kafka_default_partitions: 1,
            checkpoint_interval_ms: tributary_executor::engine::DEFAULT_CHECKPOINT_INTERVAL
                .as_millis() as u64,
            log: LogConfig::default(),
        }
    }
}

impl ServeArgs {
    /// Applies the precedence: defaults < file < environment < flags (clap
    /// already merged the last two).
    pub(crate) fn resolve(self) -> anyhow::Result<ServeConfig> {
        let mut config = match &self.config {
            Some(path) => load_file(path)?,
            None => ServeConfig::default(),
        };
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        if let Some(url) = self.object_store {
            config.object_store = Some(url);
        }
        if let Some(url) = self.metadata_url {
            config.metadata_url = Some(url);
        }
        if let Some(addr) = self.pg_listen {
            config.pg_listen = addr;
        }
        if let Some(addr) = self.kafka_listen {
            config.kafka_listen = addr;
        }
        config.demo |= self.demo;
        if let Some(hosts) = self.http_allowed_hosts {
            config.http_allowed_hosts = hosts;
        }
        if let Some(addr) = self.http_listen {
            config.http_listen = addr;
        }
        if let Some(addr) = self.kafka_advertised {
            config.kafka_advertised = Some(addr);
        }
        if let Some(ms) = self.checkpoint_interval_ms {
            config.checkpoint_interval_ms = ms;
        }
        config.log.data_dir = config.data_dir.clone();
        Ok(config)
    }
}

impl ServeConfig {
    /// The object store URL, defaulting to a directory in the data dir.
    pub(crate) fn object_store_url(&self) -> anyhow::Result<String> {
        match &self.object_store {
            Some(url) => Ok(url.clone()),
            None => Ok(format!(
                "file://{}",
                absolute(&self.data_dir.join("objects"))?.display()
            )),
        }
    }
}

fn load_file(path: &Path) -> anyhow::Result<ServeConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

/// `path` made absolute against the working directory, creating it.
pub(crate) fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(std::fs::canonicalize(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_apply_and_unknown_keys_are_reported() {
        let config: ServeConfig =
            toml::from_str("data_dir = \"/x\"\n[log]\nsegment_bytes_max = 1024\n").unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/x"));
        assert_eq!(config.log.segment_bytes_max, 1024);
        assert!(toml::from_str::<ServeConfig>("data_dri = \"/x\"").is_err());
    }
}
