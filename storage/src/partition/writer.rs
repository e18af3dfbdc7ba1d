//! The single writer of a partition: assigns dense offsets, writes groups of
//! appends with one fsync each (group commit), advances the high watermark
//! only after the fsync, and seals segments by size and age. The next group
//! is written while the previous one syncs. Batches of idempotent producers
//! are checked against the partition's producer state here, where offsets
//! are assigned; a group's changes to it are taken back if the group fails.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use super::producers::{ProducerStates, Refusal, UndoStep, Verdict};
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
    /// Whether every batch was a retry of one already written by the same
    /// idempotent producer: nothing was written, and the offsets are the
    /// ones the batches got the first time.
    pub duplicate: bool,
}

/// A sealed write-ahead segment on its way to the object store.
#[derive(Debug)]
pub(crate) struct UploadJob {
    pub(crate) wal: Arc<WalSegment>,
    /// The backlog slot it occupies (none for segments found at recovery).
    pub(crate) permit: Option<OwnedSemaphorePermit>,
    /// The partition's producer state at the segment's end (a snapshot),
    /// registered with it.
    pub(crate) producers: String,
}

/// One queued append: its validated batches and where to answer.
type AppendRequest = (
    Vec<(batch::BatchHeader, bytes::Bytes)>,
    oneshot::Sender<Result<AppendOutcome>>,
);

type Pending = (oneshot::Sender<Result<AppendOutcome>>, AppendOutcome);

/// fdatasyncs of one partition that may run at once. A second one writes
/// out newer pages while the first waits for the device to flush, as the
/// syncs of different partitions overlap.
const SYNCS_IN_FLIGHT_MAX: usize = 2;

/// The group size from which a segment is written with direct I/O: the
/// mean group of the segment before it, or, for the first segment since
/// the start, its own first group. Smaller groups wait on the device: a
/// buffered write returns at memory speed and leaves the device one round
/// trip (the fdatasync), where a direct write would add its own. Larger
/// groups are bound by bandwidth, and new page-cache pages cost more CPU
/// than the bytes themselves (docs/storage.md). A job's output comes in
/// blobs of a few MiB; 64 producers of 16 KiB batches make groups of about
/// 1 MiB.
const DIRECT_GROUP_BYTES_MIN: u64 = 2 * 1024 * 1024;

/// A group written to the active segment whose fdatasync has not finished.
struct WrittenGroup {
    entries: Vec<IndexEntry>,
    /// File length after this group.
    end_len: u64,
    /// The high watermark once this group is durable.
    next_offset: i64,
    pending: Vec<Pending>,
    /// How to take this group's changes to the producer state back.
    undo: Vec<UndoStep>,
}

/// A running fdatasync and the groups it makes durable (those written
/// before it started).
struct RunningSync {
    task: JoinHandle<Result<()>>,
    groups: Vec<WrittenGroup>,
    started: Instant,
    bytes: usize,
}

/// The writer's state: the active segment and the groups between written
/// and durable. Group N+1 is written while group N's fdatasync runs, so the
/// disk is never idle while producers wait.
struct Writer {
    partition: Arc<Partition>,
    active: Arc<WalSegment>,
    uploads: mpsc::UnboundedSender<UploadJob>,
    backlog: Arc<Semaphore>,
    /// File length including written groups not yet durable.
    written_len: u64,
    /// The offset the next written record gets.
    next_offset: i64,
    /// Idempotent producers, including the batches of written groups not
    /// yet durable (a failed group's are taken back).
    producers: ProducerStates,
    /// Written groups waiting for the next fdatasync.
    unsynced: Vec<WrittenGroup>,
    unsynced_bytes: usize,
    /// Running fdatasyncs, oldest first.
    syncing: VecDeque<RunningSync>,
    /// Groups written to the active segment, and their bytes.
    segment_groups: u64,
    segment_group_bytes: u64,
    /// The mean group of the segment before the active one (none for the
    /// first since the start): it decides, at the active segment's first
    /// write, whether that segment is written with direct I/O.
    previous_mean_group: Option<u64>,
    /// What this writer did, logged when it stops.
    stats: WriterStats,
}

