//! Rows of the metadata store, as Rust values.

use crate::config::StreamConfig;

/// A stream as registered in the metadata store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// The stream's name (also its Kafka topic name).
    pub name: String,
    /// A number unique to this incarnation of the name: a stream dropped and
    /// created again gets a new one, so old objects never collide with new.
    pub stream_id: i64,
    /// Storage settings.
    pub config: StreamConfig,
    /// Creation time, milliseconds since the epoch.
    pub created_at_ms: i64,
}

/// A sealed segment registered in the metadata store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRecord {
    /// The stream incarnation it belongs to.
    pub stream_id: i64,
    /// The partition.
    pub partition: u32,
    /// Offset of its first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Size of the object in bytes.
    pub size_bytes: u64,
    /// Smallest batch max-timestamp.
    pub min_timestamp: i64,
    /// Largest batch max-timestamp.
    pub max_timestamp: i64,
    /// The object's key in the object store.
    pub object_key: String,
    /// Registration time, milliseconds since the epoch.
    pub created_at_ms: i64,
}

impl SegmentRecord {
    /// The object's key as an object-store path.
    pub fn object_path(&self) -> object_store::path::Path {
        object_store::path::Path::from(self.object_key.as_str())
    }
}

/// An offset a consumer group committed for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The consumer group.
    pub group_id: String,
    /// The stream (topic).
    pub stream: String,
    /// The partition.
    pub partition: u32,
    /// The next offset the group will read.
    pub offset: i64,
    /// Client-supplied metadata string.
    pub metadata: Option<String>,
}

/// A streaming job's checkpoint, registered in the metadata store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// The job (one incarnation of it).
    pub job: String,
    /// Its number, growing with each checkpoint of the job.
    pub epoch: i64,
    /// The state file in the object store.
    pub object_path: String,
    /// What the state covers (JSON, the job's to read).
    pub manifest: String,
}
