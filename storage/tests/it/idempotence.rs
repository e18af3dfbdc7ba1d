//! Idempotent producers at the log: sequence checks where offsets are
//! assigned, duplicates answered with their original offsets and not stored
//! again, and the producer state rebuilt at restart from the snapshot
//! registered with the newest segment plus the write-ahead batches after it.

use bytes::Bytes;
use tributary_storage::batch::{Compression, encode_batch, set_producer};
use tributary_storage::{AppendOutcome, Error, Log, StreamConfig};

use crate::support::{
    MetadataKind, StoreKind, TestEnv, metadata_kinds, read_all_values, record, settled_uploads,
    store_kinds,
};

/// A batch of `count` records numbered from `first`, sent by producer
/// `producer_id` at `epoch` with base sequence `sequence`.
fn batch(producer_id: i64, epoch: i16, sequence: i32, first: u64, count: u64) -> Vec<u8> {
    let records: Vec<_> = (first..first + count).map(|i| record(i, 200)).collect();
    let mut bytes = encode_batch(&records, Compression::None).unwrap().to_vec();
    set_producer(&mut bytes, producer_id, epoch, sequence);
    bytes
}

async fn append(
    log: &Log,
    stream: &str,
    batches: &[Vec<u8>],
) -> tributary_storage::Result<AppendOutcome> {
    log.append(stream, 0, Bytes::from(batches.concat())).await
}