/// Counters of one writer's work, logged when it stops: how big its groups
/// and fdatasyncs were, and where its time went.
#[derive(Debug, Default)]
struct WriterStats {
    groups: u64,
    appends: u64,
    syncs: u64,
    synced_bytes: u64,
    write_time: Duration,
    /// Time from the start of each fdatasync to its finish being handled.
    sync_time: Duration,
}

/// Runs the writer until it is told to shut down.
pub(crate) async fn run_writer(
    partition: Arc<Partition>,
    mut inbox: mpsc::Receiver<WriterMessage>,
    active: Arc<WalSegment>,
    producers: ProducerStates,
    uploads: mpsc::UnboundedSender<UploadJob>,
    backlog: Arc<Semaphore>,
) {
    let config = partition.ctx.config.clone();
    let age_max = Duration::from_millis(config.segment_age_max_ms);
    // Written but not durable bytes are capped, so a writer ahead of a slow
    // disk stops taking appends and producers feel it.
    let unsynced_max = 4 * config.group_commit_bytes_max;
    let mut writer = Writer {
        written_len: active.len(),
        next_offset: active.next_offset(),
        producers,
        partition,
        active,
        uploads,
        backlog,
        unsynced: Vec::new(),
        unsynced_bytes: 0,
        syncing: VecDeque::new(),
        segment_groups: 0,
        segment_group_bytes: 0,
        previous_mean_group: None,
        stats: WriterStats::default(),
    };
    loop {
        let seal_at = tokio::time::Instant::from_std(writer.active.opened_at() + age_max);
        let first = tokio::select! {
            biased;
            synced = wait_for(&mut writer.syncing), if !writer.syncing.is_empty() => {
                writer.finish_sync(synced).await;
                continue;
            }
            message = inbox.recv(), if writer.unsynced_bytes < unsynced_max => match message {
                Some(m) => m,
                None => return,
            },
            () = tokio::time::sleep_until(seal_at), if writer.written_len > 0 => {
                writer.roll().await;
                continue;
            }
        };
        // Producers answered by the last sync are sending their next
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
            writer.write_group(group).await;
        }
        if let Some(done) = shutdown {
            writer.drain().await;
            let stats = &writer.stats;
            info!(
                stream = %writer.partition.stream,
                partition = writer.partition.partition,
                groups = stats.groups,
                appends = stats.appends,
                syncs = stats.syncs,
                synced_bytes = stats.synced_bytes,
                write_ms = stats.write_time.as_millis() as u64,
                sync_ms = stats.sync_time.as_millis() as u64,
                "partition writer stopped"
            );
            let _ = done.send(());
            return;
        }
        let segment_bytes_max = writer
            .partition
            .stream_config()
            .segment_bytes
            .unwrap_or(config.segment_bytes_max);
        if writer.written_len >= segment_bytes_max {
            writer.roll().await;
        }
    }
}

/// The outcome of the oldest running fdatasync (called only when there is
/// one).
async fn wait_for(syncing: &mut VecDeque<RunningSync>) -> Result<()> {
    let Some(running) = syncing.front_mut() else {
        return std::future::pending().await;
    };
    match (&mut running.task).await {
        Ok(result) => result,
        Err(join) => Err(Error::Internal(format!("fdatasync task failed: {join}"))),
    }
}

