//! The uploader of a partition: turns each sealed write-ahead segment into a
//! segment object, puts it in the object store, registers it in the metadata
//! store, keeps a copy in the cache, and only then removes the local file.
//!
//! Every step may be retried: the object key is fixed by the segment's base
//! offset and the bytes are immutable, so a PUT that failed ambiguously is
//! simply put again, and registration ignores a second identical insert.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::writer::UploadJob;
use super::{Partition, RemoteSegment, SegmentSlot};
use crate::error::{Error, Result};
use crate::metadata::SegmentRecord;
use crate::metadata::store::now_ms;
use crate::objects::{self, Backoff};
use crate::segment;
use crate::wal::{self, WalSegment};

/// Uploads sealed segments in order until the channel closes.
pub(crate) async fn run_uploader(
    partition: Arc<Partition>,
    mut jobs: mpsc::UnboundedReceiver<UploadJob>,
) {
    while let Some(job) = jobs.recv().await {
        upload(&partition, &job.wal, &job.producers).await;
        drop(job.permit);
    }
}

fn backoff(partition: &Partition) -> Backoff {
    let config = &partition.ctx.config;
    Backoff::new(
        Duration::from_millis(config.retry_initial_backoff_ms),
        Duration::from_millis(config.retry_max_backoff_ms),
    )
}

/// Uploads one sealed segment, retrying each step until it succeeds, and
/// registers it with `producers`, the producer state at its end.
async fn upload(partition: &Arc<Partition>, wal: &Arc<WalSegment>, producers: &str) {
    let (tail, record) =
        objects::retry_forever("indexing a sealed segment", backoff(partition), || {
            std::future::ready(describe(partition, wal))
        })
        .await;
    let store = &partition.ctx.store;
    let timeout = partition.ctx.config.object_store_timeout();
    let key = record.object_path();
    let linked = match &partition.ctx.config.local_object_root {
        Some(root) => link_into_local_store(partition, wal, root, &key, &tail).await,
        None => false,
    };
    if !linked {
        // Only a real upload reads the data back: a linked segment is
        // published without its bytes passing through memory.
        let data = objects::retry_forever("reading a sealed segment", backoff(partition), || {
            read_data(wal)
        })
        .await;
        objects::retry_forever("segment upload", backoff(partition), || {
            let payload: PutPayload = [data.clone(), tail.clone()].into_iter().collect();
            objects::call(&key, timeout, store.put(&key, payload))
        })
        .await;
    }
    let metadata = &partition.ctx.metadata;
    objects::retry_forever("segment registration", backoff(partition), || {
        metadata.register_segment_with_producers(&record, producers)
    })
    .await;
    // The write-ahead file becomes the cached copy (a local store reads the
    // same bytes through its own link, so it needs none); if that fails,
    // it goes.
    let ctx = partition.ctx.clone();
    let path = wal.path().to_path_buf();
    let data_len = wal.len();
    let dir = partition.wal_dir.clone();
    let cache_key = key.clone();
    let retired = tokio::task::spawn_blocking(move || {
        if linked {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        } else if let Err(e) = ctx.cache.adopt(&cache_key, &path, data_len, &tail) {
            warn!(error = %e, "could not cache an uploaded segment; reads will use the object store");
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        wal::sync_dir(&dir)
    })
    .await;
    if !matches!(retired, Ok(Ok(()))) {
        warn!(path = %wal.path().display(), "could not retire an uploaded write-ahead segment; it is removed at the next start");
    }
    // Readers switch to the object (cached copy first) only now; until
    // here the write-ahead file served them, even after its rename.
    partition.write_segments().insert(
        record.base_offset,
        SegmentSlot::Remote(Arc::new(RemoteSegment::new(record.clone()))),
    );
    info!(stream = %partition.stream, partition = partition.partition, base_offset = record.base_offset, last_offset = record.last_offset, bytes = record.size_bytes, key = %key, "segment uploaded");
}

/// Publishes a sealed segment into a local-filesystem object store without
/// copying it: the index and footer are appended to the write-ahead file,
/// which is then hard-linked under the object's key and made durable. The
/// write-ahead name stays until the segment is registered, so a crash at
/// any point loses nothing (a recovery that finds the tail on the
/// unregistered file cuts it off, and this runs again). Returns false when
/// linking is impossible (another filesystem), so the caller uploads.
async fn link_into_local_store(
    partition: &Arc<Partition>,
    wal: &Arc<WalSegment>,
    root: &Path,
    key: &ObjectPath,
    tail: &Bytes,
) -> bool {
    let source = wal.path().to_path_buf();
    let target = objects::local_object_path(root, key);
    let data_len = wal.len();
    let tail = tail.clone();
    let work = move || -> Result<bool> {
        let parent = target.parent().unwrap_or(Path::new("/")).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&source)
            .map_err(|e| Error::io(&source, e))?;
        // An earlier attempt may have appended the tail already.
        file.set_len(data_len).map_err(|e| Error::io(&source, e))?;
        std::os::unix::fs::FileExt::write_all_at(&file, &tail, data_len)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&source, e))?;
        match std::fs::hard_link(&source, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&target).map_err(|e| Error::io(&target, e))?;
                std::fs::hard_link(&source, &target).map_err(|e| Error::io(&target, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
                file.set_len(data_len).map_err(|e| Error::io(&source, e))?;
                return Ok(false);
            }
            Err(e) => return Err(Error::io(&target, e)),
        }
        wal::sync_dir(&parent)?;
        Ok(true)
    };
    let mut backoff = backoff(partition);
    loop {
        let attempt = work.clone();
        match tokio::task::spawn_blocking(attempt).await {
            Ok(Ok(linked)) => return linked,
            Ok(Err(e)) => {
                backoff
                    .wait_after("publishing a segment into the local store", &e)
                    .await
            }
            Err(e) => {
                let e = Error::Internal(format!("publish task failed: {e}"));
                backoff
                    .wait_after("publishing a segment into the local store", &e)
                    .await;
            }
        }
    }
}

/// Builds the rest of a sealed segment's object (index and footer) from
/// its in-memory index, and its metadata row.
fn describe(partition: &Partition, wal: &WalSegment) -> Result<(Bytes, SegmentRecord)> {
    let (tail, footer) = segment::build_tail(wal.len(), &wal.index())?;
    let record = SegmentRecord {
        stream_id: partition.stream_id,
        partition: partition.partition,
        base_offset: footer.base_offset,
        last_offset: footer.last_offset,
        size_bytes: footer.object_len(),
        min_timestamp: footer.min_timestamp,
        max_timestamp: footer.max_timestamp,
        object_key: objects::segment_key(
            partition.stream_id,
            partition.partition,
            footer.base_offset,
        )
        .to_string(),
        created_at_ms: now_ms(),
    };
    Ok((tail, record))
}

/// Reads a sealed segment's batch data, for an upload. Blocking work on a
/// blocking thread.
async fn read_data(wal: &Arc<WalSegment>) -> Result<Bytes> {
    let reader = wal.clone();
    tokio::task::spawn_blocking(move || reader.read_all_blocking())
        .await
        .map_err(|e| Error::Internal(format!("segment read task failed: {e}")))?
}
