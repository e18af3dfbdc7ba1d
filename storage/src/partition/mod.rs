//! One partition of one stream: a single writer task, an uploader task, and
//! the set of segments readers look offsets up in.
//!
//! ```text
//! append ─▶ bounded queue ─▶ writer (group commit: one fsync per group)
//!                              │ seals by size/age
//!                              ▼
//!                         uploader ─▶ object store ─▶ metadata ─▶ cache
//! ```

mod producers;
mod reader;
mod recovery;
mod retention;
mod uploader;
mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::batch;
use crate::cache::SegmentCache;
use crate::config::{LogConfig, StreamConfig};
use crate::error::{Error, Result};
use crate::metadata::{MetadataStore, SegmentRecord};
use crate::segment::IndexEntry;
use crate::wal::WalSegment;

pub use reader::ReadOutcome;
pub(crate) use recovery::open_partition;
pub use retention::RetentionOutcome;
pub use writer::AppendOutcome;

/// How long shutdown waits for a writer to finish its queue.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// What every partition of a log shares.
#[derive(Debug)]
pub(crate) struct LogContext {
    pub(crate) config: LogConfig,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) metadata: MetadataStore,
    pub(crate) cache: SegmentCache,
}

/// Where a segment's bytes are.
#[derive(Debug, Clone)]
pub(crate) enum SegmentSlot {
    /// On local disk: the active write-ahead segment, or a sealed one not yet
    /// uploaded.
    Wal(Arc<WalSegment>),
    /// Uploaded and registered; maybe in the local cache.
    Remote(Arc<RemoteSegment>),
}

/// A sealed segment in the object store.
#[derive(Debug)]
pub(crate) struct RemoteSegment {
    pub(crate) record: SegmentRecord,
    pub(crate) key: ObjectPath,
    index: tokio::sync::OnceCell<Arc<Vec<IndexEntry>>>,
}

impl RemoteSegment {
    pub(crate) fn new(record: SegmentRecord) -> Self {
        Self {
            key: record.object_path(),
            record,
            index: tokio::sync::OnceCell::new(),
        }
    }
}

/// A message to the writer task.
#[derive(Debug)]
pub(crate) enum WriterMessage {
    /// Append these validated batches.
    Append {
        batches: Vec<(batch::BatchHeader, Bytes)>,
        reply: oneshot::Sender<Result<AppendOutcome>>,
    },
    /// Finish what is queued before this and stop.
    Shutdown { done: oneshot::Sender<()> },
}

/// An append queued in its partition's writer (see [`Partition::submit`]).
#[derive(Debug)]
pub struct PendingAppend {
    response: oneshot::Receiver<Result<AppendOutcome>>,
    stream: String,
    partition: u32,
    bytes: u64,
}

impl PendingAppend {
    /// Waits until the append is durable; its offsets.
    pub async fn durable(self) -> Result<AppendOutcome> {
        let shut_down = || Error::ShutDown {
            stream: self.stream.clone(),
            partition: self.partition,
        };
        let outcome = self.response.await.map_err(|_| shut_down())??;
        if !outcome.duplicate {
            let records = (outcome.last_offset - outcome.base_offset + 1).max(0) as u64;
            metrics::counter!("tributary_stream_records_in_total", "stream" => self.stream.clone())
                .increment(records);
            metrics::counter!("tributary_stream_bytes_in_total", "stream" => self.stream.clone())
                .increment(self.bytes);
        }
        Ok(outcome)
    }
}