impl Writer {
    /// Assigns offsets to a group of appends and writes it after the
    /// groups already written; it becomes durable with the next fdatasync.
    /// An append refused by the producer checks is answered at once; a
    /// duplicate is answered with this group, once its original is durable.
    async fn write_group(&mut self, group: Vec<AppendRequest>) {
        let log_append =
            self.partition.stream_config().timestamp_type == TimestampType::LogAppendTime;
        let append_time = now_ms();
        let start_position = self.written_len;
        let mut next_offset = self.next_offset;
        let mut parts = Vec::new();
        let mut len = 0usize;
        let mut entries = Vec::new();
        let mut undo = Vec::new();
        let mut pending: Vec<Pending> = Vec::with_capacity(group.len());
        for (batches, reply) in group {
            let (parts_mark, len_mark, entries_mark, undo_mark) =
                (parts.len(), len, entries.len(), undo.len());
            let first_offset = next_offset;
            let mut answer: Option<(i64, i64)> = None;
            let mut duplicate_time = None;
            let mut refused = None;
            for (header, bytes) in batches {
                let (base_offset, last_offset) = match self.producers.check(&header) {
                    Err(refusal) => {
                        refused = Some(self.refusal(&header, refusal));
                        break;
                    }
                    Ok(Verdict::Duplicate(original)) => {
                        duplicate_time.get_or_insert(original.max_timestamp);
                        (original.base_offset, original.last_offset)
                    }
                    Ok(Verdict::Append) => {
                        let position = start_position + len as u64;
                        len += bytes.len();
                        let max_timestamp = if log_append {
                            // The append time changes fields the CRC
                            // covers: the batch is rewritten.
                            let mut stored = BytesMut::from(&bytes[..]);
                            batch::set_base_offset(&mut stored, next_offset);
                            batch::stamp_log_append_time(&mut stored, append_time);
                            parts.push(stored.freeze());
                            append_time
                        } else {
                            parts.extend(batch::with_base_offset(&bytes, next_offset));
                            header.max_timestamp
                        };
                        self.producers
                            .apply(&header, next_offset, max_timestamp, &mut undo);
                        let last_offset = next_offset + i64::from(header.last_offset_delta);
                        entries.push(IndexEntry {
                            base_offset: next_offset,
                            last_offset,
                            position,
                            size: header.size as u32,
                            max_timestamp,
                        });
                        next_offset = last_offset + 1;
                        (
                            last_offset - i64::from(header.last_offset_delta),
                            last_offset,
                        )
                    }
                };
                answer = Some(match answer {
                    None => (base_offset, last_offset),
                    Some((base, _)) => (base, last_offset),
                });
            }
            if let Some(e) = refused {
                // Nothing of a refused append is written.
                self.producers.undo(undo.drain(undo_mark..));
                parts.truncate(parts_mark);
                len = len_mark;
                entries.truncate(entries_mark);
                next_offset = first_offset;
                let _ = reply.send(Err(e));
                continue;
            }
            let Some((base_offset, last_offset)) = answer else {
                let _ = reply.send(Err(Error::invalid_batch("no record batch in the request")));
                continue;
            };
            let duplicate = next_offset == first_offset;
            let log_append_time_ms = match (log_append, duplicate) {
                (false, _) => -1,
                (true, true) => duplicate_time.unwrap_or(append_time),
                (true, false) => append_time,
            };
            let outcome = AppendOutcome {
                base_offset,
                last_offset,
                log_append_time_ms,
                duplicate,
            };
            pending.push((reply, outcome));
        }
        if pending.is_empty() {
            return;
        }
        self.stats.groups += 1;
        self.stats.appends += pending.len() as u64;
        if len > 0 {
            // A segment's mode is settled before its first write, so no
            // file is written both ways.
            let go_direct = start_position == 0
                && self.partition.ctx.config.direct_io
                && self.previous_mean_group.unwrap_or(len as u64) >= DIRECT_GROUP_BYTES_MIN;
            let write_started = Instant::now();
            let segment = self.active.clone();
            let written = tokio::task::spawn_blocking(move || {
                if go_direct && let Err(e) = segment.use_direct_io() {
                    warn!(error = %e, "could not switch a new segment to direct I/O; it stays buffered");
                }
                segment.write_blocking(&parts, start_position)
            })
            .await
                    .unwrap_or_else(|join| {
                        Err(Error::Internal(format!("write task failed: {join}")))
                    });
            self.stats.write_time += write_started.elapsed();
            if let Err(e) = written {
                self.producers.undo(undo.into_iter());
                self.fail(pending, &e);
                return;
            }
        }
        self.written_len += len as u64;
        self.segment_groups += 1;
        self.segment_group_bytes += len as u64;
        self.next_offset = next_offset;
        self.unsynced_bytes += len;
        self.unsynced.push(WrittenGroup {
            entries,
            end_len: self.written_len,
            next_offset,
            pending,
            undo,
        });
        self.start_sync();
    }

