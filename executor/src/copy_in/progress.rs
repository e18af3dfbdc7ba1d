//! The `COPY ... FROM STDIN`s in progress: which stream each writes and
//! how far it has come, for `SHOW JOBS` (and so the web console's jobs
//! page). A COPY registers when it starts and leaves when it is dropped,
//! finished or not.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Every COPY in progress on the engine.
#[derive(Debug, Default)]
pub(crate) struct CopyRegistry {
    next_id: AtomicU64,
    copies: Mutex<BTreeMap<u64, Arc<CopyProgress>>>,
}

/// How far one COPY has come.
#[derive(Debug)]
pub(crate) struct CopyProgress {
    /// The stream it writes.
    pub(crate) stream: String,
    /// Lines read from the client so far.
    lines: AtomicU64,
    /// The data has ended and the rows are being appended.
    appending: AtomicBool,
}

impl CopyProgress {
    /// Lines read so far.
    pub(crate) fn lines(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }

    /// Whether the rows are being appended (the data has ended).
    pub(crate) fn appending(&self) -> bool {
        self.appending.load(Ordering::Relaxed)
    }
}

/// A COPY's place in the registry; dropping it takes the COPY out.
#[derive(Debug)]
pub(crate) struct CopyRegistration {
    id: u64,
    registry: Arc<CopyRegistry>,
    progress: Arc<CopyProgress>,
}

impl CopyRegistry {
    /// Registers a COPY into `stream`.
    pub(crate) fn register(self: &Arc<Self>, stream: &str) -> CopyRegistration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let progress = Arc::new(CopyProgress {
            stream: stream.to_string(),
            lines: AtomicU64::new(0),
            appending: AtomicBool::new(false),
        });
        self.lock().insert(id, progress.clone());
        CopyRegistration {
            id,
            registry: self.clone(),
            progress,
        }
    }

    /// The COPYs in progress, oldest first.
    pub(crate) fn in_progress(&self) -> Vec<Arc<CopyProgress>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<CopyProgress>>> {
        self.copies.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CopyRegistration {
    /// `lines` have been read.
    pub(crate) fn read(&self, lines: usize) {
        self.progress.lines.store(lines as u64, Ordering::Relaxed);
    }

    /// The data has ended; the rows are being appended.
    pub(crate) fn appending(&self) {
        self.progress.appending.store(true, Ordering::Relaxed);
    }
}

impl Drop for CopyRegistration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_listed_with_its_progress_until_dropped() {
        let registry = Arc::new(CopyRegistry::default());
        let first = registry.register("a");
        let second = registry.register("b");
        first.read(10);
        second.appending();
        let listed: Vec<_> = registry
            .in_progress()
            .iter()
            .map(|c| (c.stream.clone(), c.lines(), c.appending()))
            .collect();
        assert_eq!(listed, [("a".into(), 10, false), ("b".into(), 0, true)]);
        drop(first);
        assert_eq!(registry.in_progress().len(), 1);
    }
}