/// One partition's log.
#[derive(Debug)]
pub struct Partition {
    stream: String,
    stream_id: i64,
    partition: u32,
    config: RwLock<StreamConfig>,
    ctx: Arc<LogContext>,
    wal_dir: PathBuf,
    segments: RwLock<BTreeMap<i64, SegmentSlot>>,
    high_watermark: watch::Sender<i64>,
    log_start_offset: AtomicI64,
    writer_tx: mpsc::Sender<WriterMessage>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Partition {
    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The partition number.
    pub fn id(&self) -> u32 {
        self.partition
    }

    /// The offset the next appended record gets; records below it are
    /// durable and readable.
    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// The first offset still retained.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// Watches the high watermark (long-polling fetches, subscriptions).
    pub fn watch_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Validates and appends a blob of one or more v2 batches; resolves once
    /// they are durable.
    pub async fn append(&self, blob: Bytes) -> Result<AppendOutcome> {
        self.submit(blob).await?.durable().await
    }

    /// Validates a blob of one or more v2 batches and hands it to the
    /// writer, behind every blob handed over before it: offsets are
    /// assigned in that order. Resolves once it is queued; the returned
    /// [`PendingAppend`] resolves once it is durable.
    pub async fn submit(&self, blob: Bytes) -> Result<PendingAppend> {
        let bytes = blob.len() as u64;
        self.hand_over(batch::split_batches(blob)?, bytes).await
    }

    /// [`Partition::submit`] for batches this process built, whose CRCs
    /// are not computed again ([`batch::split_built_batches`]). A view's
    /// job hands over its next output while the last one's fdatasync runs,
    /// so they share group commits.
    pub async fn submit_built(&self, blob: Bytes) -> Result<PendingAppend> {
        let bytes = blob.len() as u64;
        self.hand_over(batch::split_built_batches(blob)?, bytes)
            .await
    }

    async fn hand_over(
        &self,
        batches: Vec<(batch::BatchHeader, Bytes)>,
        bytes: u64,
    ) -> Result<PendingAppend> {
        let (reply, response) = oneshot::channel();
        self.writer_tx
            .send(WriterMessage::Append { batches, reply })
            .await
            .map_err(|_| self.shut_down())?;
        Ok(PendingAppend {
            response,
            stream: self.stream.clone(),
            partition: self.partition,
            bytes,
        })
    }

    /// Number of segments by location: (local write-ahead, uploaded).
    pub fn segment_counts(&self) -> (usize, usize) {
        let segments = self.read_segments();
        let wal = segments
            .values()
            .filter(|s| matches!(s, SegmentSlot::Wal(_)))
            .count();
        (wal, segments.len() - wal)
    }

    /// Bytes in local write-ahead segments (not yet uploaded).
    pub fn local_bytes(&self) -> u64 {
        self.read_segments()
            .values()
            .map(|s| match s {
                SegmentSlot::Wal(w) => w.len(),
                SegmentSlot::Remote(_) => 0,
            })
            .sum()
    }

    /// Bytes held by the partition's segments.
    pub fn size_bytes(&self) -> u64 {
        self.read_segments()
            .values()
            .map(|s| match s {
                SegmentSlot::Wal(w) => w.len(),
                SegmentSlot::Remote(r) => r.record.size_bytes,
            })
            .sum()
    }

    pub(crate) fn stream_config(&self) -> StreamConfig {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_stream_config(&self, config: StreamConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    fn read_segments(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<i64, SegmentSlot>> {
        self.segments.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_segments(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<i64, SegmentSlot>> {
        self.segments.write().unwrap_or_else(|e| e.into_inner())
    }

    fn shut_down(&self) -> Error {
        Error::ShutDown {
            stream: self.stream.clone(),
            partition: self.partition,
        }
    }

    /// Stops the writer after it has finished what is queued, and stops the
    /// uploader (pending uploads resume at the next start).
    pub(crate) async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        let drained = async {
            if self
                .writer_tx
                .send(WriterMessage::Shutdown { done })
                .await
                .is_ok()
            {
                let _ = finished.await;
            }
        };
        // A writer held up by a full upload backlog (object store down) may
        // never get to the message; everything it acknowledged is durable,
        // so stopping it is safe, and queued appends are answered ShutDown.
        if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
            tracing::warn!(stream = %self.stream, partition = self.partition, "writer did not drain in time; stopping it");
        }
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            task.abort();
        }
    }

    /// Removes the partition's local files (after its stream was dropped).
    pub(crate) fn remove_local_files(&self) {
        let _ = std::fs::remove_dir_all(&self.wal_dir);
    }
}
