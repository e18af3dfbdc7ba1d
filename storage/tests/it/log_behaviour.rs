//! Appends, group commit under concurrency, sealing, reads across segments
//! and from the object store, timestamps and retention — on every backend.

use std::collections::HashSet;
use std::time::Duration;

use tributary_storage::{Error, StreamConfig, TimestampType};

use crate::support::{
    MetadataKind, StoreKind, TestEnv, object_count, read_all_values, record, settled_uploads,
    single_record_batch, store_kinds, stored_form, wait_for,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_producers_get_dense_unique_offsets() -> anyhow::Result<()> {
    for kind in store_kinds() {
        let env = TestEnv::new(kind, MetadataKind::Sqlite).await?;
        let log = env.open(env.config()).await?;
        log.create_stream("c", StreamConfig::default()).await?;
        let per_producer = 50u64;
        let mut tasks = Vec::new();
        for producer in 0..100u64 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut offsets = Vec::new();
                for n in 0..per_producer {
                    let i = producer * per_producer + n;
                    let out = log.append("c", 0, single_record_batch(i, 200)).await?;
                    offsets.push((out.base_offset, i));
                }
                anyhow::Ok(offsets)
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            let offsets = task.await??;
            // Each producer's own appends come back in increasing order.
            assert!(offsets.windows(2).all(|w| w[0].0 < w[1].0));
            all.extend(offsets);
        }
        all.sort();
        let total = 100 * per_producer;
        assert_eq!(all.len() as u64, total);
        assert!(
            all.iter().enumerate().all(|(n, (o, _))| *o == n as i64),
            "offsets are dense from 0"
        );
        let read = read_all_values(&log, "c", 0).await?;
        assert_eq!(read.len() as u64, total);
        let expected: HashSet<_> = all
            .iter()
            .map(|(o, i)| (*o, record(*i, 200).value.unwrap()))
            .collect();
        let got: HashSet<_> = read.into_iter().collect();
        assert_eq!(
            got, expected,
            "every record exactly once, at the offset its append returned"
        );
        log.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_seal_upload_and_read_back_from_cache_and_object_store() -> anyhow::Result<()> {
    for kind in store_kinds() {
        let env = TestEnv::new(kind, MetadataKind::Sqlite).await?;
        let mut config = env.config();
        config.segment_bytes_max = 16 * 1024;
        let log = env.open(config).await?;
        log.create_stream("s", StreamConfig::default()).await?;
        let mut batches = Vec::new();
        for i in 0..400u64 {
            let batch = single_record_batch(i, 500);
            let out = log.append("s", 0, batch.clone()).await?;
            assert_eq!(out.base_offset, i as i64);
            batches.push(batch);
        }
        let uploaded = settled_uploads(&log, &env.store, "s", 0).await?;
        assert!(
            uploaded >= 10,
            "{kind:?}: 400 x ~580 B in 16 KiB segments seals >= 10, got {uploaded}"
        );

        // Byte-identical reads, each crossing segment boundaries.
        let check = |label: &'static str| {
            let log = log.clone();
            let batches = batches.clone();
            async move {
                let mut offset = 0i64;
                while offset < 400 {
                    let read = log.read("s", 0, offset, 40 * 1024).await?;
                    assert!(read.batches.len() > 1, "{label}: reads span batches");
                    for bytes in read.batches {
                        assert_eq!(
                            &bytes[..],
                            &stored_form(&batches[offset as usize], offset)[..],
                            "{label}: offset {offset}"
                        );
                        offset += 1;
                    }
                }
                anyhow::Ok(())
            }
        };
        check("from cache").await?;
        if kind == StoreKind::S3 {
            assert!(log.cache_bytes() > 0, "remote segments are cached");
        } else {
            assert_eq!(log.cache_bytes(), 0, "a local store needs no cache");
        }
        log.clear_cache();
        assert_eq!(log.cache_bytes(), 0);
        check("from the object store").await?;

        // Reading past the end is empty; beyond it is out of range.
        assert!(log.read("s", 0, 400, 1024).await?.batches.is_empty());
        assert!(matches!(
            log.read("s", 0, 401, 1024).await,
            Err(Error::OffsetOutOfRange { .. })
        ));
        log.shutdown().await;

        // After a restart the same bytes come back from the uploaded segments.
        let log = env.open(env.config()).await?;
        let values = read_all_values(&log, "s", 0).await?;
        assert_eq!(values.len(), 400);
        assert_eq!(
            log.append("s", 0, single_record_batch(400, 10))
                .await?
                .base_offset,
            400
        );
        log.shutdown().await;
    }
    Ok(())
}

/// The length of the one write-ahead file of partition 0 of `stream_id`.
fn active_wal_len(env: &TestEnv, stream_id: i64) -> anyhow::Result<u64> {
    let dir = env
        .data_dir()
        .join("wal")
        .join(stream_id.to_string())
        .join("0");
    let files: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    anyhow::ensure!(
        files.len() == 1,
        "one write-ahead file, got {}",
        files.len()
    );
    Ok(files[0].metadata()?.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_after_large_groups_are_written_directly_and_read_back() -> anyhow::Result<()> {
    const VALUE_BYTES: usize = 5 * 1024 * 1024 / 2;
    for kind in store_kinds() {
        let env = TestEnv::new(kind, MetadataKind::Sqlite).await?;
        let mut config = env.config();
        config.segment_bytes_max = 4 * 1024 * 1024;
        let log = env.open(config.clone()).await?;
        log.create_stream("big", StreamConfig::default()).await?;
        let stream_id = log.stream("big")?.stream_id;
        let batch_len = single_record_batch(0, VALUE_BYTES).len() as u64;
        assert_ne!(batch_len % 4096, 0, "a batch does not end on a block");
        // Two appends of 2.5 MiB fill each 4 MiB segment, each written
        // directly: the first as its first group is big, the next ones as
        // the groups of the one before were.
        for i in 0..7u64 {
            log.append("big", 0, single_record_batch(i, VALUE_BYTES))
                .await?;
        }
        settled_uploads(&log, &env.store, "big", 0).await?;
        let active_len = active_wal_len(&env, stream_id)?;
        assert_eq!(
            active_len % 4096,
            0,
            "{kind:?}: the active segment is written directly, so padded to a block"
        );
        assert!(active_len > batch_len);

        let expected: Vec<(i64, Vec<u8>)> = (0..7u64)
            .map(|i| (i as i64, record(i, VALUE_BYTES).value.unwrap().to_vec()))
            .collect();
        let values = |read: Vec<(i64, bytes::Bytes)>| -> Vec<(i64, Vec<u8>)> {
            read.into_iter().map(|(o, v)| (o, v.to_vec())).collect()
        };
        assert_eq!(values(read_all_values(&log, "big", 0).await?), expected);
        log.clear_cache();
        assert_eq!(values(read_all_values(&log, "big", 0).await?), expected);
        log.shutdown().await;

        // After a restart the padding is gone and appends go on after it.
        let log = env.open(config).await?;
        assert_eq!(active_wal_len(&env, stream_id)?, batch_len);
        assert_eq!(values(read_all_values(&log, "big", 0).await?), expected);
        let next = log.append("big", 0, single_record_batch(7, 10)).await?;
        assert_eq!(next.base_offset, 7);
        assert_eq!(read_all_values(&log, "big", 0).await?.len(), 8);
        log.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_store_s_segments_are_read_as_files() -> anyhow::Result<()> {
    // The log is handed a store that holds nothing: a local root makes it
    // link its segments under the root, and it must read them there.
    let env = TestEnv::new(StoreKind::Local, MetadataKind::Sqlite).await?;
    let empty: std::sync::Arc<dyn object_store::ObjectStore> =
        std::sync::Arc::new(object_store::memory::InMemory::new());
    let log = env.open_with_store(env.config(), empty.clone()).await?;
    log.create_stream("files", StreamConfig::default()).await?;
    for i in 0..40u64 {
        log.append("files", 0, single_record_batch(i, 10_000))
            .await?;
    }
    let uploaded = settled_uploads(&log, &env.store, "files", 0).await?;
    assert!(uploaded >= 4, "{uploaded} segments sealed");
    log.clear_cache();
    let read = read_all_values(&log, "files", 0).await?;
    let expected: Vec<(i64, bytes::Bytes)> = (0..40u64)
        .map(|i| (i as i64, record(i, 10_000).value.unwrap()))
        .collect();
    assert_eq!(read, expected);
    assert_eq!(object_count(&empty).await?, 0);
    log.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_is_written_directly_after_a_segment_of_large_groups() -> anyhow::Result<()> {
    let env = TestEnv::new(StoreKind::Local, MetadataKind::Sqlite).await?;
    let mut config = env.config();
    config.segment_bytes_max = 4 * 1024 * 1024;
    let log = env.open(config).await?;
    log.create_stream("mixed", StreamConfig::default()).await?;
    let stream_id = log.stream("mixed")?.stream_id;
    let big = 5 * 1024 * 1024 / 2;
    // Small appends fill the first segment (buffered); it seals right
    // after the one that takes it past 4 MiB.
    let small_len = single_record_batch(0, 50 * 1024).len() as u64;
    let i = (4 * 1024 * 1024u64).div_ceil(small_len);
    for n in 0..i {
        log.append("mixed", 0, single_record_batch(n, 50 * 1024))
            .await?;
    }
    settled_uploads(&log, &env.store, "mixed", 0).await?;
    // A large first group does not make this segment direct: the groups
    // of the one before were small.
    let first_big = single_record_batch(i, big);
    assert_ne!(first_big.len() % 4096, 0, "a batch does not end on a block");
    log.append("mixed", 0, first_big.clone()).await?;
    assert_eq!(
        active_wal_len(&env, stream_id)?,
        first_big.len() as u64,
        "buffered"
    );
    // It seals with the next one; its groups were large, so the next
    // segment is direct.
    log.append("mixed", 0, single_record_batch(i + 1, big))
        .await?;
    settled_uploads(&log, &env.store, "mixed", 0).await?;
    log.append("mixed", 0, single_record_batch(i + 2, 10))
        .await?;
    assert_eq!(active_wal_len(&env, stream_id)? % 4096, 0, "direct, padded");
    assert_eq!(read_all_values(&log, "mixed", 0).await?.len() as u64, i + 3);
    log.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_seal_by_age() -> anyhow::Result<()> {
    let env = TestEnv::new(crate::support::StoreKind::Local, MetadataKind::Sqlite).await?;
    let mut config = env.config();
    config.segment_age_max_ms = 200;
    let log = env.open(config).await?;
    log.create_stream("aged", StreamConfig::default()).await?;
    log.append("aged", 0, single_record_batch(0, 10)).await?;
    let partition = log.partition("aged", 0)?;
    wait_for("age seal and upload", Duration::from_secs(10), || {
        partition.segment_counts().1 == 1
    })
    .await?;
    assert_eq!(settled_uploads(&log, &env.store, "aged", 0).await?, 1);
    log.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_by_timestamp() -> anyhow::Result<()> {
    let env = TestEnv::new(crate::support::StoreKind::Local, MetadataKind::Sqlite).await?;
    let mut config = env.config();
    config.segment_bytes_max = 4 * 1024;
    let log = env.open(config).await?;
    log.create_stream("t", StreamConfig::default()).await?;
    for i in 0..100u64 {
        log.append("t", 0, single_record_batch(i, 300)).await?;
    }
    let partition = log.partition("t", 0)?;
    wait_for("uploads", Duration::from_secs(10), || {
        partition.segment_counts().0 == 1
    })
    .await?;
    let base = 1_700_000_000_000i64;
    assert_eq!(log.offset_for_timestamp("t", 0, 0).await?, Some(0));
    assert_eq!(log.offset_for_timestamp("t", 0, base + 57).await?, Some(57));
    assert_eq!(log.offset_for_timestamp("t", 0, base + 99).await?, Some(99));
    assert_eq!(log.offset_for_timestamp("t", 0, base + 100).await?, None);

    // LogAppendTime streams stamp the append time on every batch.
    log.create_stream(
        "la",
        StreamConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..Default::default()
        },
    )
    .await?;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let out = log.append("la", 0, single_record_batch(1, 10)).await?;
    assert!(out.log_append_time_ms >= before);
    let read = log.read("la", 0, 0, 1024).await?;
    let header = tributary_storage::batch::BatchHeader::parse(&read.batches[0])?;
    assert!(header.is_log_append_time());
    assert_eq!(header.max_timestamp, out.log_append_time_ms);
    log.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_time_and_size() -> anyhow::Result<()> {
    for kind in store_kinds() {
        let env = TestEnv::new(kind, MetadataKind::Sqlite).await?;
        let mut config = env.config();
        config.segment_bytes_max = 8 * 1024;
        let log = env.open(config).await?;

        // By size: keep about 20 KiB.
        log.create_stream(
            "by_size",
            StreamConfig {
                retention_bytes: Some(20 * 1024),
                ..Default::default()
            },
        )
        .await?;
        for i in 0..200u64 {
            log.append("by_size", 0, single_record_batch(i, 400))
                .await?;
        }
        let p = log.partition("by_size", 0)?;
        wait_for("uploads", Duration::from_secs(30), || {
            p.segment_counts().0 == 1
        })
        .await?;
        let objects_before = object_count(&env.store).await?;
        log.enforce_retention().await?;
        let start = p.log_start_offset();
        assert!(start > 0, "{kind:?}: size retention moved the log start");
        assert!(
            p.size_bytes() <= 20 * 1024 + 8 * 1024 + 1024,
            "{kind:?}: size bound kept, got {}",
            p.size_bytes()
        );
        assert!(
            object_count(&env.store).await? < objects_before,
            "{kind:?}: objects deleted"
        );
        let values = read_all_values(&log, "by_size", 0).await?;
        assert_eq!(values.first().map(|v| v.0), Some(start));
        assert_eq!(
            values.len() as i64,
            200 - start,
            "{kind:?}: retained offsets unaffected"
        );
        match log.read("by_size", 0, start - 1, 1024).await {
            Err(Error::OffsetOutOfRange {
                log_start_offset, ..
            }) => assert_eq!(log_start_offset, start),
            other => panic!("{kind:?}: expected out of range below the log start, got {other:?}"),
        }

        // By time: records stamped in 2023 are older than one day.
        log.create_stream(
            "by_time",
            StreamConfig {
                retention_ms: Some(86_400_000),
                ..Default::default()
            },
        )
        .await?;
        for i in 0..100u64 {
            log.append("by_time", 0, single_record_batch(i, 400))
                .await?;
        }
        let p = log.partition("by_time", 0)?;
        wait_for("uploads", Duration::from_secs(30), || {
            p.segment_counts().0 == 1
        })
        .await?;
        let (_, uploaded) = p.segment_counts();
        assert!(uploaded > 0);
        log.enforce_retention().await?;
        assert_eq!(
            p.segment_counts().1,
            0,
            "{kind:?}: every uploaded segment was too old"
        );
        let start = p.log_start_offset();
        assert!(start > 0);
        assert_eq!(
            read_all_values(&log, "by_time", 0).await?.len() as i64,
            100 - start
        );
        log.shutdown().await;

        // The log start survives a restart.
        let log = env.open(env.config()).await?;
        assert_eq!(log.partition("by_time", 0)?.log_start_offset(), start);
        log.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_created_listed_altered_and_dropped() -> anyhow::Result<()> {
    let env = TestEnv::new(crate::support::StoreKind::Local, MetadataKind::Sqlite).await?;
    let log = env.open(env.config()).await?;
    log.create_stream(
        "a",
        StreamConfig {
            partitions: 3,
            ..Default::default()
        },
    )
    .await?;
    assert!(matches!(
        log.create_stream("a", StreamConfig::default()).await,
        Err(Error::StreamExists(_))
    ));
    assert!(matches!(
        log.create_stream("bad/name", StreamConfig::default()).await,
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        log.append("a", 3, single_record_batch(0, 1)).await,
        Err(Error::UnknownPartition { .. })
    ));
    assert!(matches!(
        log.append("nope", 0, single_record_batch(0, 1)).await,
        Err(Error::UnknownStream(_))
    ));
    assert!(matches!(
        log.append("a", 0, bytes::Bytes::from_static(b"not a batch"))
            .await,
        Err(Error::InvalidBatch { .. })
    ));
    for p in 0..3 {
        log.append("a", p, single_record_batch(u64::from(p), 10))
            .await?;
    }
    let altered = log
        .alter_stream(
            "a",
            StreamConfig {
                partitions: 3,
                retention_ms: Some(1000),
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(altered.config.retention_ms, Some(1000));
    log.shutdown().await;

    let log = env.open(env.config()).await?;
    assert_eq!(log.streams().len(), 1);
    assert_eq!(log.stream("a")?.config.retention_ms, Some(1000));
    assert_eq!(log.partition("a", 2)?.high_watermark(), 1);
    log.delete_stream("a").await?;
    assert!(log.streams().is_empty());
    log.create_stream("a", StreamConfig::default()).await?;
    assert_eq!(
        log.partition("a", 0)?.high_watermark(),
        0,
        "a recreated stream starts empty"
    );
    log.shutdown().await;
    Ok(())
}
