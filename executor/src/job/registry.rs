//! What each running job has done, shared with the rest of the engine:
//! the input offsets its output covers (published after every append),
//! how many rows went in and out and how fast, and its last failure.
//! `SHOW JOBS` reads it, and a `SELECT` from a view waits here until the
//! view has caught up with what its input held when the query started,
//! so a client reads its own writes through a view.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::job::progress::{InputOffsets, Progress};
use crate::job::throughput::Throughput;

/// How long a query waits for a view to catch up before reading what the
/// view holds.
pub(crate) const CATCH_UP_WAIT: Duration = Duration::from_secs(10);

/// How often a query waiting for a view looks whether its job failed.
const FAILURE_CHECK: Duration = Duration::from_millis(100);

/// How a wait for a job to catch up ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CatchUp {
    /// Its output covers what was asked.
    CaughtUp,
    /// It is still behind after [`CATCH_UP_WAIT`].
    TimedOut,
    /// It is behind, and failing with this error.
    Failing(String),
}

/// One job's shared state.
#[derive(Debug)]
pub(crate) struct JobState {
    /// The input offsets the job's output covers; `None` until the job
    /// has found where it stands.
    offsets: watch::Sender<Option<InputOffsets>>,
    /// Input rows processed.
    pub(crate) rows_in: AtomicU64,
    /// Rows written to the view.
    pub(crate) rows_out: AtomicU64,
    /// Input rows dropped as late since the job last started.
    pub(crate) late_rows: AtomicU64,
    /// Notes of `rows_in`, for its rate.
    throughput: Mutex<Throughput>,
    /// The watermark its output was made with (microseconds), or
    /// `i64::MIN` if none.
    watermark: AtomicI64,
    /// The last failure, cleared when the job runs again.
    last_error: Mutex<Option<String>>,
    /// Where this run of the job started and the input's end then: the
    /// history it is catching up on (a backfill, or what came while the
    /// server was down). `None` once caught up.
    catch_up: Mutex<Option<(InputOffsets, InputOffsets)>>,
}

impl JobState {
    fn new() -> Self {
        // The rate counts from the job's start, so a first step's rows
        // count too.
        let mut throughput = Throughput::default();
        throughput.note(Instant::now(), 0);
        Self {
            offsets: watch::Sender::new(None),
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            throughput: Mutex::new(throughput),
            watermark: AtomicI64::new(i64::MIN),
            last_error: Mutex::new(None),
            catch_up: Mutex::new(None),
        }
    }

    /// The job starts at `from` with the input ending at `target`: until
    /// its output covers `target`, [`catch_up_progress`](Self::catch_up_progress)
    /// says how far it is.
    pub(crate) fn start_catch_up(&self, from: InputOffsets, target: InputOffsets) {
        let behind = target
            .iter()
            .any(|(p, end)| *end > from.get(p).copied().unwrap_or(0));
        *self
            .catch_up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = behind.then_some((from, target));
    }

    /// While the job catches up on history: the records done and the
    /// records to do in all.
    pub(crate) fn catch_up_progress(&self) -> Option<(i64, i64)> {
        let mut catch_up = self
            .catch_up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (from, target) = catch_up.as_ref()?;
        let done_offsets = self.offsets().unwrap_or_default();
        let (mut done, mut total) = (0, 0);
        for (partition, end) in target {
            let start = from.get(partition).copied().unwrap_or(0).min(*end);
            let at = done_offsets
                .get(partition)
                .copied()
                .unwrap_or(0)
                .clamp(start, *end);
            done += at - start;
            total += end - start;
        }
        if done >= total {
            *catch_up = None;
            return None;
        }
        Some((done, total))
    }

    /// The job's output now covers `progress`.
    pub(crate) fn publish(&self, progress: &Progress) {
        if let Some(watermark) = progress.watermark {
            self.watermark.store(watermark, Ordering::Relaxed);
        }
        self.offsets.send_replace(Some(progress.offsets.clone()));
    }

