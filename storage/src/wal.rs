//! The write-ahead segment: the local file a partition appends to before it
//! acknowledges. It holds Kafka v2 batches back to back, nothing else, so it
//! can be scanned and repaired after a crash, and it is the data part of the
//! segment object it becomes once sealed. A segment switched to direct I/O
//! before its first write ([`crate::direct_io`]) may end in up to a block
//! of zeros, which a scan takes as its end.

use std::fs::{File, OpenOptions};
use std::io::IoSlice;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use crate::batch::{self, BatchHeader};
use crate::direct_io::{self, DirectAppender};
use crate::error::{Error, Result};
use crate::segment::{self, IndexEntry};

/// File name suffix of write-ahead segments.
pub const WAL_SUFFIX: &str = "wal";

/// The file name of the write-ahead segment starting at `base_offset`.
pub fn file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.{WAL_SUFFIX}")
}

/// The base offset encoded in a write-ahead segment's file name.
pub fn parse_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".wal")?;
    if stem.len() != 20 {
        return None;
    }
    stem.parse().ok()
}

/// What recovery found at the end of a write-ahead segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The file that was repaired.
    pub path: PathBuf,
    /// Length kept: everything before it was whole and valid.
    pub valid_len: u64,
    /// Bytes cut off.
    pub truncated_bytes: u64,
    /// Why the first dropped byte did not start a valid batch.
    pub reason: String,
}

/// One write-ahead segment file with its in-memory batch index.
#[derive(Debug)]
pub struct WalSegment {
    base_offset: i64,
    path: PathBuf,
    /// Buffered: fdatasync and truncation, and reads and writes where
    /// direct I/O is off or refused.
    file: File,
    /// The same file opened for direct I/O, if in use (set at creation,
    /// or before the first write: a file is never written both ways).
    direct: OnceLock<File>,
    appender: Mutex<DirectAppender>,
    index: RwLock<Vec<IndexEntry>>,
    durable_len: AtomicU64,
    sealed: AtomicBool,
    opened_at: Instant,
}

impl WalSegment {
    /// Creates an empty segment file starting at `base_offset` and makes its
    /// directory entry durable. It is buffered until
    /// [`Self::use_direct_io`].
    pub fn create(dir: &Path, base_offset: i64) -> Result<Self> {
        let path = dir.join(file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        sync_dir(dir)?;
        Ok(Self::with_index(base_offset, path, file, Vec::new(), 0))
    }

    /// Opens an existing segment after a restart: scans every batch, and cuts
    /// off a torn or corrupt tail (returned so it can be reported) or the
    /// zeros that pad a directly written file. `on_batch` sees the header
    /// of every batch kept, in order (recovery rebuilds the producer state
    /// from them). The segment is opened buffered.
    pub fn recover(
        path: &Path,
        base_offset: i64,
        on_batch: impl FnMut(&BatchHeader),
    ) -> Result<(Self, Option<TornTail>)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let scan = scan_with(&data, base_offset, on_batch);
        if scan.valid_len != data.len() as u64 {
            file.set_len(scan.valid_len)
                .map_err(|e| Error::io(path, e))?;
            file.sync_all().map_err(|e| Error::io(path, e))?;
        }
        let torn = scan.stopped_because.map(|reason| TornTail {
            path: path.to_path_buf(),
            valid_len: scan.valid_len,
            truncated_bytes: data.len() as u64 - scan.valid_len,
            reason,
        });
        let segment = Self::with_index(
            base_offset,
            path.to_path_buf(),
            file,
            scan.entries,
            scan.valid_len,
        );
        Ok((segment, torn))
    }

    fn with_index(
        base_offset: i64,
        path: PathBuf,
        file: File,
        index: Vec<IndexEntry>,
        len: u64,
    ) -> Self {
        Self {
            base_offset,
            path,
            file,
            direct: OnceLock::new(),
            appender: Mutex::new(DirectAppender::default()),
            index: RwLock::new(index),
            durable_len: AtomicU64::new(len),
            sealed: AtomicBool::new(false),
            opened_at: Instant::now(),
        }
    }

    /// Offset of the first record this segment holds or will hold.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes durably written.
    pub fn len(&self) -> u64 {
        self.durable_len.load(Ordering::Acquire)
    }

    /// Whether no batch has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When this segment was created or reopened.
    pub fn opened_at(&self) -> Instant {
        self.opened_at
    }

