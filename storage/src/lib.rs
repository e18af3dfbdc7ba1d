//! Tributary's storage: the partitioned log on object storage and the
//! metadata store beside it. It knows nothing of SQL.
//!
//! Each partition appends Kafka v2 record batches to a local write-ahead
//! segment with group commit (one fsync for every append waiting), seals it
//! by size or age, uploads it to the object store as an immutable object
//! with an index and a checksummed footer, registers it in the metadata
//! store, and keeps a copy in a bounded local cache.
//!
//! ```no_run
//! # async fn demo() -> tributary_storage::Result<()> {
//! use tributary_storage::{Log, LogConfig, MetadataStore, StreamConfig, open_object_store};
//! use tributary_storage::batch::{Compression, NewRecord, encode_batch};
//!
//! let config = LogConfig { data_dir: "data".into(), ..Default::default() };
//! let store = open_object_store("file:///tmp/tributary-objects")?;
//! let metadata = MetadataStore::open_sqlite(&config.data_dir.join("metadata.db")).await?;
//! let log = Log::open(config, store, metadata).await?;
//! log.create_stream("orders", StreamConfig { partitions: 3, ..Default::default() }).await?;
//! let batch = encode_batch(&[NewRecord { value: Some("hi".into()), ..Default::default() }], Compression::None)?;
//! let appended = log.append("orders", 0, batch).await?;
//! let read = log.read("orders", 0, appended.base_offset, 1 << 20).await?;
//! assert_eq!(read.batches.len(), 1);
//! log.shutdown().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod batch;
pub mod batch_builder;
pub mod cache;
pub mod config;
pub mod direct_io;
pub mod error;
pub mod local_file;
pub mod log;
pub mod metadata;
pub mod metered_store;
pub mod objects;
pub mod partition;
pub mod records;
pub mod segment;
pub mod wal;

pub use config::{LogConfig, StreamConfig, TimestampType};
pub use error::{Error, Result};
pub use log::Log;
pub use metadata::MetadataStore;
pub use objects::open_object_store;
pub use partition::{AppendOutcome, Partition, PendingAppend, ReadOutcome, RetentionOutcome};