    /// The error a refused batch is answered with.
    fn refusal(&self, header: &batch::BatchHeader, refusal: Refusal) -> Error {
        let (stream, partition) = (self.partition.stream.clone(), self.partition.partition);
        match refusal {
            Refusal::OutOfOrder { expected } => Error::OutOfOrderSequence {
                stream,
                partition,
                producer_id: header.producer_id,
                producer_epoch: header.producer_epoch,
                expected,
                received: header.base_sequence,
            },
            Refusal::OldEpoch { current } => Error::InvalidProducerEpoch {
                stream,
                partition,
                producer_id: header.producer_id,
                producer_epoch: header.producer_epoch,
                current_epoch: current,
            },
        }
    }

    /// Starts an fdatasync of every written group not yet syncing, unless
    /// [`SYNCS_IN_FLIGHT_MAX`] are running.
    fn start_sync(&mut self) {
        if self.syncing.len() >= SYNCS_IN_FLIGHT_MAX || self.unsynced.is_empty() {
            return;
        }
        let groups = std::mem::take(&mut self.unsynced);
        let bytes = std::mem::take(&mut self.unsynced_bytes);
        let segment = self.active.clone();
        let task = tokio::task::spawn_blocking(move || segment.sync_blocking());
        self.syncing.push_back(RunningSync {
            task,
            groups,
            started: Instant::now(),
            bytes,
        });
    }

