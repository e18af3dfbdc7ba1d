//! Direct I/O (`O_DIRECT`) for write-ahead segments: writes and reads that
//! bypass the page cache, through block-aligned buffers.
//!
//! Buffered writes put every byte of the log into a new page-cache page,
//! and on a virtual machine whose free memory goes back to the host that
//! costs more CPU than encoding the data did (docs/benchmarks.md). A
//! segment written directly costs a copy into a reused buffer and the
//! device's time. A write ends on a block boundary, so the last block is
//! padded with zeros; the appender keeps the partial block and writes it
//! again, completed, with the next append. The file is therefore up to a
//! block longer than its data until it is published (the uploader cuts
//! the padding before it appends the index) or recovered (a scan treats
//! trailing zeros as the end, and recovery reopens the file buffered).
//!
//! Direct writes suit large appends only: each one waits for the device,
//! where a buffered write returns at memory speed. The partition writer
//! therefore picks the mode per segment file before its first write, from
//! the size of its groups (`partition/writer.rs`); a file is never written
//! both ways.
//!
//! A file written directly is read directly too: a buffered read would
//! cache the partial last block, and the next direct write of that block
//! could then leave a stale page behind.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use bytes::Bytes;

/// The alignment of direct I/O: buffer addresses, file positions and
/// lengths are multiples of it. 4 KiB suits devices with 512-byte and
/// 4 KiB logical blocks alike.
pub const BLOCK: usize = 4096;

/// Bytes an appender copies before it writes them out: big enough that
/// the system calls cost nothing next to the copy, small enough to keep
/// one per active segment.
const STAGING_BYTES: usize = 1024 * 1024;

fn align_down(position: u64) -> u64 {
    position - position % BLOCK as u64
}

fn align_up(len: usize) -> usize {
    len.div_ceil(BLOCK) * BLOCK
}

/// Opens `path` for direct reads and writes, or returns `None` where the
/// filesystem does not support direct I/O (tmpfs refuses `O_DIRECT`).
pub fn open(path: &Path) -> io::Result<Option<File>> {
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(path);
    match opened {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A zeroed heap buffer whose start is aligned to [`BLOCK`]: a block
/// longer allocation, used from its first aligned byte (safe code only).
pub struct AlignedBuf {
    memory: Vec<u8>,
    offset: usize,
    len: usize,
}

impl AlignedBuf {
    /// A buffer of `len` zero bytes (`len` > 0, a multiple of [`BLOCK`]).
    pub fn zeroed(len: usize) -> Self {
        assert!(
            len > 0 && len.is_multiple_of(BLOCK),
            "aligned buffers are whole blocks"
        );
        let memory = vec![0u8; len + BLOCK];
        let address = memory.as_ptr() as usize;
        let offset = (BLOCK - address % BLOCK) % BLOCK;
        Self {
            memory,
            offset,
            len,
        }
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.memory[self.offset..self.offset + self.len]
    }
}

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        &self.memory[self.offset..self.offset + self.len]
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .finish()
    }
}

