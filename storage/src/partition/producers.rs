//! The idempotent producers of one partition, as Kafka's
//! `ProducerStateManager` keeps them: for each producer id its epoch and
//! its last few batches (sequence range and offsets). The writer checks
//! every batch against it before assigning offsets: a retried batch is a
//! duplicate answered with the offsets it got the first time, a gap in the
//! sequence or an old epoch is refused.
//!
//! No I/O and no clock: the same batches applied in the same order give the
//! same state, which is how recovery rebuilds it from a snapshot and the
//! write-ahead batches after it.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::batch::BatchHeader;

/// Batches remembered per producer: a producer has at most this many
/// requests in flight (Kafka's `max.in.flight.requests.per.connection`
/// limit with idempotence), so a retry is always one of them.
pub(crate) const BATCHES_KEPT: usize = 5;

/// One batch of a producer, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerBatch {
    /// Sequence number of its first record.
    #[serde(rename = "fs")]
    pub(crate) first_sequence: i32,
    /// Sequence number of its last record.
    #[serde(rename = "ls")]
    pub(crate) last_sequence: i32,
    /// Offset of its first record.
    #[serde(rename = "bo")]
    pub(crate) base_offset: i64,
    /// Offset of its last record.
    #[serde(rename = "lo")]
    pub(crate) last_offset: i64,
    /// Its max timestamp as stored (the append time for LogAppendTime).
    #[serde(rename = "ts")]
    pub(crate) max_timestamp: i64,
}

/// What the partition knows of one producer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerEntry {
    #[serde(rename = "id")]
    producer_id: i64,
    #[serde(rename = "e")]
    epoch: i16,
    /// Its last batches of this epoch, oldest first.
    #[serde(rename = "b")]
    batches: VecDeque<ProducerBatch>,
}

impl ProducerEntry {
    fn last_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |b| b.last_offset)
    }
}

/// Why a batch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its base sequence does not follow the producer's last one (or a new
    /// epoch does not start at 0).
    OutOfOrder {
        /// The sequence that would have been in order.
        expected: i32,
    },
    /// Its epoch is older than the producer's current one.
    OldEpoch {
        /// The producer's current epoch.
        current: i16,
    },
}

/// What to do with a batch that passed the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write it.
    Append,
    /// Already written: answer with where it went, write nothing.
    Duplicate(ProducerBatch),
}

/// How to take back one change, recorded as the change is made.
#[derive(Debug)]
pub(crate) struct UndoStep {
    producer_id: i64,
    previous: Option<ProducerEntry>,
}

/// The producer state of a partition.
#[derive(Debug, Clone)]
pub(crate) struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Producers kept at most; the one that wrote longest ago goes first.
    max_producers: usize,
}

impl ProducerStates {
    /// An empty state keeping at most `max_producers` producers.
    pub(crate) fn new(max_producers: usize) -> Self {
        Self {
            producers: HashMap::new(),
            max_producers: max_producers.max(1),
        }
    }

    /// The state saved by [`Self::snapshot`].
    pub(crate) fn from_snapshot(json: &str, max_producers: usize) -> serde_json::Result<Self> {
        let entries: Vec<ProducerEntry> = serde_json::from_str(json)?;
        let mut states = Self::new(max_producers);
        for entry in entries {
            states.producers.insert(entry.producer_id, entry);
        }
        states.evict_beyond_max(&mut Vec::new());
        Ok(states)
    }

