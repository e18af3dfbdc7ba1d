//! Opening a partition at start: registered segments from the metadata
//! store, then every local write-ahead segment scanned and repaired; sealed
//! ones that never finished uploading are queued again. The producer state
//! starts from the snapshot registered with the newest segment and replays
//! the write-ahead batches after it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{info, warn};

use super::producers::ProducerStates;
use super::uploader::run_uploader;
use super::writer::{UploadJob, run_writer};
use super::{LogContext, Partition, RemoteSegment, SegmentSlot};
use crate::error::{Error, Result};
use crate::metadata::StreamRecord;
use crate::wal::{self, TornTail, WalSegment};

/// Opens one partition and starts its writer and uploader. Returns the torn
/// tails recovery cut off.
pub(crate) async fn open_partition(
    ctx: Arc<LogContext>,
    stream: &StreamRecord,
    partition: u32,
) -> Result<(Arc<Partition>, Vec<TornTail>)> {
    let log_start_offset = ctx
        .metadata
        .log_start_offset(stream.stream_id, partition)
        .await?;
    let registered = ctx.metadata.segments(stream.stream_id, partition).await?;
    let wal_dir = ctx
        .config
        .wal_dir()
        .join(stream.stream_id.to_string())
        .join(partition.to_string());
    let dir = wal_dir.clone();
    let registered_end = registered.last().map(|s| s.last_offset + 1);
    let producers = producers_at(
        &ctx,
        stream,
        partition,
        registered_end.unwrap_or(log_start_offset),
    )
    .await?;
    let local = tokio::task::spawn_blocking(move || {
        recover_local(&dir, registered_end, log_start_offset, producers)
    })
    .await
    .map_err(|e| Error::Internal(format!("recovery task failed: {e}")))??;

    let mut segments = BTreeMap::new();
    for record in registered {
        segments.insert(
            record.base_offset,
            SegmentSlot::Remote(Arc::new(RemoteSegment::new(record))),
        );
    }
    for wal in &local.segments {
        segments.insert(wal.base_offset(), SegmentSlot::Wal(wal.clone()));
    }
    let Some(active) = local.segments.last().cloned() else {
        return Err(Error::Internal("recovery left no active segment".into()));
    };
    let high_watermark = active.next_offset();
    let (writer_tx, writer_rx) = mpsc::channel(ctx.config.append_queue_depth.max(1));
    let (upload_tx, upload_rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(Semaphore::new(ctx.config.upload_backlog_max.max(1)));
    let partition = Arc::new(Partition {
        stream: stream.name.clone(),
        stream_id: stream.stream_id,
        partition,
        config: RwLock::new(stream.config.clone()),
        ctx,
        wal_dir,
        segments: RwLock::new(segments),
        high_watermark: watch::channel(high_watermark).0,
        log_start_offset: AtomicI64::new(log_start_offset),
        writer_tx,
        tasks: Mutex::new(Vec::new()),
    });
    let sealed = &local.segments[..local.segments.len() - 1];
    for (wal, producers) in sealed.iter().zip(local.producers_at_ends) {
        wal.seal();
        let _ = upload_tx.send(UploadJob {
            wal: wal.clone(),
            permit: None,
            producers,
        });
    }
    if !sealed.is_empty() {
        info!(stream = %partition.stream, partition = partition.partition, segments = sealed.len(), "resuming uploads of sealed segments");
    }
    let writer = tokio::spawn(run_writer(
        partition.clone(),
        writer_rx,
        active,
        local.producers,
        upload_tx,
        backlog,
    ));
    let uploader = tokio::spawn(run_uploader(partition.clone(), upload_rx));
    partition
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend([writer, uploader]);
    Ok((partition, local.torn))
}

/// The producer state at `registered_end`, the end of the newest registered
/// segment, from the snapshot registered with it. Without one (no segment
/// registered yet, or a log written before producer state was kept) it
/// starts empty: producers it does not know may start at any sequence.
async fn producers_at(
    ctx: &LogContext,
    stream: &StreamRecord,
    partition: u32,
    registered_end: i64,
) -> Result<ProducerStates> {
    let max_producers = ctx.config.producers_per_partition_max;
    let snapshot = ctx
        .metadata
        .producer_snapshot(stream.stream_id, partition)
        .await?;
    let Some((end_offset, json)) = snapshot else {
        return Ok(ProducerStates::new(max_producers));
    };
    if end_offset != registered_end {
        warn!(stream = %stream.name, partition, snapshot_end = end_offset, registered_end, "the producer state snapshot does not end where the registered segments do; producers written in between are forgotten");
    }
    match ProducerStates::from_snapshot(&json, max_producers) {
        Ok(states) => Ok(states),
        Err(e) => Err(Error::corrupt(
            format!("producer state of {}[{partition}]", stream.name),
            e.to_string(),
        )),
    }
}

struct LocalState {
    segments: Vec<Arc<WalSegment>>,
    torn: Vec<TornTail>,
    /// The producer state after every segment kept.
    producers: ProducerStates,
    /// A snapshot of the producer state at the end of each segment kept
    /// but the last (the sealed ones, registered with it after upload).
    producers_at_ends: Vec<String>,
}

/// Scans the write-ahead directory of a partition, replaying every batch
/// kept into `producers`. Blocking.
///
/// A file is already uploaded when registered segments cover it; with none
/// registered (retention deleted them all), when the next file starts at or
/// below the log start. A file holding the log start (a DeleteRecords moved
/// it into the middle of a segment) is kept.
fn recover_local(
    dir: &Path,
    registered_end: Option<i64>,
    log_start_offset: i64,
    mut producers: ProducerStates,
) -> Result<LocalState> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<(i64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(base) = name.to_str().and_then(wal::parse_file_name) else {
            warn!(path = %entry.path().display(), "ignoring an unexpected file in the write-ahead directory");
            continue;
        };
        files.push((base, entry.path()));
    }
    files.sort();
    let mut segments: Vec<(Arc<WalSegment>, String)> = Vec::new();
    let mut torn = Vec::new();
    let mut expected = registered_end;
    let next_bases: Vec<Option<i64>> = (0..files.len())
        .map(|i| files.get(i + 1).map(|(next, _)| *next))
        .collect();
    for ((base, path), next_base) in files.into_iter().zip(next_bases) {
        let uploaded = match registered_end {
            Some(end) => base < end,
            None => next_base.is_some_and(|next| next <= log_start_offset),
        };
        if uploaded {
            info!(path = %path.display(), "removing a write-ahead segment already uploaded or wholly below the log start");
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            continue;
        }
        let mut scratch = Vec::new();
        let (segment, tail) = WalSegment::recover(&path, base, |header| {
            producers.apply(
                header,
                header.base_offset,
                header.max_timestamp,
                &mut scratch,
            );
            scratch.clear();
        })?;
        if let Some(tail) = tail {
            warn!(path = %tail.path.display(), kept_bytes = tail.valid_len, truncated_bytes = tail.truncated_bytes, reason = %tail.reason, "truncated a torn write-ahead tail");
            torn.push(tail);
        }
        let gap = match expected {
            Some(expected) => base != expected,
            None => base > log_start_offset,
        };
        if gap && segment.is_empty() && !segments.is_empty() {
            // The writer creates the next file while the last syncs of the
            // one before run; a crash then leaves it empty, possibly past
            // the durable end. It holds nothing: the one before stays active.
            info!(path = %path.display(), "removing an empty write-ahead segment created past the durable end");
            drop(segment);
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            continue;
        }
        if gap {
            warn!(path = %path.display(), expected_offset = expected.unwrap_or(log_start_offset), "write-ahead segment does not start where the log ends; the gap is lost data");
        }
        expected = Some(segment.next_offset());
        segments.push((Arc::new(segment), producers.snapshot()));
    }
    if segments.is_empty() {
        let base = expected.unwrap_or(log_start_offset);
        let fresh = Arc::new(WalSegment::create(dir, base)?);
        segments.push((fresh, String::new()));
    }
    // Only the last segment stays active; an empty one before it (a crash
    // right after a seal created it) holds nothing to upload.
    let last = segments.len() - 1;
    let mut kept = Vec::with_capacity(segments.len());
    let mut producers_at_ends = Vec::with_capacity(segments.len());
    for (i, (segment, snapshot)) in segments.into_iter().enumerate() {
        if i < last && segment.is_empty() {
            let _ = std::fs::remove_file(segment.path());
            continue;
        }
        kept.push(segment);
        if i < last {
            producers_at_ends.push(snapshot);
        }
    }
    Ok(LocalState {
        segments: kept,
        torn,
        producers,
        producers_at_ends,
    })
}