async fn one_partition(log: &Log, name: &str) -> anyhow::Result<()> {
    log.create_stream(name, StreamConfig::default()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_are_checked_and_duplicates_answered_with_their_offsets() -> anyhow::Result<()> {
    let env = TestEnv::new(StoreKind::Local, MetadataKind::Sqlite).await?;
    let log = env.open(env.config()).await?;
    one_partition(&log, "idem").await?;

    let first = append(&log, "idem", &[batch(5, 0, 0, 0, 3)]).await?;
    assert_eq!(
        (first.base_offset, first.last_offset, first.duplicate),
        (0, 2, false)
    );
    // The same batch again (a retry): its offsets, nothing written.
    let again = append(&log, "idem", &[batch(5, 0, 0, 0, 3)]).await?;
    assert_eq!(
        (again.base_offset, again.last_offset, again.duplicate),
        (0, 2, true)
    );
    let second = append(&log, "idem", &[batch(5, 0, 3, 3, 2)]).await?;
    assert_eq!(second.base_offset, 3);
    assert!(
        append(&log, "idem", &[batch(5, 0, 0, 0, 3)])
            .await?
            .duplicate
    );
    assert_eq!(log.partition("idem", 0)?.high_watermark(), 5);

    // A gap in the sequence.
    match append(&log, "idem", &[batch(5, 0, 10, 100, 1)]).await {
        Err(Error::OutOfOrderSequence {
            expected, received, ..
        }) => assert_eq!((expected, received), (5, 10)),
        other => panic!("{other:?}"),
    }
    // A new epoch starts at sequence 0.
    match append(&log, "idem", &[batch(5, 1, 5, 100, 1)]).await {
        Err(Error::OutOfOrderSequence { expected: 0, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        append(&log, "idem", &[batch(5, 1, 0, 5, 1)])
            .await?
            .base_offset,
        5
    );
    // The old epoch is fenced, even for what was a duplicate.
    for old in [batch(5, 0, 5, 100, 1), batch(5, 0, 3, 3, 2)] {
        match append(&log, "idem", &[old]).await {
            Err(Error::InvalidProducerEpoch {
                producer_epoch: 0,
                current_epoch: 1,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    // Several batches in one append are checked one after the other; if
    // one is refused, none is written.
    let two = append(&log, "idem", &[batch(9, 0, 0, 6, 2), batch(9, 0, 2, 8, 1)]).await?;
    assert_eq!((two.base_offset, two.last_offset), (6, 8));
    match append(
        &log,
        "idem",
        &[batch(9, 0, 3, 9, 1), batch(9, 0, 5, 100, 1)],
    )
    .await
    {
        Err(Error::OutOfOrderSequence { expected: 4, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        append(&log, "idem", &[batch(9, 0, 3, 9, 1)])
            .await?
            .base_offset,
        9
    );
    // Batches without a producer id are never checked.
    let plain = encode_batch(&[record(10, 200)], Compression::None)?.to_vec();
    assert_eq!(append(&log, "idem", &[plain]).await?.base_offset, 10);

    // Every record is stored exactly once, in order.
    let values = read_all_values(&log, "idem", 0).await?;
    let expected: Vec<(i64, Bytes)> = (0..11u64)
        .map(|i| (i as i64, record(i, 200).value.unwrap()))
        .collect();
    assert_eq!(values, expected);
    log.shutdown().await;
    Ok(())
}

/// Concurrent retries of the same batches land once each: a duplicate in
/// the same group as its original, or in a later one, gets its offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_are_stored_once() -> anyhow::Result<()> {
    let env = TestEnv::new(StoreKind::Local, MetadataKind::Sqlite).await?;
    let log = env.open(env.config()).await?;
    one_partition(&log, "retries").await?;
    for n in 0..50u64 {
        let sent = batch(1, 0, n as i32, n, 1);
        let appends = (0..4).map(|_| append(&log, "retries", std::slice::from_ref(&sent)));
        let outcomes = futures::future::join_all(appends).await;
        for outcome in outcomes {
            assert_eq!(outcome?.base_offset, n as i64);
        }
    }
    assert_eq!(read_all_values(&log, "retries", 0).await?.len(), 50);
    log.shutdown().await;
    Ok(())
}

/// Producer A's batches all end up in uploaded segments (their write-ahead
/// files deleted), B's partly in the active one: after a restart, retries of
/// both are still duplicates, and both continue in sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_state_survives_restarts() -> anyhow::Result<()> {
    for metadata_kind in metadata_kinds() {
        for store_kind in store_kinds() {
            let env = TestEnv::new(store_kind, metadata_kind).await?;
            let mut config = env.config();
            config.segment_bytes_max = 16 * 1024;
            let log = env.open(config.clone()).await?;
            one_partition(&log, "kept").await?;
            let mut offsets = Vec::new();
            for n in 0..100u64 {
                let outcome = append(&log, "kept", &[batch(100, 3, n as i32, n, 1)]).await?;
                offsets.push((n, outcome.base_offset));
            }
            for n in 0..130u64 {
                let outcome = append(&log, "kept", &[batch(200, 0, n as i32, 100 + n, 1)]).await?;
                offsets.push((100 + n, outcome.base_offset));
            }
            let uploaded = settled_uploads(&log, &env.store, "kept", 0).await?;
            assert!(uploaded >= 2, "{uploaded} segments uploaded");
            // Only the active write-ahead file is left, and A's batches are
            // not in it: A's state can only come from the snapshot.
            let stream_id = log.stream("kept")?.stream_id;
            let wal_dir = config.wal_dir().join(stream_id.to_string()).join("0");
            let bases: Vec<i64> = std::fs::read_dir(&wal_dir)?
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .filter_map(|name| tributary_storage::wal::parse_file_name(&name))
                .collect();
            assert!(
                bases.len() == 1 && bases[0] > offsets[99].1,
                "write-ahead files at {bases:?}"
            );
            log.shutdown().await;

            for restart in 0..2 {
                let log = env.open(config.clone()).await?;
                let context = format!("{metadata_kind:?}/{store_kind:?}, restart {restart}");
                // Retries of each one's last batches: their offsets.
                for (producer, epoch, last) in [(100, 3, 99u64), (200, 0, 229)] {
                    for n in last - 3..=last {
                        let first = if producer == 100 { 0 } else { 100 };
                        let sequence = (n - first) as i32;
                        let retry =
                            append(&log, "kept", &[batch(producer, epoch, sequence, n, 1)]).await?;
                        assert!(retry.duplicate, "{context}: producer {producer} batch {n}");
                        assert_eq!(retry.base_offset, offsets[n as usize].1, "{context}");
                    }
                }
                // Gaps are still seen, and the sequences continue.
                let gap = append(&log, "kept", &[batch(100, 3, 150, 0, 1)]).await;
                assert!(
                    matches!(gap, Err(Error::OutOfOrderSequence { expected, .. }) if expected == 100 + restart),
                    "{context}: {gap:?}"
                );
                let next = append(&log, "kept", &[batch(100, 3, 100 + restart, 230, 1)]).await?;
                assert!(!next.duplicate, "{context}");
                assert_eq!(
                    read_all_values(&log, "kept", 0).await?.len(),
                    231 + restart as usize,
                    "{context}"
                );
                log.shutdown().await;
            }
        }
    }
    Ok(())
}
