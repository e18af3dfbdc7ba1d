//! Bad files: truncated, bit-flipped and oversized-length segment objects
//! and write-ahead files, from a fixed seed. Readers answer with an error
//! naming the file (or a clean valid prefix), never a panic and never an
//! allocation sized by a length read from the file.

use std::time::Duration;

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};
use rand::{Rng, SeedableRng};
use tributary_storage::batch::{Compression, encode_batch};
use tributary_storage::segment::{self, FOOTER_LEN, IndexEntry};
use tributary_storage::wal;
use tributary_storage::{Error, StreamConfig};

use crate::support::{MetadataKind, StoreKind, TestEnv, record, single_record_batch, wait_for};

/// A valid write-ahead image of `batches` batches and its index.
fn sample_wal(batches: u64) -> (Vec<u8>, Vec<IndexEntry>) {
    let mut data = Vec::new();
    let mut entries = Vec::new();
    let mut offset = 0i64;
    for b in 0..batches {
        let records: Vec<_> = (0..(b % 5 + 1)).map(|i| record(b * 10 + i, 64)).collect();
        let compression =
            [Compression::None, Compression::Lz4, Compression::Zstd][(b % 3) as usize];
        let mut batch = encode_batch(&records, compression).unwrap().to_vec();
        batch[..8].copy_from_slice(&offset.to_be_bytes());
        let count = records.len() as i64;
        entries.push(IndexEntry {
            base_offset: offset,
            last_offset: offset + count - 1,
            position: data.len() as u64,
            size: batch.len() as u32,
            max_timestamp: records.last().unwrap().timestamp_ms,
        });
        offset += count;
        data.extend(batch);
    }
    (data, entries)
}

/// Kinds of damage, each drawn from the seeded generator.
fn damage(original: &[u8], rng: &mut rand::rngs::StdRng) -> Vec<u8> {
    let mut bytes = original.to_vec();
    match rng.random_range(0..4) {
        0 => bytes.truncate(rng.random_range(0..original.len())),
        1 => {
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
        }
        2 => {
            // An absurd length or count at a random 4-byte-aligned spot.
            let at = rng.random_range(0..bytes.len().saturating_sub(4)) & !3;
            bytes[at..at + 4].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
        }
        _ => {
            let at = rng.random_range(0..bytes.len());
            bytes.splice(
                at..at,
                (0..rng.random_range(1..64)).map(|_| rng.random::<u8>()),
            );
        }
    }
    bytes
}

#[test]
fn damaged_segment_objects_never_panic() {
    let (data, entries) = sample_wal(30);
    let (object, _) = segment::build_object(&data, &entries).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut rejected = 0;
    for _ in 0..5_000 {
        let bad = damage(&object, &mut rng);
        match segment::parse_object(&bad, "objects/bad.seg") {
            Err(Error::Corrupt { location, .. }) => {
                assert_eq!(location, "objects/bad.seg");
                rejected += 1;
            }
            Err(other) => panic!("unexpected error kind: {other}"),
            // Damage inside the batch data is not the footer's to see; the
            // batch CRCs catch it (checked by the readers below).
            Ok((footer, index)) => assert_eq!(index.len() as u32, footer.entry_count),
        }
    }
    assert!(rejected > 2_000, "most damage is detected ({rejected})");
}

