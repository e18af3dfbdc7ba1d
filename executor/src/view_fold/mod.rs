//! The current rows of keyed views (GROUP BY without EMIT ON WINDOW
//! CLOSE), folded from their changes and kept between scans.
//!
//! A keyed view's stream holds every change its job made: a group's row
//! is the newest change under the group's key, unless that change took the
//! row back. Folding the whole stream on every SELECT costs the view's
//! history, which grows for as long as the view runs. Here each partition's
//! fold is kept in memory and a scan folds only the changes appended since
//! the last one, so a SELECT costs the view's live rows and its new
//! changes. The rows are saved in the object store now and then
//! (`snapshot.rs`), so the first scan after a restart reads them and folds
//! only the changes after them.

mod snapshot;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use object_store::ObjectStore;
use object_store::path::Path;
use tracing::debug;
use tributary_storage::records::{BatchRecords, RecordRef};
use tributary_storage::{Partition, ReadOutcome};

use crate::error::{ExecError, Result};
use crate::job::is_retraction;
use crate::read_ahead::{ReadAhead, read_at};

/// Bytes asked of the log per read while folding.
const FOLD_READ_BYTES: usize = 4 << 20;

/// The fewest changes folded since the last snapshot that make a new one
/// worth writing. Above it, a snapshot is written once the changes folded
/// since the last outnumber the rows: a restart then reads at most the
/// rows and as many changes again, and writing snapshots costs each
/// change a bounded share of a row's write.
const SNAPSHOT_MIN_CHANGES: u64 = 4096;

pub(crate) use snapshot::delete_all as delete_snapshots;

/// The folds of every keyed view partition scanned so far, by stream
/// incarnation, so a view dropped and created again starts afresh.
#[derive(Debug, Default)]
pub(crate) struct ViewFolds {
    folds: Mutex<HashMap<(i64, u32), SharedFold>>,
}

/// One partition's fold, locked by the scan folding it further.
pub(crate) type SharedFold = Arc<tokio::sync::Mutex<FoldedRows>>;

impl ViewFolds {
    /// The fold of partition `partition` of the stream incarnation
    /// `stream_id`, empty if it was never scanned. Folds of incarnations
    /// not in `live_streams` (dropped views) are forgotten.
    pub(crate) fn partition(
        &self,
        stream_id: i64,
        partition: u32,
        live_streams: impl FnOnce() -> Vec<i64>,
    ) -> SharedFold {
        let mut folds = self.folds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fold) = folds.get(&(stream_id, partition)) {
            return fold.clone();
        }
        let live = live_streams();
        folds.retain(|(id, _), _| live.contains(id));
        folds
            .entry((stream_id, partition))
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(FoldedRows::new(
                    stream_id, partition,
                )))
            })
            .clone()
    }
}

/// One partition's current rows: for each key, the newest change that did
/// not take its row back, as of the offset `next`.
#[derive(Debug)]
pub(crate) struct FoldedRows {
    /// Where the snapshots of these rows are kept.
    snapshots: Path,
    /// Whether the newest snapshot has been looked for.
    restored: bool,
    /// The offset of the first change not folded yet.
    next: i64,
    rows: HashMap<Box<[u8]>, FoldedRow>,
    /// Changes folded since the last snapshot was written or read.
    changes_since_snapshot: u64,
}

/// A key's newest change, copied out of the batch it was read from (so a
/// row that lives long does not keep its whole read buffer alive).
#[derive(Debug)]
struct FoldedRow {
    offset: i64,
    timestamp: i64,
    value: Box<[u8]>,
}

impl FoldedRows {
    /// No rows yet, for partition `partition` of stream incarnation
    /// `stream_id`.
    fn new(stream_id: i64, partition: u32) -> Self {
        Self {
            snapshots: snapshot::partition_prefix(stream_id, partition),
            restored: false,
            next: 0,
            rows: HashMap::new(),
            changes_since_snapshot: 0,
        }
    }

    /// Folds the changes of `partition` from where the last fold stopped
    /// up to `end` (at least), starting from the newest snapshot in
    /// `store` the first time, and writes a snapshot when enough changes
    /// were folded since the last. Returns how many changes it read from
    /// the log.
    pub(crate) async fn advance(
        &mut self,
        store: &Arc<dyn ObjectStore>,
        partition: &Arc<Partition>,
        end: i64,
    ) -> Result<u64> {
        if !self.restored {
            self.restore(store, partition.high_watermark()).await?;
        }
        let folded = self.fold(partition, end).await?;
        self.changes_since_snapshot += folded;
        if self.changes_since_snapshot >= SNAPSHOT_MIN_CHANGES.max(self.rows.len() as u64) {
            snapshot::write(store, &self.snapshots, self.next, &self.records()).await;
            self.changes_since_snapshot = 0;
        }
        Ok(folded)
    }

    /// Takes the rows of the newest snapshot, unless it holds changes past
    /// `high_watermark` (the log lost its tail: the log is what is true).
    async fn restore(&mut self, store: &Arc<dyn ObjectStore>, high_watermark: i64) -> Result<()> {
        self.restored = true;
        let Some(snapshot) = snapshot::newest(store, &self.snapshots).await else {
            return Ok(());
        };
        if snapshot.next > high_watermark {
            debug!(snapshot = %self.snapshots, next = snapshot.next, high_watermark, "a view's folded rows are ahead of its log; folding from the start");
            return Ok(());
        }
        for record in snapshot.records()? {
            self.apply(record);
        }
        self.next = snapshot.next;
        debug!(snapshot = %self.snapshots, next = self.next, rows = self.rows.len(), "a view's folded rows restored");
        Ok(())
    }

