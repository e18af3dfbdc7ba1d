//! Byte ranges of local files read into fresh buffers that are not zeroed
//! first: what `vec![0; n]` and then a read would cost twice. Segment reads
//! from the cache and from a local-filesystem object store go this way.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;

use bytes::Bytes;

/// The bytes of `path` in `range`; an `UnexpectedEof` error if the file
/// ends before `range` does.
pub fn read_range(path: &Path, range: Range<u64>) -> io::Result<Bytes> {
    let file = File::open(path)?;
    let len = usize::try_from(range.end.saturating_sub(range.start))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "range too large"))?;
    let mut buffer = Vec::with_capacity(len);
    while buffer.len() < len {
        let at = range.start + buffer.len() as u64;
        let read = rustix::io::pread(&file, rustix::buffer::spare_capacity(&mut buffer), at)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ends at byte {at}, before byte {}",
                    path.display(),
                    range.end
                ),
            ));
        }
    }
    // The buffer may hold more than asked when its capacity did.
    buffer.truncate(len);
    Ok(Bytes::from(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_and_refuses_to_read_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        for range in [0..0, 0..1, 5..70_000, 123..300_000, 299_999..300_000] {
            let read = read_range(&path, range.clone()).unwrap();
            assert_eq!(&read[..], &data[range.start as usize..range.end as usize]);
        }
        let past = read_range(&path, 299_000..300_001).unwrap_err();
        assert_eq!(past.kind(), io::ErrorKind::UnexpectedEof);
        let missing = read_range(&dir.path().join("gone"), 0..1).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
