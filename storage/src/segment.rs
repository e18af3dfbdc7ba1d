//! The sealed segment format, the same in the object store and the local
//! cache:
//!
//! ```text
//! [batches, back to back]        Kafka v2 batches exactly as appended
//! [index: one entry per batch]   base offset, last offset, position, size, max timestamp
//! [footer: 64 bytes]             magic, version, offsets, lengths, timestamps, two CRC32Cs
//! ```
//!
//! A reader fetches the footer with one ranged read, the index with a second,
//! then exactly the batch bytes it needs. Every length is checked against the
//! object's real size before anything is allocated.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// Bytes of one index entry.
pub const INDEX_ENTRY_LEN: usize = 36;
/// Bytes of the footer.
pub const FOOTER_LEN: usize = 64;
const MAGIC: &[u8; 8] = b"TRIBSEG1";
const VERSION: u16 = 1;

/// Where one batch sits in a segment, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of the batch's last record.
    pub last_offset: i64,
    /// Byte position of the batch in the segment's data.
    pub position: u64,
    /// Size of the batch in bytes.
    pub size: u32,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
}

impl IndexEntry {
    /// The byte range of the batch within the segment data.
    pub fn byte_range(&self) -> std::ops::Range<u64> {
        self.position..self.position + u64::from(self.size)
    }
}

/// The fixed-size trailer of a segment object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// Bytes of batch data at the start of the object.
    pub data_len: u64,
    /// Number of index entries (batches).
    pub entry_count: u32,
    /// Smallest batch max-timestamp.
    pub min_timestamp: i64,
    /// Largest batch max-timestamp.
    pub max_timestamp: i64,
    /// CRC32C of the index bytes.
    pub index_crc: u32,
}

impl Footer {
    /// Total size of the object this footer ends.
    pub fn object_len(&self) -> u64 {
        self.data_len + self.index_len() + FOOTER_LEN as u64
    }

    /// Bytes of the index.
    pub fn index_len(&self) -> u64 {
        u64::from(self.entry_count) * INDEX_ENTRY_LEN as u64
    }

    /// Byte range of the index within the object.
    pub fn index_range(&self) -> std::ops::Range<u64> {
        self.data_len..self.data_len + self.index_len()
    }

    fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_slice(MAGIC);
        out.put_u16(VERSION);
        out.put_u16(0);
        out.put_i64(self.base_offset);
        out.put_i64(self.last_offset);
        out.put_u64(self.data_len);
        out.put_u32(self.entry_count);
        out.put_i64(self.min_timestamp);
        out.put_i64(self.max_timestamp);
        out.put_u32(self.index_crc);
        let crc = crc32c::crc32c(&out[start..]);
        out.put_u32(crc);
    }

    /// Parses and checks a footer. `object_len` is the real size of the
    /// object, so a corrupt length can never size an allocation.
    pub fn decode(bytes: &[u8], object_len: u64, location: &str) -> Result<Self> {
        if bytes.len() != FOOTER_LEN {
            return Err(Error::corrupt(location, "segment footer is not 64 bytes"));
        }
        let stored_crc = u32::from_be_bytes([bytes[60], bytes[61], bytes[62], bytes[63]]);
        if crc32c::crc32c(&bytes[..60]) != stored_crc {
            return Err(Error::corrupt(location, "segment footer CRC mismatch"));
        }
        if &bytes[..8] != MAGIC {
            return Err(Error::corrupt(
                location,
                "not a Tributary segment (bad magic)",
            ));
        }
        let mut b = &bytes[8..];
        let version = b.get_u16();
        if version != VERSION {
            return Err(Error::corrupt(
                location,
                format!("segment format version {version} is not supported"),
            ));
        }
        b.advance(2);
        let footer = Self {
            base_offset: b.get_i64(),
            last_offset: b.get_i64(),
            data_len: b.get_u64(),
            entry_count: b.get_u32(),
            min_timestamp: b.get_i64(),
            max_timestamp: b.get_i64(),
            index_crc: b.get_u32(),
        };
        let expected = footer
            .data_len
            .checked_add(footer.index_len())
            .and_then(|n| n.checked_add(FOOTER_LEN as u64));
        if expected != Some(object_len) {
            return Err(Error::corrupt(
                location,
                format!(
                    "footer describes {} data bytes and {} batches, which does not add up to the object size {object_len}",
                    footer.data_len, footer.entry_count
                ),
            ));
        }
        if footer.last_offset < footer.base_offset || footer.entry_count == 0 {
            return Err(Error::corrupt(location, "footer offsets are inconsistent"));
        }
        Ok(footer)
    }
}

/// Encodes the index entries.
fn encode_index(entries: &[IndexEntry], out: &mut BytesMut) {
    for e in entries {
        out.put_i64(e.base_offset);
        out.put_i64(e.last_offset);
        out.put_u64(e.position);
        out.put_u32(e.size);
        out.put_i64(e.max_timestamp);
    }
}