    /// Folds the changes of `partition` from `next` up to `end` (at
    /// least). Returns how many it read.
    async fn fold(&mut self, partition: &Arc<Partition>, end: i64) -> Result<u64> {
        // Changes retention removed cannot be folded; the fold goes on
        // from the oldest one kept.
        self.next = self.next.max(partition.log_start_offset());
        let mut read_ahead: Option<ReadAhead> = None;
        let mut folded = 0;
        while self.next < end {
            let read: ReadOutcome =
                read_at(&mut read_ahead, partition, self.next, FOLD_READ_BYTES).await?;
            let Some(last) = read.batches.last() else {
                break;
            };
            let after = tributary_storage::batch::BatchHeader::parse(last)?.last_offset() + 1;
            if after < end {
                read_ahead = Some(ReadAhead::start(partition, after, FOLD_READ_BYTES).await);
            }
            for batch in read.batches {
                let batch = BatchRecords::new(batch)?;
                if batch.header().is_control() {
                    continue;
                }
                for record in batch.iter() {
                    let record = record?;
                    if record.offset >= self.next {
                        self.apply(record);
                        folded += 1;
                    }
                }
            }
            if after <= self.next {
                return Err(ExecError::Internal(format!(
                    "folding a view: the log read at offset {} went nowhere",
                    self.next
                )));
            }
            self.next = after;
        }
        Ok(folded)
    }

    /// Takes one change in: the key's row becomes the change, or goes if
    /// the change takes it back.
    fn apply(&mut self, record: RecordRef<'_>) {
        let key = record.key.unwrap_or_default();
        if is_retraction(record.value) {
            self.rows.remove(key);
            return;
        }
        let row = FoldedRow {
            offset: record.offset,
            timestamp: record.timestamp,
            value: record.value.unwrap_or_default().into(),
        };
        match self.rows.get_mut(key) {
            Some(existing) => *existing = row,
            None => {
                self.rows.insert(key.into(), row);
            }
        }
    }

    /// The current rows as records, in the order of their offsets.
    pub(crate) fn records(&self) -> Vec<RecordRef<'_>> {
        let mut records: Vec<RecordRef<'_>> = self
            .rows
            .iter()
            .map(|(key, row)| RecordRef {
                offset: row.offset,
                timestamp: row.timestamp,
                key: Some(key),
                value: Some(&row.value),
            })
            .collect();
        records.sort_unstable_by_key(|r| r.offset);
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(offset: i64, key: &'static str, value: &'static str) -> RecordRef<'static> {
        RecordRef {
            offset,
            timestamp: 1_000 + offset,
            key: Some(key.as_bytes()),
            value: Some(value.as_bytes()),
        }
    }

    fn rows(fold: &FoldedRows) -> Vec<(i64, &str, &str)> {
        fold.records()
            .iter()
            .map(|r| {
                (
                    r.offset,
                    std::str::from_utf8(r.key.unwrap()).unwrap(),
                    std::str::from_utf8(r.value.unwrap()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_newest_change_of_each_key_is_its_row_unless_taken_back() {
        let mut fold = FoldedRows::new(1, 0);
        fold.apply(change(0, "a", r#"{"op":"+","n":1}"#));
        fold.apply(change(1, "b", r#"{"op":"+","n":1}"#));
        fold.apply(change(2, "a", r#"{"op":"-","n":1}"#));
        fold.apply(change(3, "a", r#"{"op":"+","n":2}"#));
        fold.apply(change(4, "c", r#"{"op":"+","n":1}"#));
        fold.apply(change(5, "b", r#"{"op":"-","n":1}"#));
        assert_eq!(
            rows(&fold),
            [
                (3, "a", r#"{"op":"+","n":2}"#),
                (4, "c", r#"{"op":"+","n":1}"#)
            ]
        );
        // A key taken back and added again comes back with its new offset.
        fold.apply(change(6, "b", r#"{"op":"+","n":7}"#));
        assert_eq!(rows(&fold)[2], (6, "b", r#"{"op":"+","n":7}"#));
    }

    #[test]
    fn a_change_without_a_key_is_the_row_of_the_empty_key() {
        let mut fold = FoldedRows::new(1, 0);
        for (offset, n) in [(0, 1), (1, 2)] {
            let value = format!(r#"{{"op":"+","n":{n}}}"#);
            fold.apply(RecordRef {
                offset,
                timestamp: 0,
                key: None,
                value: Some(value.as_bytes()),
            });
        }
        assert_eq!(rows(&fold), [(1, "", r#"{"op":"+","n":2}"#)]);
    }

    #[test]
    fn folds_of_dropped_streams_are_forgotten() {
        let folds = ViewFolds::default();
        let first = folds.partition(1, 0, || vec![1]);
        assert!(Arc::ptr_eq(&first, &folds.partition(1, 0, || vec![1])));
        folds.partition(2, 0, || vec![2]);
        assert_eq!(folds.folds.lock().unwrap().len(), 1);
    }
}