    /// The whole state as JSON, oldest writer first.
    pub(crate) fn snapshot(&self) -> String {
        let mut entries: Vec<&ProducerEntry> = self.producers.values().collect();
        entries.sort_by_key(|e| e.last_offset());
        serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into())
    }

    /// Number of producers known.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    /// Checks a batch from a producer, as Kafka's broker does: a batch
    /// without producer id is always written; a producer never seen (or
    /// forgotten) may start at any sequence; a duplicate of one of the
    /// producer's last batches (same epoch and sequence range) is not
    /// written again; an older epoch is refused; a newer epoch must start
    /// at sequence 0; otherwise the base sequence must follow the last one.
    pub(crate) fn check(&self, header: &BatchHeader) -> Result<Verdict, Refusal> {
        if header.producer_id < 0 {
            return Ok(Verdict::Append);
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            return Ok(Verdict::Append);
        };
        let last_sequence = last_sequence(header);
        if header.producer_epoch < entry.epoch {
            return Err(Refusal::OldEpoch {
                current: entry.epoch,
            });
        }
        if header.producer_epoch > entry.epoch {
            return match header.base_sequence {
                0 => Ok(Verdict::Append),
                _ => Err(Refusal::OutOfOrder { expected: 0 }),
            };
        }
        if let Some(original) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == header.base_sequence && b.last_sequence == last_sequence)
        {
            return Ok(Verdict::Duplicate(*original));
        }
        match entry.batches.back() {
            Some(last) if header.base_sequence != next_sequence(last.last_sequence) => {
                Err(Refusal::OutOfOrder {
                    expected: next_sequence(last.last_sequence),
                })
            }
            _ => Ok(Verdict::Append),
        }
    }

    /// Records a batch written at `base_offset` (after [`Self::check`], or
    /// replayed from the log at recovery), noting in `undo` how to take it
    /// back.
    pub(crate) fn apply(
        &mut self,
        header: &BatchHeader,
        base_offset: i64,
        max_timestamp: i64,
        undo: &mut Vec<UndoStep>,
    ) {
        if header.producer_id < 0 {
            return;
        }
        let batch = ProducerBatch {
            first_sequence: header.base_sequence,
            last_sequence: last_sequence(header),
            base_offset,
            last_offset: base_offset + i64::from(header.last_offset_delta),
            max_timestamp,
        };
        let previous = self.producers.get(&header.producer_id).cloned();
        let is_new = previous.is_none();
        undo.push(UndoStep {
            producer_id: header.producer_id,
            previous,
        });
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                producer_id: header.producer_id,
                epoch: header.producer_epoch,
                batches: VecDeque::with_capacity(BATCHES_KEPT),
            });
        if entry.epoch != header.producer_epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_KEPT {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
        if is_new {
            self.evict_beyond_max(undo);
        }
    }

    /// Takes back changes, newest first.
    pub(crate) fn undo(&mut self, steps: impl DoubleEndedIterator<Item = UndoStep>) {
        for step in steps.rev() {
            match step.previous {
                Some(entry) => self.producers.insert(step.producer_id, entry),
                None => self.producers.remove(&step.producer_id),
            };
        }
    }

    /// Forgets the producers that wrote longest ago while there are too
    /// many (Kafka expires them by time instead).
    fn evict_beyond_max(&mut self, undo: &mut Vec<UndoStep>) {
        while self.producers.len() > self.max_producers {
            let Some(oldest) = self
                .producers
                .values()
                .min_by_key(|e| (e.last_offset(), e.producer_id))
                .map(|e| e.producer_id)
            else {
                return;
            };
            let previous = self.producers.remove(&oldest);
            undo.push(UndoStep {
                producer_id: oldest,
                previous,
            });
        }
    }
}

/// The sequence number of a batch's last record (sequences wrap at
/// `i32::MAX` to 0, as Kafka's do).
fn last_sequence(header: &BatchHeader) -> i32 {
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    (last % (i64::from(i32::MAX) + 1)) as i32
}