/// Parses and checks the index of a segment whose footer is `footer`:
/// CRC, dense and increasing offsets, batches tiling the data exactly.
pub fn decode_index(bytes: &[u8], footer: &Footer, location: &str) -> Result<Vec<IndexEntry>> {
    if bytes.len() as u64 != footer.index_len() {
        return Err(Error::corrupt(
            location,
            "segment index has the wrong length",
        ));
    }
    if crc32c::crc32c(bytes) != footer.index_crc {
        return Err(Error::corrupt(location, "segment index CRC mismatch"));
    }
    let mut entries = Vec::with_capacity(footer.entry_count as usize);
    let mut b = bytes;
    let mut next_position = 0u64;
    let mut next_offset = footer.base_offset;
    while b.has_remaining() {
        let entry = IndexEntry {
            base_offset: b.get_i64(),
            last_offset: b.get_i64(),
            position: b.get_u64(),
            size: b.get_u32(),
            max_timestamp: b.get_i64(),
        };
        if entry.base_offset != next_offset
            || entry.last_offset < entry.base_offset
            || entry.position != next_position
        {
            return Err(Error::corrupt(
                location,
                format!("segment index entry {} is out of order", entries.len()),
            ));
        }
        next_position = entry.position + u64::from(entry.size);
        next_offset = entry.last_offset + 1;
        entries.push(entry);
    }
    if next_position != footer.data_len || next_offset != footer.last_offset + 1 {
        return Err(Error::corrupt(
            location,
            "segment index does not cover the data exactly",
        ));
    }
    Ok(entries)
}

/// Builds what follows the batch data in a segment object: the index and the
/// footer. The object is `data ++ tail`; the data is never copied.
pub fn build_tail(data_len: u64, entries: &[IndexEntry]) -> Result<(Bytes, Footer)> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Err(Error::Internal("cannot build an empty segment".into()));
    };
    if last.position + u64::from(last.size) != data_len {
        return Err(Error::Internal(
            "segment index does not match its data".into(),
        ));
    }
    let mut out = BytesMut::with_capacity(entries.len() * INDEX_ENTRY_LEN + FOOTER_LEN);
    encode_index(entries, &mut out);
    let index_crc = crc32c::crc32c(&out);
    let footer = Footer {
        base_offset: first.base_offset,
        last_offset: last.last_offset,
        data_len,
        entry_count: entries.len() as u32,
        min_timestamp: entries.iter().map(|e| e.max_timestamp).min().unwrap_or(-1),
        max_timestamp: entries.iter().map(|e| e.max_timestamp).max().unwrap_or(-1),
        index_crc,
    };
    footer.encode(&mut out);
    Ok((out.freeze(), footer))
}

/// Builds a whole segment object in memory (tests, tools).
pub fn build_object(data: &[u8], entries: &[IndexEntry]) -> Result<(Bytes, Footer)> {
    let (tail, footer) = build_tail(data.len() as u64, entries)?;
    let mut object = BytesMut::with_capacity(data.len() + tail.len());
    object.put_slice(data);
    object.put_slice(&tail);
    Ok((object.freeze(), footer))
}

/// Parses a whole segment object held in memory (cache files, tests).
pub fn parse_object(bytes: &[u8], location: &str) -> Result<(Footer, Vec<IndexEntry>)> {
    if bytes.len() < FOOTER_LEN {
        return Err(Error::corrupt(location, "shorter than a segment footer"));
    }
    let footer = Footer::decode(
        &bytes[bytes.len() - FOOTER_LEN..],
        bytes.len() as u64,
        location,
    )?;
    let range = footer.index_range();
    let index = decode_index(
        &bytes[range.start as usize..range.end as usize],
        &footer,
        location,
    )?;
    Ok((footer, index))
}

/// The entries whose batches a read starting at `offset` returns, stopping
/// once `max_bytes` is reached but always including the first batch.
pub fn entries_for_read(entries: &[IndexEntry], offset: i64, max_bytes: usize) -> &[IndexEntry] {
    let start = entries.partition_point(|e| e.last_offset < offset);
    let mut end = start;
    let mut bytes = 0usize;
    while end < entries.len() {
        let size = entries[end].size as usize;
        if end > start && bytes + size > max_bytes {
            break;
        }
        bytes += size;
        end += 1;
    }
    &entries[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> (Vec<u8>, Vec<IndexEntry>) {
        let data = vec![7u8; 300];
        let entries = vec![
            IndexEntry {
                base_offset: 10,
                last_offset: 14,
                position: 0,
                size: 100,
                max_timestamp: 5,
            },
            IndexEntry {
                base_offset: 15,
                last_offset: 15,
                position: 100,
                size: 120,
                max_timestamp: 9,
            },
            IndexEntry {
                base_offset: 16,
                last_offset: 20,
                position: 220,
                size: 80,
                max_timestamp: 7,
            },
        ];
        (data, entries)
    }

    #[test]
    fn object_round_trip() {
        let (data, index) = entries();
        let (object, footer) = build_object(&data, &index).unwrap();
        assert_eq!(footer.object_len(), object.len() as u64);
        let (parsed_footer, parsed_index) = parse_object(&object, "t").unwrap();
        assert_eq!(parsed_footer, footer);
        assert_eq!(parsed_index, index);
        assert_eq!(footer.min_timestamp, 5);
        assert_eq!(footer.max_timestamp, 9);
    }

    #[test]
    fn every_single_bit_flip_in_index_or_footer_is_detected() {
        let (data, index) = entries();
        let (object, _) = build_object(&data, &index).unwrap();
        for at in data.len()..object.len() {
            for bit in 0..8 {
                let mut bad = object.to_vec();
                bad[at] ^= 1 << bit;
                assert!(parse_object(&bad, "t").is_err(), "flip at {at} bit {bit}");
            }
        }
    }

    #[test]
    fn read_selection_respects_max_bytes_but_returns_one_batch() {
        let (_, index) = entries();
        assert_eq!(entries_for_read(&index, 12, 1).len(), 1);
        assert_eq!(entries_for_read(&index, 12, 220).len(), 2);
        assert_eq!(entries_for_read(&index, 15, 10_000).len(), 2);
        assert_eq!(entries_for_read(&index, 21, 10_000).len(), 0);
    }
}
