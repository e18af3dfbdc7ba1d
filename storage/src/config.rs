//! Settings of the log as a whole ([`LogConfig`]) and of each stream
//! ([`StreamConfig`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the log behaves on this node. Every field has a default that suits a
/// laptop demo: segments seal within half a minute, so objects appear quickly.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Directory for write-ahead segments and the segment cache.
    pub data_dir: PathBuf,
    /// A write-ahead segment is sealed once it holds this many bytes.
    pub segment_bytes_max: u64,
    /// A non-empty write-ahead segment is sealed once it is this old.
    pub segment_age_max_ms: u64,
    /// Bytes of sealed segments kept on local disk as a read cache.
    pub cache_bytes_max: u64,
    /// Sealed segments per partition waiting for upload before appends wait
    /// (back-pressure while the object store is unavailable).
    pub upload_backlog_max: usize,
    /// Append requests queued per partition before producers wait.
    pub append_queue_depth: usize,
    /// Bytes one group commit writes at most before it syncs.
    pub group_commit_bytes_max: usize,
    /// Allow direct I/O (bypassing the page cache) for write-ahead
    /// segments whose appends come in large groups, where the filesystem
    /// supports it (see [`crate::direct_io`]).
    pub direct_io: bool,
    /// How long one object-store call may take before it counts as failed.
    pub object_store_timeout_ms: u64,
    /// First delay between retries of a failed upload; doubles each time.
    pub retry_initial_backoff_ms: u64,
    /// Largest delay between retries of a failed upload.
    pub retry_max_backoff_ms: u64,
    /// How often retention is enforced.
    pub retention_check_interval_ms: u64,
    /// Idempotent producers remembered per partition; beyond it, the one
    /// that wrote longest ago is forgotten (its next batch is then taken
    /// at any sequence, as from a new producer).
    pub producers_per_partition_max: usize,
    /// The directory of the object store when it is the local filesystem
    /// (see [`crate::objects::local_root`]). Sealed segments are then
    /// published by hard-linking the write-ahead file into it instead of
    /// writing their bytes a second time. Set from the object store URL.
    #[serde(skip)]
    pub local_object_root: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("tributary-data"),
            segment_bytes_max: 16 * 1024 * 1024,
            segment_age_max_ms: 30_000,
            cache_bytes_max: 1024 * 1024 * 1024,
            upload_backlog_max: 8,
            append_queue_depth: 1024,
            group_commit_bytes_max: 8 * 1024 * 1024,
            direct_io: true,
            object_store_timeout_ms: 30_000,
            retry_initial_backoff_ms: 100,
            retry_max_backoff_ms: 10_000,
            retention_check_interval_ms: 60_000,
            producers_per_partition_max: 1_000,
            local_object_root: None,
        }
    }
}

impl LogConfig {
    /// Directory of the write-ahead segments of every partition.
    pub fn wal_dir(&self) -> PathBuf {
        self.data_dir.join("wal")
    }

    /// Directory of the local segment cache.
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache")
    }

    pub(crate) fn object_store_timeout(&self) -> Duration {
        Duration::from_millis(self.object_store_timeout_ms)
    }
}

/// Which time a record's timestamp holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampType {
    /// The time the producer gave (Kafka's CreateTime).
    #[default]
    CreateTime,
    /// The time the log appended the batch (Kafka's LogAppendTime).
    LogAppendTime,
}

/// Storage settings of one stream. Stored as JSON in the metadata store;
/// fields added later get their default for older streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    /// Number of partitions.
    pub partitions: u32,
    /// Sealed segments whose newest record is older than this are deleted.
    pub retention_ms: Option<u64>,
    /// Oldest sealed segments are deleted while a partition holds more.
    pub retention_bytes: Option<u64>,
    /// Overrides the log's `segment_bytes_max` for this stream.
    pub segment_bytes: Option<u64>,
    /// Which time record timestamps hold.
    pub timestamp_type: TimestampType,
    /// What the stream is to the layers above (the SQL definition: columns,
    /// format, watermark). Opaque here; `None` for a stream of raw records.
    pub definition: Option<serde_json::Value>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            partitions: 1,
            retention_ms: None,
            retention_bytes: None,
            segment_bytes: None,
            timestamp_type: TimestampType::CreateTime,
            definition: None,
        }
    }
}

impl StreamConfig {
    /// Checks that the values make sense.
    pub fn validate(&self) -> Result<()> {
        if self.partitions == 0 || self.partitions > 10_000 {
            return Err(Error::InvalidConfig(format!(
                "partitions must be between 1 and 10000, got {}",
                self.partitions
            )));
        }
        if self.segment_bytes == Some(0) {
            return Err(Error::InvalidConfig(
                "segment_bytes must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// The longest stream name accepted (Kafka's topic name limit).
pub const STREAM_NAME_LEN_MAX: usize = 249;

/// Checks a stream name: the characters Kafka allows in topic names, so the
/// name is safe in paths and object keys.
pub fn validate_stream_name(name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty()
        || name.len() > STREAM_NAME_LEN_MAX
        || !ok_chars
        || name == "."
        || name == ".."
    {
        return Err(Error::InvalidConfig(format!(
            "invalid stream name {name:?}: use 1 to {STREAM_NAME_LEN_MAX} of [a-zA-Z0-9._-]"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        assert!(validate_stream_name("orders").is_ok());
        assert!(validate_stream_name("a.b-c_d").is_ok());
        assert!(validate_stream_name("").is_err());
        assert!(validate_stream_name("..").is_err());
        assert!(validate_stream_name("a/b").is_err());
        assert!(validate_stream_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn stream_config_json_defaults_missing_fields() {
        let config: StreamConfig = serde_json::from_str(r#"{"partitions": 3}"#).unwrap();
        assert_eq!(config.partitions, 3);
        assert_eq!(config.timestamp_type, TimestampType::CreateTime);
    }
}