/// The sequence that follows `sequence`.
fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            size: 100,
            partition_leader_epoch: -1,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            record_count: records,
        }
    }

    /// Checks and, if it is to be written, applies at `offset`.
    fn append(states: &mut ProducerStates, h: &BatchHeader, offset: i64) -> Verdict {
        let verdict = states.check(h).unwrap();
        if verdict == Verdict::Append {
            states.apply(h, offset, 0, &mut Vec::new());
        }
        verdict
    }

    #[test]
    fn sequences_must_follow_and_duplicates_are_found() {
        let mut states = ProducerStates::new(10);
        // A producer never seen may start anywhere (after a restart that
        // lost it, or after it was evicted).
        assert_eq!(
            append(&mut states, &header(7, 0, 100, 10), 0),
            Verdict::Append
        );
        assert_eq!(
            append(&mut states, &header(7, 0, 110, 5), 10),
            Verdict::Append
        );
        // A retry of either is a duplicate with its original offsets.
        match states.check(&header(7, 0, 100, 10)).unwrap() {
            Verdict::Duplicate(b) => assert_eq!((b.base_offset, b.last_offset), (0, 9)),
            other => panic!("{other:?}"),
        }
        match states.check(&header(7, 0, 110, 5)).unwrap() {
            Verdict::Duplicate(b) => assert_eq!((b.base_offset, b.last_offset), (10, 14)),
            other => panic!("{other:?}"),
        }
        // A gap, an overlap, or the same base with another length.
        for bad in [
            header(7, 0, 116, 1),
            header(7, 0, 112, 1),
            header(7, 0, 110, 6),
        ] {
            assert_eq!(
                states.check(&bad),
                Err(Refusal::OutOfOrder { expected: 115 })
            );
        }
        assert_eq!(
            append(&mut states, &header(7, 0, 115, 1), 15),
            Verdict::Append
        );
        // Batches without a producer id are never checked.
        assert_eq!(states.check(&header(-1, -1, -1, 3)), Ok(Verdict::Append));
    }

    #[test]
    fn only_the_last_five_batches_are_duplicates() {
        let mut states = ProducerStates::new(10);
        for i in 0..7 {
            append(&mut states, &header(1, 0, i, 1), i64::from(i));
        }
        assert!(matches!(
            states.check(&header(1, 0, 2, 1)),
            Ok(Verdict::Duplicate(_))
        ));
        assert!(matches!(
            states.check(&header(1, 0, 1, 1)),
            Err(Refusal::OutOfOrder { expected: 7 })
        ));
    }

    #[test]
    fn epochs_fence_and_restart_sequences() {
        let mut states = ProducerStates::new(10);
        append(&mut states, &header(3, 2, 0, 4), 0);
        assert_eq!(
            states.check(&header(3, 1, 4, 1)),
            Err(Refusal::OldEpoch { current: 2 })
        );
        // A newer epoch starts at 0, and resets what is remembered.
        assert_eq!(
            states.check(&header(3, 3, 4, 1)),
            Err(Refusal::OutOfOrder { expected: 0 })
        );
        assert_eq!(append(&mut states, &header(3, 3, 0, 2), 4), Verdict::Append);
        assert_eq!(
            states.check(&header(3, 2, 0, 4)),
            Err(Refusal::OldEpoch { current: 3 })
        );
        assert!(matches!(
            states.check(&header(3, 3, 0, 2)),
            Ok(Verdict::Duplicate(_))
        ));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut states = ProducerStates::new(10);
        append(&mut states, &header(1, 0, i32::MAX - 1, 2), 0);
        assert_eq!(
            states.check(&header(1, 0, i32::MAX, 1)),
            Err(Refusal::OutOfOrder { expected: 0 })
        );
        assert_eq!(append(&mut states, &header(1, 0, 0, 1), 2), Verdict::Append);
        // A batch crossing the wrap ends at a small sequence.
        append(&mut states, &header(2, 0, i32::MAX, 3), 3);
        assert_eq!(states.check(&header(2, 0, 2, 1)), Ok(Verdict::Append));
    }

    #[test]
    fn undo_restores_exactly_and_eviction_keeps_the_newest() {
        let mut states = ProducerStates::new(2);
        append(&mut states, &header(1, 0, 0, 1), 0);
        append(&mut states, &header(2, 0, 0, 1), 1);
        let before = states.snapshot();
        let mut undo = Vec::new();
        states.apply(&header(1, 0, 1, 1), 2, 0, &mut undo);
        // A third producer evicts producer 2, the one that wrote longest ago.
        states.apply(&header(3, 0, 0, 1), 3, 0, &mut undo);
        assert_eq!(states.len(), 2);
        assert_eq!(states.check(&header(2, 0, 9, 1)), Ok(Verdict::Append));
        states.undo(undo.into_iter());
        assert_eq!(states.snapshot(), before);
        assert_eq!(
            states.check(&header(2, 0, 9, 1)),
            Err(Refusal::OutOfOrder { expected: 1 })
        );
    }

    #[test]
    fn snapshots_round_trip() {
        let mut states = ProducerStates::new(10);
        for p in 0..4 {
            for s in 0..3 {
                append(&mut states, &header(p, 1, s * 2, 2), p * 10 + i64::from(s));
            }
        }
        let json = states.snapshot();
        let back = ProducerStates::from_snapshot(&json, 10).unwrap();
        assert_eq!(back.snapshot(), json);
        assert!(matches!(
            back.check(&header(2, 1, 2, 2)),
            Ok(Verdict::Duplicate(ProducerBatch {
                base_offset: 21,
                ..
            }))
        ));
        // Loaded into a smaller bound, the oldest writers go.
        assert_eq!(ProducerStates::from_snapshot(&json, 2).unwrap().len(), 2);
    }
}