#[test]
fn damaged_write_ahead_images_scan_to_a_valid_prefix() {
    let (data, entries) = sample_wal(30);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xbad);
    for _ in 0..5_000 {
        let bad = damage(&data, &mut rng);
        let scan = wal::scan(&bad, 0);
        // Whatever survives is a prefix of what was written, byte for byte,
        // except the partition leader epoch (bytes 12..16 of each batch),
        // which Kafka's format leaves outside the CRC.
        assert!(scan.entries.len() <= entries.len());
        assert_eq!(&scan.entries[..], &entries[..scan.entries.len()]);
        let mut kept = bad[..scan.valid_len as usize].to_vec();
        let mut original = data[..scan.valid_len as usize].to_vec();
        for e in &scan.entries {
            let epoch = e.position as usize + 12..e.position as usize + 16;
            kept[epoch.clone()].fill(0);
            original[epoch].fill(0);
        }
        assert_eq!(kept, original);
        // Stopping early is reported, unless only zeros (the padding of
        // a directly written file) were left.
        let rest = &bad[scan.valid_len as usize..];
        if rest.iter().any(|&b| b != 0) {
            assert!(scan.stopped_because.is_some());
        } else {
            assert!(scan.stopped_because.is_none());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_write_ahead_file_is_cut_at_the_damage_on_restart() -> anyhow::Result<()> {
    let env = TestEnv::new(StoreKind::Local, MetadataKind::Sqlite).await?;
    let log = env.open(env.config()).await?;
    log.create_stream("w", StreamConfig::default()).await?;
    let mut sizes = Vec::new();
    for i in 0..20u64 {
        let batch = single_record_batch(i, 100);
        sizes.push(batch.len());
        log.append("w", 0, batch).await?;
    }
    log.shutdown().await;
    let wal_file = std::fs::read_dir(env.data_dir().join("wal"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("no stream dir"))??
        .path()
        .join("0")
        .join(wal::file_name(0));
    let mut bytes = std::fs::read(&wal_file)?;
    let tenth: usize = sizes[..10].iter().sum();
    bytes[tenth + 70] ^= 0x40; // inside record 10's payload: its CRC breaks
    std::fs::write(&wal_file, &bytes)?;

    let log = env.open(env.config()).await?;
    let torn = log.torn_tails();
    assert_eq!(torn.len(), 1);
    assert_eq!(torn[0].path, wal_file, "the report names the file");
    assert_eq!(torn[0].valid_len, tenth as u64);
    assert!(torn[0].reason.contains("CRC"), "{}", torn[0].reason);
    assert_eq!(log.partition("w", 0)?.high_watermark(), 10);
    log.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_objects_are_read_errors_naming_the_object() -> anyhow::Result<()> {
    let env = TestEnv::new(StoreKind::Local, MetadataKind::Sqlite).await?;
    let mut config = env.config();
    config.segment_bytes_max = 2 * 1024;
    let log = env.open(config.clone()).await?;
    log.create_stream("o", StreamConfig::default()).await?;
    for i in 0..40u64 {
        log.append("o", 0, single_record_batch(i, 200)).await?;
    }
    let p = log.partition("o", 0)?;
    wait_for("uploads", Duration::from_secs(10), || {
        p.segment_counts().0 == 1
    })
    .await?;
    log.shutdown().await;

    let segments = env
        .metadata()
        .await?
        .segments(log.stream("o")?.stream_id, 0)
        .await?;
    assert!(segments.len() >= 3);
    // Truncate the first object, flip a footer bit in the second, and give
    // the third a footer claiming an enormous index.
    type Mutation = fn(&mut Vec<u8>);
    let damage_plan: [(usize, Mutation); 3] = [
        (0, |b| b.truncate(b.len() / 2)),
        (1, |b| {
            let n = b.len();
            b[n - 10] ^= 1;
        }),
        (2, |b| {
            let n = b.len();
            let footer = n - FOOTER_LEN;
            b[footer + 36..footer + 40].copy_from_slice(&u32::MAX.to_be_bytes());
        }),
    ];
    for (i, mutate) in damage_plan {
        let key = segments[i].object_path();
        let mut bytes = env.store.get(&key).await?.bytes().await?.to_vec();
        mutate(&mut bytes);
        env.store
            .put(&key, PutPayload::from_bytes(Bytes::from(bytes)))
            .await?;
    }
    let log = env.open(config).await?;
    for (i, segment) in segments.iter().take(3).enumerate() {
        match log.read("o", 0, segment.base_offset, 1024).await {
            Err(e @ (Error::Corrupt { .. } | Error::ObjectStore { .. })) => {
                assert!(
                    e.to_string().contains(&segment.object_key),
                    "segment {i}: error names the object: {e}"
                );
            }
            other => panic!("segment {i}: expected a corruption error, got {other:?}"),
        }
    }
    // Undamaged segments still read.
    let intact = &segments[3];
    assert!(
        !log.read("o", 0, intact.base_offset, 1024)
            .await?
            .batches
            .is_empty()
    );
    log.shutdown().await;
    Ok(())
}
