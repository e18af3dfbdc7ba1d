//! The local segment cache: sealed segment objects kept on local disk,
//! bounded by bytes, least recently used evicted first.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use object_store::path::Path as ObjectPath;
use tracing::debug;

use crate::error::{Error, Result};

/// A byte-bounded LRU cache of segment objects in a directory.
#[derive(Debug)]
pub struct SegmentCache {
    dir: PathBuf,
    bytes_max: u64,
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    entries: HashMap<String, CacheEntry>,
    bytes: u64,
    clock: u64,
    filling: HashSet<String>,
}

#[derive(Debug)]
struct CacheEntry {
    path: PathBuf,
    size: u64,
    last_used: u64,
}

impl SegmentCache {
    /// Opens the cache in `dir`, starting empty (files from an earlier run
    /// are removed: the object store is the truth).
    pub fn open(dir: &Path, bytes_max: u64) -> Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            bytes_max,
            state: Mutex::new(CacheState::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The local file holding `key`, if cached. Marks it recently used.
    pub fn lookup(&self, key: &ObjectPath) -> Option<PathBuf> {
        let mut state = self.state();
        state.clock += 1;
        let clock = state.clock;
        let entry = state.entries.get_mut(key.as_ref())?;
        entry.last_used = clock;
        Some(entry.path.clone())
    }

    fn path_for(&self, key: &ObjectPath) -> PathBuf {
        self.dir.join(key.as_ref().replace('/', "_"))
    }

    /// Stores an object's bytes. Blocking (writes a file). Evicts the least
    /// recently used objects beyond the byte bound.
    pub fn insert(&self, key: &ObjectPath, bytes: &[u8]) -> Result<()> {
        let size = bytes.len() as u64;
        if size > self.bytes_max {
            return Ok(());
        }
        let path = self.path_for(key);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        self.register(key, path, size);
        Ok(())
    }

    /// Takes over a sealed write-ahead file as the cached copy of its
    /// uploaded object: writes `tail` (index and footer) after its
    /// `data_len` bytes of batches (over any padding) and moves the file
    /// into the cache, so the batch data is not written a second time.
    /// Blocking. On failure the file may be left where it was.
    pub fn adopt(&self, key: &ObjectPath, file: &Path, data_len: u64, tail: &[u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let handle = std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .map_err(|e| Error::io(file, e))?;
        handle
            .set_len(data_len)
            .and_then(|()| handle.write_all_at(tail, data_len))
            .map_err(|e| Error::io(file, e))?;
        let size = data_len + tail.len() as u64;
        let path = self.path_for(key);
        std::fs::rename(file, &path).map_err(|e| Error::io(&path, e))?;
        if size > self.bytes_max {
            let _ = std::fs::remove_file(&path);
            return Ok(());
        }
        self.register(key, path, size);
        Ok(())
    }

    fn register(&self, key: &ObjectPath, path: PathBuf, size: u64) {
        let evicted = {
            let mut state = self.state();
            state.clock += 1;
            let clock = state.clock;
            if let Some(old) = state.entries.insert(
                key.to_string(),
                CacheEntry {
                    path,
                    size,
                    last_used: clock,
                },
            ) {
                state.bytes -= old.size;
            }
            state.bytes += size;
            let mut evicted = Vec::new();
            while state.bytes > self.bytes_max {
                let Some(oldest) = state
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                if let Some(entry) = state.entries.remove(&oldest) {
                    state.bytes -= entry.size;
                    evicted.push(entry.path);
                }
            }
            evicted
        };
        for path in evicted {
            debug!(path = %path.display(), "evicting cached segment");
            // A reader that already opened it keeps reading; unlink is safe.
            let _ = std::fs::remove_file(&path);
        }
    }

    /// Drops one object from the cache.
    pub fn remove(&self, key: &ObjectPath) {
        let entry = {
            let mut state = self.state();
            let entry = state.entries.remove(key.as_ref());
            if let Some(e) = &entry {
                state.bytes -= e.size;
            }
            entry
        };
        if let Some(entry) = entry {
            let _ = std::fs::remove_file(entry.path);
        }
    }

    /// Empties the cache.
    pub fn clear(&self) {
        let entries: Vec<_> = {
            let mut state = self.state();
            state.bytes = 0;
            state.entries.drain().map(|(_, e)| e.path).collect()
        };
        for path in entries {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.state().bytes
    }

    /// Claims the right to fill `key` in the background; false when it is
    /// cached already or another task is filling it.
    pub fn begin_fill(&self, key: &ObjectPath) -> bool {
        let mut state = self.state();
        if state.entries.contains_key(key.as_ref()) {
            return false;
        }
        state.filling.insert(key.to_string())
    }

    /// How many background fills are running.
    pub fn fills_running(&self) -> usize {
        self.state().filling.len()
    }

    /// Releases a claim taken with [`SegmentCache::begin_fill`].
    pub fn end_fill(&self, key: &ObjectPath) {
        self.state().filling.remove(key.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_beyond_bound() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SegmentCache::open(&dir.path().join("c"), 250).unwrap();
        let (a, b, c) = (
            ObjectPath::from("a"),
            ObjectPath::from("b"),
            ObjectPath::from("c"),
        );
        cache.insert(&a, &[1; 100]).unwrap();
        cache.insert(&b, &[2; 100]).unwrap();
        assert!(cache.lookup(&a).is_some());
        cache.insert(&c, &[3; 100]).unwrap();
        assert!(cache.lookup(&b).is_none(), "b was least recently used");
        assert!(cache.lookup(&a).is_some());
        assert_eq!(cache.bytes(), 200);
        cache.clear();
        assert!(cache.lookup(&a).is_none());
    }
}
