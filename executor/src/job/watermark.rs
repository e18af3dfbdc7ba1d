//! Event time in a job: the stream's `WATERMARK FOR column AS expression`
//! evaluated on each chunk of rows, the highest value kept per input
//! partition, and the job's watermark the lowest of those. A partition
//! that has had nothing new to read for the idle timeout (the stream's
//! `idle_timeout`, 5 s by default) stops holding the watermark back, as in
//! Flink; once it has rows again it counts again. When every partition is
//! idle, everything there is has been read, and the watermark is the
//! highest of the partitions' (as Flink's when all its inputs are idle),
//! so the windows of what was read close, and rows that come later for
//! them are late.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, max};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMicrosecondType};
use datafusion::physical_expr::PhysicalExpr;

use crate::error::Result;

/// How long a partition with nothing new to read may hold the watermark
/// back, unless its stream says (`WITH (idle_timeout = ...)`).
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The watermark expression, evaluated on the time column of decoded rows.
#[derive(Debug)]
pub(crate) struct WatermarkProbe {
    /// The expression, over a batch of the time column alone.
    pub(crate) expression: Arc<dyn PhysicalExpr>,
    /// That one-column schema.
    pub(crate) schema: SchemaRef,
    /// Where the time column is in the decoded rows.
    pub(crate) time_position: usize,
    /// The stream's idle timeout.
    pub(crate) idle_timeout: Duration,
}

impl WatermarkProbe {
    /// The highest watermark the rows of `batch` give, in microseconds.
    pub(crate) fn highest(&self, batch: &RecordBatch) -> Result<Option<i64>> {
        let time = RecordBatch::try_new(
            self.schema.clone(),
            vec![batch.column(self.time_position).clone()],
        )?;
        let values = self
            .expression
            .evaluate(&time)?
            .into_array(time.num_rows())?;
        let values = cast(&values, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        Ok(max(values.as_primitive::<TimestampMicrosecondType>()))
    }
}

/// Each input partition's watermark, and when it last had rows.
#[derive(Debug)]
pub(crate) struct Watermarks {
    partitions: BTreeMap<u32, i64>,
    last_rows: BTreeMap<u32, Instant>,
    started: Instant,
    /// The job's watermark: it never goes back.
    current: Option<i64>,
    idle_timeout: Duration,
}

impl Watermarks {
    /// Watermarks starting from `recorded`, the one the job's output was
    /// made with before a restart.
    pub(crate) fn new(recorded: Option<i64>) -> Self {
        Self {
            partitions: BTreeMap::new(),
            last_rows: BTreeMap::new(),
            started: Instant::now(),
            current: recorded,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// Partitions are idle after `timeout` with nothing new.
    pub(crate) fn set_idle_timeout(&mut self, timeout: Duration) {
        self.idle_timeout = timeout;
    }

    /// Watermarks as a checkpoint kept them: each partition's, and the
    /// job's.
    pub(crate) fn restored(partitions: BTreeMap<u32, i64>, current: Option<i64>) -> Self {
        Self {
            partitions,
            current,
            ..Self::new(None)
        }
    }

    /// Each partition's watermark, for a checkpoint.
    pub(crate) fn partitions(&self) -> &BTreeMap<u32, i64> {
        &self.partitions
    }

    /// The job's watermark, if it has one.
    pub(crate) fn current(&self) -> Option<i64> {
        self.current
    }

    /// Partition `partition` had rows whose highest watermark is `highest`.
    pub(crate) fn observe(&mut self, partition: u32, highest: Option<i64>) {
        self.last_rows.insert(partition, Instant::now());
        if let Some(highest) = highest {
            let value = self.partitions.entry(partition).or_insert(highest);
            *value = (*value).max(highest);
        }
    }

    /// Recomputes the job's watermark over `partitions` partitions, of
    /// which those in `caught_up` have nothing new to read; returns it if
    /// it moved forward.
    pub(crate) fn advance(&mut self, partitions: u32, caught_up: &[u32]) -> Option<i64> {
        let now = Instant::now();
        let idle = |p: u32| {
            caught_up.contains(&p)
                && now.duration_since(*self.last_rows.get(&p).unwrap_or(&self.started))
                    >= self.idle_timeout
        };
        let active: Vec<u32> = (0..partitions).filter(|&p| !idle(p)).collect();
        let lowest = if active.is_empty() {
            // Everything there is has been read: the highest.
            self.partitions.values().copied().max()
        } else {
            let mut lowest: Option<i64> = None;
            for p in active {
                let value = self.partitions.get(&p).copied()?;
                lowest = Some(lowest.map_or(value, |l| l.min(value)));
            }
            lowest
        };
        let lowest = lowest?;
        if self.current.is_some_and(|c| c >= lowest) {
            return None;
        }
        self.current = Some(lowest);
        Some(lowest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_partition_holds_the_watermark_until_it_goes_idle() {
        let mut watermarks = Watermarks::new(None);
        watermarks.set_idle_timeout(Duration::from_secs(3600));
        watermarks.observe(0, Some(10));
        assert_eq!(
            watermarks.advance(2, &[]),
            None,
            "partition 1 has no rows yet"
        );
        watermarks.observe(1, Some(4));
        assert_eq!(watermarks.advance(2, &[]), Some(4));
        watermarks.observe(1, Some(12));
        assert_eq!(watermarks.advance(2, &[0, 1]), Some(10));
        assert_eq!(watermarks.advance(2, &[]), None, "it never goes back");

        let mut idle = Watermarks::new(Some(2));
        idle.set_idle_timeout(Duration::ZERO);
        idle.observe(0, Some(10));
        assert_eq!(idle.advance(2, &[1]), Some(10), "partition 1 is idle");
        assert_eq!(idle.current(), Some(10));
    }

    #[test]
    fn when_every_partition_is_idle_the_highest_counts() {
        let mut watermarks = Watermarks::new(None);
        watermarks.set_idle_timeout(Duration::ZERO);
        watermarks.observe(0, Some(10));
        watermarks.observe(1, Some(25));
        watermarks.observe(2, Some(10));
        assert_eq!(
            watermarks.advance(3, &[]),
            Some(10),
            "none idle: the lowest"
        );
        assert_eq!(watermarks.advance(3, &[0, 1, 2]), Some(25));
        // Rows again in partition 0: it holds nothing back below 25.
        watermarks.observe(0, Some(12));
        assert_eq!(watermarks.advance(3, &[1, 2]), None);
        assert_eq!(watermarks.current(), Some(25));
    }
}
