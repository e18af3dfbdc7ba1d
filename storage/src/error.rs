//! The storage error type.

use std::path::PathBuf;

/// What can go wrong in the log or the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A record batch sent for append is not a valid Kafka v2 batch.
    #[error("invalid record batch: {reason}")]
    InvalidBatch {
        /// What is wrong with it.
        reason: String,
    },

    /// A read asked for an offset the partition does not hold.
    #[error(
        "offset {requested} is out of range for {stream}[{partition}]: the log holds offsets {log_start_offset}..{high_watermark}"
    )]
    OffsetOutOfRange {
        /// The stream read.
        stream: String,
        /// The partition read.
        partition: u32,
        /// The offset asked for.
        requested: i64,
        /// The first offset still retained.
        log_start_offset: i64,
        /// The offset the next append will get.
        high_watermark: i64,
    },

    /// No stream of that name exists.
    #[error("stream \"{0}\" does not exist")]
    UnknownStream(String),

    /// The stream exists but has no such partition.
    #[error("stream \"{stream}\" has no partition {partition} (it has {partitions})")]
    UnknownPartition {
        /// The stream.
        stream: String,
        /// The partition asked for.
        partition: u32,
        /// How many partitions the stream has.
        partitions: u32,
    },

    /// A stream of that name already exists.
    #[error("stream \"{0}\" already exists")]
    StreamExists(String),

    /// A stream name or configuration value is not acceptable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// A file on local disk could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file or object holds bytes that do not parse.
    #[error("corrupt data in {location}: {reason}")]
    Corrupt {
        /// The file path or object key.
        location: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The object store failed.
    #[error("object store error on {location}: {source}")]
    ObjectStore {
        /// The object key.
        location: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },

    /// An object-store call did not finish in time.
    #[error("object store call on {location} timed out after {timeout_ms} ms")]
    ObjectStoreTimeout {
        /// The object key.
        location: String,
        /// The timeout that passed.
        timeout_ms: u64,
    },

    /// The metadata store failed.
    #[error("metadata store error: {0}")]
    Metadata(#[from] sqlx::Error),

    /// A metadata migration failed.
    #[error("metadata migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),

    /// A batch of an idempotent producer whose sequence does not follow
    /// the producer's last batch in the partition (a batch was lost in
    /// between), or a new epoch that does not start at sequence 0.
    #[error(
        "out-of-order sequence from producer {producer_id} (epoch {producer_epoch}) on {stream}[{partition}]: expected sequence {expected}, got {received}"
    )]
    OutOfOrderSequence {
        /// The stream.
        stream: String,
        /// The partition.
        partition: u32,
        /// The producer id.
        producer_id: i64,
        /// The batch's producer epoch.
        producer_epoch: i16,
        /// The base sequence that would have been in order.
        expected: i32,
        /// The batch's base sequence.
        received: i32,
    },

    /// A batch of an idempotent producer with an epoch older than the
    /// producer's current one: a newer instance has taken its place.
    #[error(
        "producer {producer_id} on {stream}[{partition}] is fenced: its epoch {producer_epoch} is older than the current epoch {current_epoch}"
    )]
    InvalidProducerEpoch {
        /// The stream.
        stream: String,
        /// The partition.
        partition: u32,
        /// The producer id.
        producer_id: i64,
        /// The batch's producer epoch.
        producer_epoch: i16,
        /// The producer's current epoch in the partition.
        current_epoch: i16,
    },

    /// The partition writer stopped (the log is shutting down).
    #[error("the log for {stream}[{partition}] is shut down")]
    ShutDown {
        /// The stream.
        stream: String,
        /// The partition.
        partition: u32,
    },

    /// A state that means a bug in Tributary.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds a [`Error::Corrupt`] for a file or object.
    pub fn corrupt(location: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            location: location.to_string(),
            reason: reason.into(),
        }
    }

    /// Builds an [`Error::InvalidBatch`].
    pub fn invalid_batch(reason: impl Into<String>) -> Self {
        Self::InvalidBatch {
            reason: reason.into(),
        }
    }
}

/// The storage result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
