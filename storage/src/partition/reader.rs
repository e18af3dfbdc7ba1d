//! Reads: by offset and by timestamp, from the active or a sealed local
//! segment, the cache, or the object store (ranged reads, with the rest of
//! the segment and the next one fetched into the cache in the background).

use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStoreExt;
use tracing::debug;

use super::{Partition, RemoteSegment, SegmentSlot};
use crate::batch;
use crate::error::{Error, Result};
use crate::segment::{self, FOOTER_LEN, Footer, IndexEntry};
use crate::{local_file, objects};

/// The answer to a read.
#[derive(Debug, Clone, Default)]
pub struct ReadOutcome {
    /// Whole batches, in offset order, exactly as stored. The first may
    /// start before the offset asked for (as in Kafka, clients skip ahead).
    pub batches: Vec<Bytes>,
    /// The high watermark when the read started.
    pub high_watermark: i64,
    /// The log start offset when the read started.
    pub log_start_offset: i64,
}

impl ReadOutcome {
    /// Total bytes of the batches.
    pub fn size_bytes(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

impl Partition {
    fn out_of_range(&self, requested: i64, log_start_offset: i64, high_watermark: i64) -> Error {
        Error::OffsetOutOfRange {
            stream: self.stream.clone(),
            partition: self.partition,
            requested,
            log_start_offset,
            high_watermark,
        }
    }

    /// Reads whole batches from `offset` on, up to `max_bytes` (but always at
    /// least one batch when there is one), across segment boundaries.
    pub async fn read(self: &Arc<Self>, offset: i64, max_bytes: usize) -> Result<ReadOutcome> {
        let high_watermark = self.high_watermark();
        let log_start_offset = self.log_start_offset();
        if offset < log_start_offset || offset > high_watermark {
            return Err(self.out_of_range(offset, log_start_offset, high_watermark));
        }
        let mut outcome = ReadOutcome {
            batches: Vec::new(),
            high_watermark,
            log_start_offset,
        };
        let mut at = offset;
        let mut budget = max_bytes;
        while at < high_watermark {
            let Some(slot) = self.slot_for(at) else {
                return Err(self.out_of_range(offset, self.log_start_offset(), high_watermark));
            };
            let first_read = outcome.batches.is_empty();
            let batches = match &slot {
                SegmentSlot::Wal(wal) => {
                    let entries = wal.entries_for_read(at, budget);
                    let entries = fit(&entries, budget, first_read, high_watermark);
                    read_wal(wal, entries).await?
                }
                SegmentSlot::Remote(remote) => {
                    let index = self.remote_index(remote).await?;
                    let entries = segment::entries_for_read(&index, at, budget);
                    let entries = fit(entries, budget, first_read, high_watermark);
                    self.read_remote(remote, entries).await?
                }
            };
            if batches.is_empty() {
                break;
            }
            for (entry, bytes) in batches {
                at = entry.last_offset + 1;
                budget = budget.saturating_sub(bytes.len());
                outcome.batches.push(bytes);
            }
            if budget == 0 {
                break;
            }
        }
        metrics::counter!("tributary_stream_records_out_total", "stream" => self.stream.clone())
            .increment((at - offset).max(0) as u64);
        metrics::counter!("tributary_stream_bytes_out_total", "stream" => self.stream.clone())
            .increment(outcome.size_bytes() as u64);
        Ok(outcome)
    }

    /// The first offset whose record timestamp is at or after
    /// `timestamp_ms`, or `None` when every record is older.
    pub async fn offset_for_timestamp(self: &Arc<Self>, timestamp_ms: i64) -> Result<Option<i64>> {
        let slots: Vec<SegmentSlot> = self.read_segments().values().cloned().collect();
        let high_watermark = self.high_watermark();
        for slot in slots {
            let entry = match &slot {
                SegmentSlot::Wal(wal) => wal
                    .index()
                    .into_iter()
                    .find(|e| e.max_timestamp >= timestamp_ms && e.base_offset < high_watermark),
                SegmentSlot::Remote(remote) => {
                    if remote.record.max_timestamp < timestamp_ms {
                        continue;
                    }
                    self.remote_index(remote)
                        .await?
                        .iter()
                        .find(|e| e.max_timestamp >= timestamp_ms)
                        .copied()
                }
            };
            let Some(entry) = entry else { continue };
            let mut batches = match &slot {
                SegmentSlot::Wal(wal) => read_wal(wal, &[entry]).await?,
                SegmentSlot::Remote(remote) => self.read_remote(remote, &[entry]).await?,
            };
            let Some((_, bytes)) = batches.pop() else {
                continue;
            };
            let header = batch::BatchHeader::parse(&bytes)?;
            if header.is_log_append_time() {
                return Ok(Some(header.base_offset));
            }
            let found = batch::decode_batch(bytes)?
                .into_iter()
                .find(|r| r.timestamp >= timestamp_ms)
                .map(|r| r.offset);
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The segment that holds `offset`: the one with the greatest base at or
    /// below it.
    fn slot_for(&self, offset: i64) -> Option<SegmentSlot> {
        self.read_segments()
            .range(..=offset)
            .next_back()
            .map(|(_, slot)| slot.clone())
    }

    /// The index of an uploaded segment: from memory, the cache, or the
    /// object store (two ranged reads: footer, then index).
    async fn remote_index(
        self: &Arc<Self>,
        remote: &Arc<RemoteSegment>,
    ) -> Result<Arc<Vec<IndexEntry>>> {
        remote
            .index
            .get_or_try_init(|| async {
                let key = remote.key.to_string();
                let size = remote.record.size_bytes;
                if size < FOOTER_LEN as u64 {
                    return Err(Error::corrupt(
                        &key,
                        "registered size is smaller than a footer",
                    ));
                }
                let footer_bytes = self
                    .read_object_range(remote, size - FOOTER_LEN as u64..size)
                    .await?;
                let footer = Footer::decode(&footer_bytes, size, &key)?;
                let index_bytes = self.read_object_range(remote, footer.index_range()).await?;
                Ok(Arc::new(segment::decode_index(
                    &index_bytes,
                    &footer,
                    &key,
                )?))
            })
            .await
            .cloned()
    }

    /// Reads the bytes of `entries` (consecutive batches) from the cache or
    /// the object store.
    async fn read_remote(
        self: &Arc<Self>,
        remote: &Arc<RemoteSegment>,
        entries: &[IndexEntry],
    ) -> Result<Vec<(IndexEntry, Bytes)>> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(Vec::new());
        };
        let range = first.position..last.byte_range().end;
        let data = self.read_object_range(remote, range.clone()).await?;
        split(entries, range.start, data, remote.key.as_ref())
    }

    /// A byte range of an uploaded segment, from the cache when it holds the
    /// object, or from a local-filesystem store's file itself, else from the
    /// object store (then filling the cache in the background with this
    /// segment and the next).
    async fn read_object_range(
        self: &Arc<Self>,
        remote: &Arc<RemoteSegment>,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes> {
        let local = self.ctx.cache.lookup(&remote.key).or_else(|| {
            let root = self.ctx.config.local_object_root.as_deref()?;
            Some(objects::local_object_path(root, &remote.key))
        });
        if let Some(path) = local {
            let wanted = range.clone();
            let read =
                tokio::task::spawn_blocking(move || local_file::read_range(&path, wanted)).await;
            if let Ok(Ok(bytes)) = read {
                return Ok(bytes);
            }
            // Evicted or removed under us: the object store words what is
            // wrong.
        }
        let timeout = self.ctx.config.object_store_timeout();
        let bytes = objects::call(
            &remote.key,
            timeout,
            self.ctx.store.get_range(&remote.key, range),
        )
        .await?;
        self.fill_cache(remote.clone());
        if let Some(next) = self.next_remote(remote.record.last_offset + 1) {
            self.fill_cache(next);
        }
        Ok(bytes)
    }

    fn next_remote(&self, offset: i64) -> Option<Arc<RemoteSegment>> {
        match self.read_segments().get(&offset) {
            Some(SegmentSlot::Remote(r)) => Some(r.clone()),
            _ => None,
        }
    }

    /// Downloads a whole segment object into the cache in the background.
    fn fill_cache(self: &Arc<Self>, remote: Arc<RemoteSegment>) {
        // A local-filesystem store is as near as the cache would be.
        if self.ctx.config.local_object_root.is_some() || !self.ctx.cache.begin_fill(&remote.key) {
            return;
        }
        let ctx = self.ctx.clone();
        tokio::spawn(async move {
            let timeout = ctx.config.object_store_timeout();
            let fetched = objects::call(&remote.key, timeout, async {
                ctx.store.get(&remote.key).await?.bytes().await
            })
            .await;
            match fetched {
                Ok(bytes) if bytes.len() as u64 == remote.record.size_bytes => {
                    let key = remote.key.clone();
                    let cache_ctx = ctx.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || cache_ctx.cache.insert(&key, &bytes))
                            .await;
                }
                Ok(bytes) => {
                    debug!(key = %remote.key, got = bytes.len(), "segment object has an unexpected size; not cached")
                }
                Err(e) => debug!(error = %e, "read-ahead failed"),
            }
            ctx.cache.end_fill(&remote.key);
        });
    }
}

/// Trims a read's entries to the budget and the high watermark: the first
/// batch of a read always comes back, later ones only if they fit.
fn fit(
    entries: &[IndexEntry],
    budget: usize,
    first_read: bool,
    high_watermark: i64,
) -> &[IndexEntry] {
    let mut end = 0;
    let mut used = 0usize;
    for (i, e) in entries.iter().enumerate() {
        let size = e.size as usize;
        if e.base_offset >= high_watermark || ((i > 0 || !first_read) && used + size > budget) {
            break;
        }
        used += size;
        end = i + 1;
    }
    &entries[..end]
}

/// Reads consecutive batches from a local write-ahead segment.
async fn read_wal(
    wal: &Arc<crate::wal::WalSegment>,
    entries: &[IndexEntry],
) -> Result<Vec<(IndexEntry, Bytes)>> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(Vec::new());
    };
    let range = first.position..last.byte_range().end;
    let reader = wal.clone();
    let wanted = range.clone();
    let data = tokio::task::spawn_blocking(move || reader.read_blocking(wanted))
        .await
        .map_err(|e| Error::Internal(format!("read task failed: {e}")))??;
    split(
        entries,
        range.start,
        data,
        &wal.path().display().to_string(),
    )
}

/// Cuts a contiguous range of segment data into its batches, checking each
/// batch header against the index.
fn split(
    entries: &[IndexEntry],
    start: u64,
    data: Bytes,
    location: &str,
) -> Result<Vec<(IndexEntry, Bytes)>> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let from = (entry.position - start) as usize;
        let to = from + entry.size as usize;
        if to > data.len() {
            return Err(Error::corrupt(
                location,
                "segment data is shorter than its index says",
            ));
        }
        let bytes = data.slice(from..to);
        let header = batch::BatchHeader::parse(&bytes)
            .map_err(|e| Error::corrupt(location, e.to_string()))?;
        if header.base_offset != entry.base_offset || header.size != entry.size as usize {
            return Err(Error::corrupt(
                location,
                format!("batch at byte {} does not match the index", entry.position),
            ));
        }
        out.push((*entry, bytes));
    }
    Ok(out)
}
