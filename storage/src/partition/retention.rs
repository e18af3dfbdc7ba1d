//! Retention: whole uploaded segments are deleted from the oldest on, by
//! time (newest record older than `retention_ms`), by size (partition
//! larger than `retention_bytes`), and when they lie wholly below a log start
//! offset that a Kafka DeleteRecords moved up; the log start offset moves
//! past them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use object_store::ObjectStoreExt;
use tracing::{info, warn};

use super::{Partition, SegmentSlot};
use crate::error::{Error, Result};
use crate::objects;

/// What one retention pass did to a partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes freed.
    pub bytes_deleted: u64,
    /// The log start offset afterwards.
    pub log_start_offset: i64,
}

impl Partition {
    /// Deletes the segments retention no longer keeps, as of `now_ms`.
    pub async fn enforce_retention(self: &Arc<Self>, now_ms: i64) -> Result<RetentionOutcome> {
        let config = self.stream_config();
        let log_start_offset = self.log_start_offset();
        let mut outcome = RetentionOutcome {
            log_start_offset,
            ..Default::default()
        };
        let mut remaining_bytes = self.size_bytes();
        let mut doomed = Vec::new();
        for slot in self.read_segments().values() {
            let SegmentSlot::Remote(remote) = slot else {
                break;
            };
            let record = &remote.record;
            let newest = if record.max_timestamp >= 0 {
                record.max_timestamp
            } else {
                record.created_at_ms
            };
            let too_old = config
                .retention_ms
                .is_some_and(|ms| newest < now_ms.saturating_sub(ms as i64));
            let too_big = config
                .retention_bytes
                .is_some_and(|bytes| remaining_bytes > bytes);
            let deleted = record.last_offset < log_start_offset;
            if !(too_old || too_big || deleted) {
                break;
            }
            remaining_bytes -= record.size_bytes;
            doomed.push(remote.clone());
        }
        let Some(last) = doomed.last() else {
            return Ok(outcome);
        };
        let new_start = (last.record.last_offset + 1).max(log_start_offset);
        self.ctx
            .metadata
            .advance_log_start(self.stream_id, self.partition, new_start)
            .await?;
        self.log_start_offset.fetch_max(new_start, Ordering::AcqRel);
        {
            let mut segments = self.write_segments();
            for remote in &doomed {
                segments.remove(&remote.record.base_offset);
            }
        }
        let timeout = self.ctx.config.object_store_timeout();
        for remote in &doomed {
            self.ctx.cache.remove(&remote.key);
            if let Err(e) =
                objects::call(&remote.key, timeout, self.ctx.store.delete(&remote.key)).await
            {
                warn!(error = %e, "could not delete a retired segment object; it is unreferenced garbage now");
            }
            outcome.segments_deleted += 1;
            outcome.bytes_deleted += remote.record.size_bytes;
        }
        outcome.log_start_offset = new_start;
        info!(stream = %self.stream, partition = self.partition, segments = outcome.segments_deleted, bytes = outcome.bytes_deleted, log_start_offset = new_start, "retention deleted segments");
        Ok(outcome)
    }
}

impl Partition {
    /// Moves the log start offset up to `offset` (Kafka's DeleteRecords):
    /// reads below it are out of range from now on, the metadata store keeps
    /// it across restarts, and the retention pass deletes the segments that
    /// lie wholly below it. `offset` may be anything up to the high
    /// watermark; below the current start it changes nothing. Returns the
    /// log start offset afterwards.
    pub async fn delete_records_before(&self, offset: i64) -> Result<i64> {
        let high_watermark = self.high_watermark();
        if offset < 0 || offset > high_watermark {
            return Err(Error::OffsetOutOfRange {
                stream: self.stream.clone(),
                partition: self.partition,
                requested: offset,
                log_start_offset: self.log_start_offset(),
                high_watermark,
            });
        }
        if offset > self.log_start_offset() {
            self.ctx
                .metadata
                .raise_log_start_offset(self.stream_id, self.partition, offset)
                .await?;
            self.log_start_offset.fetch_max(offset, Ordering::AcqRel);
            info!(stream = %self.stream, partition = self.partition, log_start_offset = offset, "records deleted below the new log start");
        }
        Ok(self.log_start_offset())
    }
}