    /// Publishes and acknowledges the groups a finished fdatasync covered,
    /// and starts the next one. If it failed, nothing after the durable end
    /// is acknowledged: those groups and every one written after them fail,
    /// and the file is cut back.
    async fn finish_sync(&mut self, synced: Result<()>) {
        let Some(RunningSync {
            groups,
            started,
            bytes,
            ..
        }) = self.syncing.pop_front()
        else {
            return;
        };
        self.stats.syncs += 1;
        self.stats.synced_bytes += bytes as u64;
        self.stats.sync_time += started.elapsed();
        match synced {
            Ok(()) => {
                let Some(last) = groups.last() else { return };
                let (durable_len, high_watermark) = (last.end_len, last.next_offset);
                let mut answers = Vec::new();
                let entries = groups.into_iter().flat_map(|group| {
                    answers.extend(group.pending);
                    group.entries
                });
                self.active
                    .publish(entries.collect::<Vec<_>>(), durable_len);
                self.partition.high_watermark.send_replace(high_watermark);
                for (reply, outcome) in answers {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                // Later syncs are left to finish on their own: what they
                // cover comes after the failed groups and fails with them.
                let later = std::mem::take(&mut self.syncing)
                    .into_iter()
                    .flat_map(|running| running.groups);
                let failed: Vec<WrittenGroup> = groups
                    .into_iter()
                    .chain(later)
                    .chain(std::mem::take(&mut self.unsynced))
                    .collect();
                // Their producer state goes back, newest change first.
                let mut undo = Vec::new();
                let mut pending = Vec::new();
                for group in failed {
                    undo.extend(group.undo);
                    pending.extend(group.pending);
                }
                self.producers.undo(undo.into_iter());
                self.fail(pending, &e);
                self.unsynced_bytes = 0;
                let (segment, durable_len) = (self.active.clone(), self.active.len());
                let cut =
                    tokio::task::spawn_blocking(move || segment.truncate_blocking(durable_len))
                        .await;
                if let Ok(Err(e)) = cut {
                    error!(error = %e, "could not cut back the unsynced tail; recovery cuts it");
                }
                self.written_len = durable_len;
                self.next_offset = self.active.next_offset();
            }
        }
        self.start_sync();
    }

    /// Answers `pending` appends with the failure: none of them is stored.
    fn fail(&self, pending: Vec<Pending>, e: &Error) {
        error!(stream = %self.partition.stream, partition = self.partition.partition, error = %e, "append failed; nothing of it was acknowledged");
        for (reply, _) in pending {
            let _ = reply.send(Err(copy_error(e)));
        }
    }

    /// Waits until every written group is durable (or failed).
    async fn drain(&mut self) {
        self.start_sync();
        while !self.syncing.is_empty() {
            let synced = wait_for(&mut self.syncing).await;
            self.finish_sync(synced).await;
        }
    }

    /// Seals the active segment once every written group is durable, and
    /// starts the next one. The next file is created (its directory entry
    /// made durable) while the last groups are synced, so the two waits
    /// overlap; if a failed sync moved the end, that file is dropped and
    /// one is created at the real end. Waits for a free upload backlog
    /// slot first: while the object store is unavailable and the backlog
    /// is full, the writer stops taking appends and producers feel it.
    async fn roll(&mut self) {
        let permit = match self.backlog.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Producers waiting on written groups are answered before
                // the writer waits for the uploads.
                self.drain().await;
                match self.backlog.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => return,
                }
            }
        };
        let expected_base = self.next_offset;
        let creating =
            (self.written_len > 0).then(|| create_segment(&self.partition, expected_base));
        self.drain().await;
        let base = self.active.next_offset();
        let created = match creating {
            Some(created) if base == expected_base => created.await,
            early => {
                if let Some(created) = early {
                    discard_segment(created.await).await;
                }
                if self.active.is_empty() {
                    return;
                }
                create_segment(&self.partition, base).await
            }
        };
        let fresh = match created {
            Ok(segment) => Arc::new(segment),
            Err(e) => {
                error!(error = %e, "could not start a new write-ahead segment; continuing in the current one");
                return;
            }
        };
        let sealed = std::mem::replace(&mut self.active, fresh.clone());
        sealed.seal();
        debug!(stream = %self.partition.stream, partition = self.partition.partition, base_offset = sealed.base_offset(), bytes = sealed.len(), "sealed write-ahead segment");
        self.partition
            .write_segments()
            .insert(base, SegmentSlot::Wal(fresh));
        let job = UploadJob {
            wal: sealed,
            permit: Some(permit),
            producers: self.producers.snapshot(),
        };
        if self.uploads.send(job).is_err() {
            debug!("uploader stopped; the sealed segment is uploaded at the next start");
        }
        self.written_len = self.active.len();
        self.next_offset = self.active.next_offset();
        self.previous_mean_group = Some(self.segment_group_bytes / self.segment_groups.max(1));
        self.segment_groups = 0;
        self.segment_group_bytes = 0;
    }
}

/// Creates the write-ahead file starting at `base` on a blocking thread.
fn create_segment(
    partition: &Partition,
    base: i64,
) -> impl Future<Output = Result<WalSegment>> + use<> {
    let dir = partition.wal_dir.clone();
    let task = tokio::task::spawn_blocking(move || WalSegment::create(&dir, base));
    async move {
        task.await
            .map_err(|e| Error::Internal(format!("segment create task failed: {e}")))?
    }
}

/// Removes a write-ahead file created for a base offset the log did not
/// reach (a sync failed while it was created). Recovery drops such an
/// empty file too, so failing here loses nothing.
async fn discard_segment(created: Result<WalSegment>) {
    let Ok(segment) = created else { return };
    let path = segment.path().to_path_buf();
    drop(segment);
    let removed = tokio::task::spawn_blocking(move || std::fs::remove_file(&path)).await;
    if !matches!(removed, Ok(Ok(()))) {
        warn!("could not remove an unused write-ahead segment; recovery removes it");
    }
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
