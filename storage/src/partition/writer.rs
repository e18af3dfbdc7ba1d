//! The single writer of a partition: assigns dense offsets, writes groups of
//! appends with one fsync each (group commit), advances the high watermark
//! only after the fsync, and seals segments by size and age.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::{debug, error, info};

use super::{Partition, SegmentSlot, WriterMessage};
use crate::batch;
use crate::config::TimestampType;
use crate::error::{Error, Result};
use crate::metadata::store::now_ms;
use crate::segment::IndexEntry;
use crate::wal::WalSegment;

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Offset of the first appended record.
    pub base_offset: i64,
    /// Offset of the last appended record.
    pub last_offset: i64,
    /// The append time, if the stream uses LogAppendTime; otherwise -1.
    pub log_append_time_ms: i64,
}

/// A sealed write-ahead segment on its way to the object store, with the
/// backlog slot it occupies (none for segments found at recovery).
pub(crate) type UploadJob = (Arc<WalSegment>, Option<OwnedSemaphorePermit>);

/// One queued append: its validated batches and where to answer.
type AppendRequest = (
    Vec<(batch::BatchHeader, bytes::Bytes)>,
    oneshot::Sender<Result<AppendOutcome>>,
);

type Pending = (oneshot::Sender<Result<AppendOutcome>>, AppendOutcome);

/// Runs the writer until it is told to shut down.
pub(crate) async fn run_writer(
    partition: Arc<Partition>,
    mut inbox: mpsc::Receiver<WriterMessage>,
    mut active: Arc<WalSegment>,
    uploads: mpsc::UnboundedSender<UploadJob>,
    backlog: Arc<Semaphore>,
) {
    let config = &partition.ctx.config;
    let age_max = Duration::from_millis(config.segment_age_max_ms);
    loop {
        let seal_at = tokio::time::Instant::from_std(active.opened_at() + age_max);
        let first = tokio::select! {
            message = inbox.recv() => match message {
                Some(m) => m,
                None => return,
            },
            () = tokio::time::sleep_until(seal_at), if !active.is_empty() => {
                active = seal(&partition, active, &uploads, &backlog).await;
                continue;
            }
        };
        // Producers answered by the last commit are sending their next
        // appends right now: let them, so they join this group.
        tokio::task::yield_now().await;
        let mut group = Vec::new();
        let mut group_bytes = 0usize;
        let mut shutdown = None;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                WriterMessage::Append { batches, reply } => {
                    group_bytes += batches.iter().map(|(h, _)| h.size).sum::<usize>();
                    group.push((batches, reply));
                }
                WriterMessage::Shutdown { done } => {
                    shutdown = Some(done);
                    break;
                }
            }
            if group_bytes >= config.group_commit_bytes_max {
                break;
            }
            next = inbox.try_recv().ok();
        }
        if !group.is_empty() {
            active = commit_group(&partition, active, group).await;
        }
        if let Some(done) = shutdown {
            info!(stream = %partition.stream, partition = partition.partition, "partition writer stopped");
            let _ = done.send(());
            return;
        }
        let segment_bytes_max = partition
            .stream_config()
            .segment_bytes
            .unwrap_or(config.segment_bytes_max);
        if active.len() >= segment_bytes_max {
            active = seal(&partition, active, &uploads, &backlog).await;
        }
    }
}

/// Assigns offsets to a group of appends, writes them with one fsync and
/// answers every request.
async fn commit_group(
    partition: &Arc<Partition>,
    active: Arc<WalSegment>,
    group: Vec<AppendRequest>,
) -> Arc<WalSegment> {
    let log_append = partition.stream_config().timestamp_type == TimestampType::LogAppendTime;
    let append_time = now_ms();
    let start_position = active.len();
    let mut next_offset = active.next_offset();
    let mut buf = BytesMut::new();
    let mut entries = Vec::new();
    let mut pending: Vec<Pending> = Vec::with_capacity(group.len());
    for (batches, reply) in group {
        let base_offset = next_offset;
        for (header, bytes) in batches {
            let at = buf.len();
            buf.extend_from_slice(&bytes);
            let stored = &mut buf[at..];
            batch::set_base_offset(stored, next_offset);
            let max_timestamp = if log_append {
                batch::stamp_log_append_time(stored, append_time);
                append_time
            } else {
                header.max_timestamp
            };
            entries.push(IndexEntry {
                base_offset: next_offset,
                last_offset: next_offset + i64::from(header.last_offset_delta),
                position: start_position + at as u64,
                size: header.size as u32,
                max_timestamp,
            });
            next_offset += i64::from(header.last_offset_delta) + 1;
        }
        let outcome = AppendOutcome {
            base_offset,
            last_offset: next_offset - 1,
            log_append_time_ms: if log_append { append_time } else { -1 },
        };
        pending.push((reply, outcome));
    }
    let segment = active.clone();
    let written = tokio::task::spawn_blocking(move || segment.append_blocking(&buf, entries)).await;
    let result = match written {
        Ok(result) => result,
        Err(join) => Err(Error::Internal(format!("append task failed: {join}"))),
    };
    match result {
        Ok(()) => {
            partition.high_watermark.send_replace(next_offset);
            for (reply, outcome) in pending {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            error!(stream = %partition.stream, partition = partition.partition, error = %e, "append failed; nothing of it was acknowledged");
            for (reply, _) in pending {
                let _ = reply.send(Err(copy_error(&e)));
            }
        }
    }
    active
}

/// The same failure for each waiting producer (`Error` is not `Clone`).
fn copy_error(e: &Error) -> Error {
    match e {
        Error::Io { path, source } => Error::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        other => Error::Internal(other.to_string()),
    }
}

/// Seals the active segment and starts a new one. Waits for a free upload
/// backlog slot first: while the object store is unavailable and the backlog
/// is full, the writer stops taking appends and producers feel it.
async fn seal(
    partition: &Arc<Partition>,
    active: Arc<WalSegment>,
    uploads: &mpsc::UnboundedSender<UploadJob>,
    backlog: &Arc<Semaphore>,
) -> Arc<WalSegment> {
    let Ok(permit) = backlog.clone().acquire_owned().await else {
        return active;
    };
    let dir = partition.wal_dir.clone();
    let base = active.next_offset();
    let created = tokio::task::spawn_blocking(move || WalSegment::create(&dir, base)).await;
    let fresh = match created {
        Ok(Ok(segment)) => Arc::new(segment),
        Ok(Err(e)) => {
            error!(error = %e, "could not start a new write-ahead segment; continuing in the current one");
            return active;
        }
        Err(e) => {
            error!(error = %e, "could not start a new write-ahead segment; continuing in the current one");
            return active;
        }
    };
    active.seal();
    debug!(stream = %partition.stream, partition = partition.partition, base_offset = active.base_offset(), bytes = active.len(), "sealed write-ahead segment");
    partition
        .write_segments()
        .insert(base, SegmentSlot::Wal(fresh.clone()));
    if uploads.send((active, Some(permit))).is_err() {
        debug!("uploader stopped; the sealed segment is uploaded at the next start");
    }
    fresh
}
