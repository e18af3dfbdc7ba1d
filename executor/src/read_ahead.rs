//! Reading a partition one stretch ahead: the read of the records after
//! the ones being decoded starts before they are needed, so reading (a
//! cache lookup or a file read on another thread) and decoding overlap.
//! Batch scans and streaming jobs both read this way.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tributary_storage::{Partition, ReadOutcome};

use crate::error::{ExecError, Result};

/// A log read started before its records are needed; dropping it cancels
/// the read.
#[derive(Debug)]
pub(crate) struct ReadAhead {
    offset: i64,
    read: JoinHandle<tributary_storage::Result<ReadOutcome>>,
}

impl ReadAhead {
    /// Starts reading up to `max_bytes` of `partition` from `offset`.
    ///
    /// A task spawned from a worker waits in that worker's LIFO slot,
    /// which no other worker takes, until the spawning task yields; the
    /// caller is about to decode for a while without yielding, so this
    /// yields once and the read is under way before it returns.
    pub(crate) async fn start(partition: &Arc<Partition>, offset: i64, max_bytes: usize) -> Self {
        let partition = partition.clone();
        let read = tokio::spawn(async move { partition.read(offset, max_bytes).await });
        tokio::task::yield_now().await;
        Self { offset, read }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.read.abort();
    }
}

/// Reads up to `max_bytes` of `partition` from `offset`: the read started
/// ahead if it was for `offset` (taken out of `ahead`), a new one if not.
pub(crate) async fn read_at(
    ahead: &mut Option<ReadAhead>,
    partition: &Arc<Partition>,
    offset: i64,
    max_bytes: usize,
) -> Result<ReadOutcome> {
    match ahead.take() {
        Some(mut started) if started.offset == offset => (&mut started.read)
            .await
            .map_err(|e| ExecError::Internal(format!("log read task failed: {e}")))?
            .map_err(ExecError::from),
        // Any other read is dropped, which cancels it.
        _ => Ok(partition.read(offset, max_bytes).await?),
    }
}
