//! A job's throughput: input rows a second over the last few seconds, for
//! `SHOW JOBS`. The job notes its running count of input rows after each
//! step; a note is kept at most once a second, and the rate is the rows
//! since the oldest note of the window divided by the time since it, so
//! a job that stops getting input drops to 0 within the window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the rate looks.
const WINDOW: Duration = Duration::from_secs(10);

/// How often a note is kept.
const NOTE_EVERY: Duration = Duration::from_secs(1);

/// Notes of a running count, kept to measure its rate.
#[derive(Debug, Default)]
pub(crate) struct Throughput {
    /// When, and the count then; oldest first.
    notes: VecDeque<(Instant, u64)>,
}

impl Throughput {
    /// The count stands at `total` at `now`.
    pub(crate) fn note(&mut self, now: Instant, total: u64) {
        if self
            .notes
            .back()
            .is_none_or(|(at, _)| now.duration_since(*at) >= NOTE_EVERY)
        {
            self.notes.push_back((now, total));
        }
        // The oldest note inside the window stays, and one before it, so
        // the window is always covered.
        while self.notes.len() > 2 && now.duration_since(self.notes[1].0) > WINDOW {
            self.notes.pop_front();
        }
    }

    /// The count's rate a second at `now`, when it stands at `total`: over
    /// the window, or since the first note if that is more recent; 0
    /// before any note.
    pub(crate) fn per_second(&self, now: Instant, total: u64) -> f64 {
        let base = self
            .notes
            .iter()
            .find(|(at, _)| now.duration_since(*at) <= WINDOW)
            .or(self.notes.back());
        let Some(&(at, count)) = base else {
            return 0.0;
        };
        let elapsed = now.duration_since(at).max(NOTE_EVERY);
        total.saturating_sub(count) as f64 / elapsed.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_follows_the_count_and_falls_to_zero_when_it_stops() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut throughput = Throughput::default();
        assert_eq!(throughput.per_second(at(0), 0), 0.0);
        // 1,000 rows a second for 20 s.
        for s in 0..=20 {
            throughput.note(at(s), s * 1000);
        }
        assert_eq!(throughput.per_second(at(20), 20_000), 1000.0);
        // Notes older than the window are dropped as new ones come.
        assert!(throughput.notes.len() <= 12, "{:?}", throughput.notes);
        // Then 5,000 a second for 10 s: the window holds only those.
        for s in 21..=30 {
            throughput.note(at(s), 20_000 + (s - 20) * 5000);
        }
        assert_eq!(throughput.per_second(at(30), 70_000), 5000.0);
        // No more input: the rate falls as the time without rows grows,
        // to 0 once the window holds none.
        assert!(throughput.per_second(at(35), 70_000) < 5000.0);
        assert_eq!(throughput.per_second(at(45), 70_000), 0.0);
    }

    #[test]
    fn notes_closer_than_a_second_are_not_kept() {
        let start = Instant::now();
        let mut throughput = Throughput::default();
        for ms in (0..1000).step_by(100) {
            throughput.note(start + Duration::from_millis(ms), ms);
        }
        assert_eq!(throughput.notes.len(), 1);
        // A rate is never taken over less than a second.
        assert_eq!(
            throughput.per_second(start + Duration::from_millis(500), 500),
            500.0
        );
    }
}