/// Reads `range` of a file opened with [`open`]: the enclosing blocks
/// into an aligned buffer, returned sliced to the range without a copy.
pub fn read_at(file: &File, range: Range<u64>) -> io::Result<Bytes> {
    if range.is_empty() {
        return Ok(Bytes::new());
    }
    let start = align_down(range.start);
    let mut buf = AlignedBuf::zeroed(align_up((range.end - start) as usize));
    let mut filled = 0usize;
    let wanted = (range.end - start) as usize;
    while filled < wanted {
        // `filled` stays block-aligned: only the read that meets the end
        // of the file returns a partial block.
        match file.read_at(&mut buf.as_mut_slice()[filled..], start + filled as u64) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let from = (range.start - start) as usize;
    Ok(Bytes::from_owner(buf).slice(from..from + (range.end - range.start) as usize))
}

/// Appends to a file opened with [`open`]. It holds the partial last
/// block, so each append writes whole blocks: that block completed, the
/// new bytes, and zeros up to the next boundary.
#[derive(Debug, Default)]
pub struct DirectAppender {
    /// Allocated at the first append, released when the segment is sealed.
    staging: Option<AlignedBuf>,
    /// File position of `staging[0]` (block-aligned).
    block_start: u64,
    /// Bytes of `staging` that are data.
    held: usize,
    /// Whether `staging` holds the file's bytes from `block_start` to the
    /// end of the data; false until the first append, and after a failure.
    in_step: bool,
}

impl DirectAppender {
    /// Writes `parts`, back to back, from `at`, which must be the end of the
    /// data (earlier bytes are never rewritten except the partial block
    /// they end in, with the same contents). Blocking.
    pub fn write_at(&mut self, file: &File, parts: &[Bytes], at: u64) -> io::Result<()> {
        if !self.in_step || self.block_start + self.held as u64 != at {
            self.load_tail(file, at)?;
        }
        self.in_step = false;
        let staging = self
            .staging
            .get_or_insert_with(|| AlignedBuf::zeroed(STAGING_BYTES))
            .as_mut_slice();
        for part in parts {
            let mut rest: &[u8] = part;
            while !rest.is_empty() {
                let n = rest.len().min(STAGING_BYTES - self.held);
                staging[self.held..self.held + n].copy_from_slice(&rest[..n]);
                self.held += n;
                rest = &rest[n..];
                if self.held == STAGING_BYTES {
                    file.write_all_at(staging, self.block_start)?;
                    self.block_start += STAGING_BYTES as u64;
                    self.held = 0;
                }
            }
        }
        if self.held > 0 {
            let padded = align_up(self.held);
            staging[self.held..padded].fill(0);
            file.write_all_at(&staging[..padded], self.block_start)?;
            let whole = self.held - self.held % BLOCK;
            staging.copy_within(whole..self.held, 0);
            self.block_start += whole as u64;
            self.held -= whole;
        }
        self.in_step = true;
        Ok(())
    }

    /// Forgets the partial block: the file was cut, so the next append
    /// reads it again from the file.
    pub fn forget(&mut self) {
        self.in_step = false;
    }

    /// Frees the buffer once nothing more is appended.
    pub fn release(&mut self) {
        self.staging = None;
        self.in_step = false;
    }

    /// Reads the data of the block `at` falls in, before `at`, into the
    /// start of the buffer.
    fn load_tail(&mut self, file: &File, at: u64) -> io::Result<()> {
        self.block_start = align_down(at);
        self.held = (at - self.block_start) as usize;
        let staging = self
            .staging
            .get_or_insert_with(|| AlignedBuf::zeroed(STAGING_BYTES))
            .as_mut_slice();
        if self.held > 0 {
            let block = read_at(file, self.block_start..at)?;
            staging[..self.held].copy_from_slice(&block);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in a directory that supports direct I/O, or `None` (the
    /// test then has nothing to check on this machine).
    fn direct_file(dir: &Path) -> Option<File> {
        let path = dir.join("d");
        File::create(&path).unwrap();
        open(&path).unwrap()
    }

    #[test]
    fn appends_of_any_size_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let Some(file) = direct_file(dir.path()) else {
            return;
        };
        let mut appender = DirectAppender::default();
        let mut expected = Vec::new();
        // Sizes that end inside a block, on a boundary, and past the
        // staging buffer.
        for (i, size) in [1usize, 4095, 1, BLOCK, 3 * STAGING_BYTES / 2, 77]
            .into_iter()
            .enumerate()
        {
            let part: Vec<u8> = (0..size).map(|j| (i * 31 + j) as u8).collect();
            let halves = [
                Bytes::copy_from_slice(&part[..size / 2]),
                Bytes::copy_from_slice(&part[size / 2..]),
            ];
            appender
                .write_at(&file, &halves, expected.len() as u64)
                .unwrap();
            expected.extend_from_slice(&part);
            let end = expected.len() as u64;
            assert_eq!(read_at(&file, 0..end).unwrap(), expected[..]);
            if end > 4 {
                let inner = read_at(&file, 3..end - 1).unwrap();
                assert_eq!(inner, expected[3..end as usize - 1]);
            }
            let on_disk = file.metadata().unwrap().len();
            assert_eq!(
                on_disk,
                align_up(expected.len()) as u64,
                "padded to a block"
            );
        }
    }

    #[test]
    fn an_append_after_a_cut_rereads_the_partial_block() {
        let dir = tempfile::tempdir().unwrap();
        let Some(file) = direct_file(dir.path()) else {
            return;
        };
        let mut appender = DirectAppender::default();
        appender
            .write_at(&file, &[Bytes::from(vec![7u8; 5000])], 0)
            .unwrap();
        // A failed sync cuts the file back to 4500 bytes.
        file.set_len(4500).unwrap();
        appender.forget();
        appender
            .write_at(&file, &[Bytes::from(vec![9u8; 10])], 4500)
            .unwrap();
        let mut expected = vec![7u8; 4500];
        expected.extend([9u8; 10]);
        assert_eq!(read_at(&file, 0..4510).unwrap(), expected[..]);
        // A fresh appender (a restart) finds the partial block the same way.
        let mut restarted = DirectAppender::default();
        restarted
            .write_at(&file, &[Bytes::from_static(b"xyz")], 4510)
            .unwrap();
        expected.extend(b"xyz");
        assert_eq!(read_at(&file, 0..4513).unwrap(), expected[..]);
    }

    #[test]
    fn reads_past_the_end_fail() {
        let dir = tempfile::tempdir().unwrap();
        let Some(file) = direct_file(dir.path()) else {
            return;
        };
        DirectAppender::default()
            .write_at(&file, &[Bytes::from_static(b"abc")], 0)
            .unwrap();
        file.set_len(3).unwrap();
        assert_eq!(read_at(&file, 1..3).unwrap(), &b"bc"[..]);
        assert!(read_at(&file, 0..5000).is_err());
    }
}