    /// The watermark the job's output was made with, in microseconds.
    pub(crate) fn watermark(&self) -> Option<i64> {
        Some(self.watermark.load(Ordering::Relaxed)).filter(|&w| w != i64::MIN)
    }

    /// The input offsets the job's output covers, once known.
    pub(crate) fn offsets(&self) -> Option<InputOffsets> {
        self.offsets.borrow().clone()
    }

    /// Counts the rows of a step whose output is in the log; the job
    /// runs well again, if it had failed.
    pub(crate) fn count(&self, rows_in: usize, rows_out: usize, late_rows: u64) {
        let total_in = self.rows_in.fetch_add(rows_in as u64, Ordering::Relaxed) + rows_in as u64;
        self.rows_out.fetch_add(rows_out as u64, Ordering::Relaxed);
        self.late_rows.store(late_rows, Ordering::Relaxed);
        self.throughput
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .note(Instant::now(), total_in);
        self.set_error(None);
    }

    /// Input rows a second over the last few seconds.
    pub(crate) fn rows_in_per_second(&self) -> f64 {
        let total_in = self.rows_in.load(Ordering::Relaxed);
        self.throughput
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .per_second(Instant::now(), total_in)
    }

    /// Records (or clears) the job's failure.
    pub(crate) fn set_error(&self, error: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = error;
    }

    /// The job's last failure, if it has not run well since.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits until the job's output covers `targets` (input partition →
    /// offset), the job fails, or [`CATCH_UP_WAIT`] passes.
    pub(crate) async fn wait_for(&self, targets: &InputOffsets) -> CatchUp {
        let deadline = Instant::now() + CATCH_UP_WAIT;
        let mut offsets = self.offsets.subscribe();
        loop {
            let caught_up = offsets.wait_for(|offsets| {
                offsets.as_ref().is_some_and(|offsets| {
                    targets
                        .iter()
                        .all(|(p, target)| offsets.get(p).copied().unwrap_or(0) >= *target)
                })
            });
            let slice = FAILURE_CHECK.min(deadline.saturating_duration_since(Instant::now()));
            match tokio::time::timeout(slice, caught_up).await {
                Ok(Ok(_)) => return CatchUp::CaughtUp,
                // The job is gone (its view dropped): nothing to wait for.
                Ok(Err(_)) => return CatchUp::TimedOut,
                Err(_) => {}
            }
            if let Some(error) = self.last_error() {
                return CatchUp::Failing(error);
            }
            if Instant::now() >= deadline {
                return CatchUp::TimedOut;
            }
        }
    }
}

/// Every job's state, by view name.
#[derive(Debug, Default)]
pub(crate) struct JobRegistry {
    jobs: Mutex<HashMap<String, Arc<JobState>>>,
}

impl JobRegistry {
    /// The state of the job of `view` (a fresh one if it has none yet).
    pub(crate) fn job(&self, view: &str) -> Arc<JobState> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(view.to_string())
            .or_insert_with(|| Arc::new(JobState::new()))
            .clone()
    }

    /// Forgets the job of a dropped view.
    pub(crate) fn remove(&self, view: &str) {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(view);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_progress_counts_from_the_start_to_the_input_end() {
        let job = JobState::new();
        let from = InputOffsets::from([(0, 10), (1, 0)]);
        let target = InputOffsets::from([(0, 110), (1, 100)]);
        job.start_catch_up(from.clone(), target);
        // Before the job has published anything, nothing is done.
        assert_eq!(job.catch_up_progress(), Some((0, 200)));
        job.publish(&Progress {
            offsets: InputOffsets::from([(0, 60), (1, 50)]),
            watermark: None,
        });
        assert_eq!(job.catch_up_progress(), Some((100, 200)));
        job.publish(&Progress {
            offsets: InputOffsets::from([(0, 120), (1, 100)]),
            watermark: None,
        });
        assert_eq!(job.catch_up_progress(), None);
        // Caught up once is caught up: later input is live, not history.
        assert_eq!(job.catch_up_progress(), None);
        // Nothing to catch up on: no progress to report.
        job.start_catch_up(from.clone(), from);
        assert_eq!(job.catch_up_progress(), None);
    }
}