    /// Whether the writer has moved on to a newer segment.
    pub fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }

    /// Marks the segment as no longer appended to.
    pub fn seal(&self) {
        self.sealed.store(true, Ordering::Release);
        self.appender().release();
    }

    /// Whether the file is written and read with direct I/O.
    pub fn is_direct(&self) -> bool {
        self.direct.get().is_some()
    }

    /// Switches a segment nothing has been written to yet to direct I/O,
    /// where the filesystem supports it. Blocking.
    pub fn use_direct_io(&self) -> Result<()> {
        if self.is_direct() {
            return Ok(());
        }
        let unwritten = self.is_empty()
            && self
                .file
                .metadata()
                .map_err(|e| Error::io(&self.path, e))?
                .len()
                == 0;
        if !unwritten {
            return Err(Error::Internal(format!(
                "{} has been written to: it stays buffered",
                self.path.display()
            )));
        }
        match direct_io::open(&self.path).map_err(|e| Error::io(&self.path, e))? {
            Some(direct) => {
                let _ = self.direct.set(direct);
            }
            None => {
                debug!(path = %self.path.display(), "the filesystem refuses direct I/O; the segment stays buffered");
            }
        }
        Ok(())
    }

    fn appender(&self) -> std::sync::MutexGuard<'_, DirectAppender> {
        // A panic mid-append left the appender out of step with the file,
        // which it knows: the next append reads the partial block again.
        self.appender.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The offset after the last record written, or the base if empty.
    pub fn next_offset(&self) -> i64 {
        self.last_entry()
            .map_or(self.base_offset, |e| e.last_offset + 1)
    }

    /// The last batch's index entry.
    pub fn last_entry(&self) -> Option<IndexEntry> {
        self.read_index().last().copied()
    }

    /// A copy of the whole index.
    pub fn index(&self) -> Vec<IndexEntry> {
        self.read_index().clone()
    }

    /// The index entries a read from `offset` returns (see
    /// [`segment::entries_for_read`]).
    pub fn entries_for_read(&self, offset: i64, max_bytes: usize) -> Vec<IndexEntry> {
        segment::entries_for_read(&self.read_index(), offset, max_bytes).to_vec()
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Vec<IndexEntry>> {
        // A poisoned lock only means a reader panicked; the index is still whole.
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `parts` back to back at position `at` (whole batches, at or
    /// after the durable end) with vectored writes and without syncing: the
    /// writer calls [`Self::sync_blocking`] and then [`Self::publish`].
    /// Blocking: call from a blocking thread. On failure the file is cut back
    /// to `at` so no partial batch stays behind.
    pub fn write_blocking(&self, parts: &[Bytes], at: u64) -> Result<()> {
        let written = match self.direct.get() {
            // A failed direct write leaves the appender out of step, which
            // it knows: the next one reads the partial block again.
            Some(direct) => self.appender().write_at(direct, parts, at),
            None => write_all_vectored_at(&self.file, parts, at),
        };
        if let Err(e) = written {
            // Best effort: a leftover tail would be cut at recovery anyway,
            // and the next write goes over it.
            let _ = self.file.set_len(at);
            return Err(Error::io(&self.path, e));
        }
        Ok(())
    }

    /// Makes everything written so far durable (fdatasync). Blocking.
    pub fn sync_blocking(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }

    /// Cuts the file back to `len` bytes: written data whose sync failed.
    /// Blocking.
    pub fn truncate_blocking(&self, len: u64) -> Result<()> {
        self.appender().forget();
        self.file.set_len(len).map_err(|e| Error::io(&self.path, e))
    }

    /// Makes synced batches visible to readers: their index `entries`, and
    /// `durable_len`, the end of the last of them.
    pub fn publish(&self, entries: impl IntoIterator<Item = IndexEntry>, durable_len: u64) {
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        index.extend(entries);
        self.durable_len.store(durable_len, Ordering::Release);
    }

    /// Reads a byte range of durably written data. Blocking.
    pub fn read_blocking(&self, range: std::ops::Range<u64>) -> Result<Bytes> {
        if range.end > self.len() || range.start > range.end {
            return Err(Error::Internal(format!(
                "read {range:?} beyond the durable end of {}",
                self.path.display()
            )));
        }
        if let Some(direct) = self.direct.get() {
            return direct_io::read_at(direct, range).map_err(|e| Error::io(&self.path, e));
        }
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        self.file
            .read_exact_at(&mut buf, range.start)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(Bytes::from(buf))
    }

    /// Reads every durably written byte. Blocking.
    pub fn read_all_blocking(&self) -> Result<Bytes> {
        self.read_blocking(0..self.len())
    }
}

/// The result of scanning write-ahead bytes.
#[derive(Debug)]
pub struct Scan {
    /// Whole, valid, densely numbered batches from the start.
    pub entries: Vec<IndexEntry>,
    /// Bytes they cover.
    pub valid_len: u64,
    /// Why scanning stopped before the end, if it did.
    pub stopped_because: Option<String>,
}

/// Scans batches from the start of `data`, which should begin at
/// `base_offset`, and stops at the first byte that is not a whole, valid
/// batch with the expected offset. Zeros from there to the end are the end
/// of the data, not damage (a directly written file is padded with them).
pub fn scan(data: &[u8], base_offset: i64) -> Scan {
    scan_with(data, base_offset, |_| {})
}

/// [`scan`], calling `on_batch` with the header of each valid batch.
pub fn scan_with(data: &[u8], base_offset: i64, mut on_batch: impl FnMut(&BatchHeader)) -> Scan {
    let mut entries = Vec::new();
    let mut position = 0usize;
    let mut expected_offset = base_offset;
    let stopped_because = loop {
        let rest = &data[position..];
        if rest.iter().all(|&b| b == 0) {
            // The end, or the zeros padding a directly written file: no
            // batch starts with a zero length.
            break None;
        }
        let header = match BatchHeader::parse(rest) {
            Ok(h) => h,
            Err(e) => break Some(format!("at byte {position}: {e}")),
        };
        if header.size > rest.len() {
            break Some(format!(
                "at byte {position}: batch of {} bytes but only {} remain",
                header.size,
                rest.len()
            ));
        }
        if let Err(e) = batch::validate(&rest[..header.size]) {
            break Some(format!("at byte {position}: {e}"));
        }
        if header.base_offset != expected_offset {
            break Some(format!(
                "at byte {position}: batch starts at offset {} where {expected_offset} was expected",
                header.base_offset
            ));
        }
        on_batch(&header);
        entries.push(IndexEntry {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            position: position as u64,
            size: header.size as u32,
            max_timestamp: header.max_timestamp,
        });
        expected_offset = header.last_offset() + 1;
        position += header.size;
    };
    Scan {
        entries,
        valid_len: position as u64,
        stopped_because,
    }
}

/// Most slices one `pwritev` takes (Linux's `IOV_MAX`).
const IOVECS_MAX: usize = 1024;

/// Writes every byte of `parts`, in order, from `at`: `pwritev` in chunks
/// of at most [`IOVECS_MAX`] slices, continuing after short writes.
fn write_all_vectored_at(file: &File, parts: &[Bytes], mut at: u64) -> std::io::Result<()> {
    let mut next = 0;
    let mut skip = 0usize; // bytes of parts[next] already written
    while next < parts.len() {
        let slices: Vec<IoSlice<'_>> = parts[next..]
            .iter()
            .take(IOVECS_MAX)
            .enumerate()
            .map(|(i, part)| IoSlice::new(if i == 0 { &part[skip..] } else { part }))
            .collect();
        let mut written = match rustix::io::pwritev(file, &slices, at) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        at += written as u64;
        while written > 0 {
            let left = parts[next].len() - skip;
            if written < left {
                skip += written;
                break;
            }
            written -= left;
            next += 1;
            skip = 0;
        }
        while next < parts.len() && parts[next].len() == skip {
            next += 1;
            skip = 0;
        }
    }
    Ok(())
}

/// Makes a directory's entries (a created or removed file) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Compression, NewRecord, encode_batch, set_base_offset};

    fn batch_at(offset: i64, n: usize) -> Vec<u8> {
        let records: Vec<NewRecord> = (0..n)
            .map(|i| NewRecord {
                value: Some(format!("v{i}").into()),
                timestamp_ms: i as i64,
                ..Default::default()
            })
            .collect();
        let mut b = encode_batch(&records, Compression::None).unwrap().to_vec();
        set_base_offset(&mut b, offset);
        b
    }

    #[test]
    fn vectored_writes_keep_order_across_many_parts() {
        let dir = tempfile::tempdir().unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("v"))
            .unwrap();
        // More parts than one pwritev takes, some of them empty.
        let parts: Vec<Bytes> = (0..3000u32)
            .map(|i| Bytes::from(vec![(i % 251) as u8; (i % 7) as usize]))
            .collect();
        write_all_vectored_at(&file, &parts, 3).unwrap();
        let expected: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        let mut got = vec![0u8; expected.len()];
        file.read_exact_at(&mut got, 3).unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(parse_file_name(&file_name(1234)), Some(1234));
        assert_eq!(parse_file_name("junk.wal"), None);
    }

    #[test]
    fn scan_stops_at_torn_tail_and_offset_gaps() {
        let mut data = batch_at(5, 3);
        data.extend(batch_at(8, 2));
        let whole = data.len();
        let scan_whole = scan(&data, 5);
        assert_eq!(scan_whole.entries.len(), 2);
        assert!(scan_whole.stopped_because.is_none());

        data.extend(&batch_at(10, 1)[..20]);
        let torn = scan(&data, 5);
        assert_eq!(torn.valid_len, whole as u64);
        assert!(torn.stopped_because.is_some());

        let mut gap = batch_at(5, 3);
        gap.extend(batch_at(9, 1));
        assert_eq!(scan(&gap, 5).entries.len(), 1);
    }

    /// Writes `batch` at `at` into `segment`, syncs it and publishes it.
    fn append(segment: &WalSegment, batch: &[u8], at: u64) {
        let header = BatchHeader::parse(batch).unwrap();
        segment
            .write_blocking(&[Bytes::copy_from_slice(batch)], at)
            .unwrap();
        segment.sync_blocking().unwrap();
        segment.publish(
            [IndexEntry {
                base_offset: header.base_offset,
                last_offset: header.last_offset(),
                position: at,
                size: header.size as u32,
                max_timestamp: header.max_timestamp,
            }],
            at + batch.len() as u64,
        );
    }

    #[test]
    fn scan_takes_trailing_zeros_as_the_end() {
        let mut data = batch_at(5, 3);
        let whole = data.len() as u64;
        data.resize(4096, 0);
        let padded = scan(&data, 5);
        assert_eq!((padded.entries.len(), padded.valid_len), (1, whole));
        assert!(padded.stopped_because.is_none());
        data.push(1);
        assert!(scan(&data, 5).stopped_because.is_some());
    }

    #[test]
    fn recover_truncates_garbage() {
        for direct_io in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let segment = WalSegment::create(dir.path(), 0).unwrap();
            if direct_io {
                segment.use_direct_io().unwrap();
            }
            let b = batch_at(0, 4);
            append(&segment, &b, 0);
            let path = segment.path().to_path_buf();
            drop(segment);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend_from_slice(b"garbage garbage garbage garbage garbage garbage garbage");
            std::fs::write(&path, &bytes).unwrap();
            let (recovered, torn) = WalSegment::recover(&path, 0, |_| {}).unwrap();
            assert_eq!(recovered.next_offset(), 4);
            assert_eq!(torn.unwrap().valid_len, b.len() as u64);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), b.len() as u64);
        }
    }

    #[test]
    fn only_an_unwritten_segment_switches_to_direct_io() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = WalSegment::create(dir.path(), 0).unwrap();
        assert!(!fresh.is_direct());
        fresh.use_direct_io().unwrap();
        let written = WalSegment::create(dir.path(), 100).unwrap();
        written
            .write_blocking(&[Bytes::from(batch_at(100, 1))], 0)
            .unwrap();
        assert!(written.use_direct_io().is_err());
        assert!(!written.is_direct());
        if fresh.is_direct() {
            // The switched segment appends and reads back like any other.
            let b = batch_at(0, 3);
            append(&fresh, &b, 0);
            assert_eq!(fresh.read_all_blocking().unwrap(), b[..]);
        }
    }

    #[test]
    fn a_directly_written_segment_recovers_without_a_torn_tail_and_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let segment = WalSegment::create(dir.path(), 0).unwrap();
        segment.use_direct_io().unwrap();
        if !segment.is_direct() {
            return; // This filesystem refuses direct I/O: nothing to check.
        }
        let (first, second) = (batch_at(0, 4), batch_at(4, 2));
        append(&segment, &first, 0);
        let path = segment.path().to_path_buf();
        assert!(
            std::fs::metadata(&path).unwrap().len() > first.len() as u64,
            "padded"
        );
        drop(segment);
        let (recovered, torn) = WalSegment::recover(&path, 0, |_| {}).unwrap();
        assert_eq!(torn, None, "padding is not damage");
        assert!(!recovered.is_direct(), "a recovered segment is buffered");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), first.len() as u64);
        // The next append goes on where the data ends.
        append(&recovered, &second, first.len() as u64);
        let mut expected = first.clone();
        expected.extend(&second);
        assert_eq!(recovered.read_all_blocking().unwrap(), expected[..]);
        assert_eq!(
            recovered.read_blocking(3..first.len() as u64 + 1).unwrap(),
            expected[3..first.len() + 1]
        );
        drop(recovered);
        let (again, torn) = WalSegment::recover(&path, 0, |_| {}).unwrap();
        assert_eq!((again.next_offset(), torn), (6, None));
    }
}
