//! The metadata store: what the object store alone cannot say. Which streams
//! exist, where each partition's log starts, which sealed segments are
//! registered, and the offsets consumer groups committed.
//!
//! One `sqlx` code path serves SQLite (embedded, the default: a file in the
//! data dir) and PostgreSQL (several nodes sharing one object store); the
//! schema lives in `storage/migrations` and is applied on open.

mod records;
pub(crate) mod store;

pub use records::{CheckpointRecord, CommittedOffset, SegmentRecord, StreamRecord};
pub use store::MetadataStore;
