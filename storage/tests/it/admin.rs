//! What Kafka's admin APIs ask of the log: partitions added to a stream,
//! and a log start offset moved up by DeleteRecords. On every metadata
//! store and object store, across restarts.

use std::time::Duration;

use tributary_storage::{Error, StreamConfig};

use crate::support::{
    TestEnv, metadata_kinds, object_count, read_all_values, settled_uploads, single_record_batch,
    store_kinds,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_partitions_take_appends_and_survive_a_restart() -> anyhow::Result<()> {
    for metadata in metadata_kinds() {
        for store in store_kinds() {
            let env = TestEnv::new(store, metadata).await?;
            let log = env.open(env.config()).await?;
            log.create_stream(
                "grow",
                StreamConfig {
                    partitions: 2,
                    retention_ms: Some(3_600_000),
                    ..Default::default()
                },
            )
            .await?;
            log.append("grow", 0, single_record_batch(0, 100)).await?;
            assert!(matches!(
                log.append("grow", 3, single_record_batch(1, 100)).await,
                Err(Error::UnknownPartition { partitions: 2, .. })
            ));

            let grown = log.add_partitions("grow", 4).await?;
            assert_eq!(grown.config.partitions, 4);
            assert_eq!(
                grown.config.retention_ms,
                Some(3_600_000),
                "other settings kept"
            );
            assert_eq!(log.stream("grow")?.config.partitions, 4);
            let out = log.append("grow", 3, single_record_batch(2, 100)).await?;
            assert_eq!(out.base_offset, 0, "a new partition starts empty");
            // Never smaller, never the same.
            for count in [1, 4] {
                assert!(
                    matches!(
                        log.add_partitions("grow", count).await,
                        Err(Error::InvalidConfig(_))
                    ),
                    "{metadata:?}/{store:?}: {count} partitions"
                );
            }
            assert!(matches!(
                log.add_partitions("nope", 4).await,
                Err(Error::UnknownStream(_))
            ));
            log.shutdown().await;

            let log = env.open(env.config()).await?;
            assert_eq!(log.stream("grow")?.config.partitions, 4);
            let counts: Vec<usize> = {
                let mut counts = Vec::new();
                for partition in 0..4 {
                    counts.push(read_all_values(&log, "grow", partition).await?.len());
                }
                counts
            };
            assert_eq!(counts, [1, 0, 0, 1], "{metadata:?}/{store:?}");
            log.shutdown().await;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_records_stay_deleted_and_their_segments_go() -> anyhow::Result<()> {
    for metadata in metadata_kinds() {
        for store in store_kinds() {
            let env = TestEnv::new(store, metadata).await?;
            let mut config = env.config();
            config.segment_bytes_max = 8 * 1024;
            let log = env.open(config.clone()).await?;
            log.create_stream("d", StreamConfig::default()).await?;
            for i in 0..200u64 {
                log.append("d", 0, single_record_batch(i, 300)).await?;
            }
            let uploaded = settled_uploads(&log, &env.store, "d", 0).await?;
            assert!(uploaded >= 4, "{uploaded} segments uploaded");
            let p = log.partition("d", 0)?;
            let stream_id = log.stream("d")?.stream_id;
            let segments = log.metadata().segments(stream_id, 0).await?;
            // An offset inside the third segment.
            let cut = segments[2].base_offset + 1;

            assert_eq!(p.delete_records_before(cut).await?, cut);
            assert_eq!(p.log_start_offset(), cut);
            assert!(matches!(
                p.read(cut - 1, 1024).await,
                Err(Error::OffsetOutOfRange { log_start_offset, .. }) if log_start_offset == cut
            ));
            let values = read_all_values(&log, "d", 0).await?;
            assert_eq!(values.first().map(|v| v.0), Some(cut));
            assert_eq!(values.len() as i64, 200 - cut);
            // Lower changes nothing; beyond the high watermark is refused.
            assert_eq!(p.delete_records_before(1).await?, cut);
            assert!(matches!(
                p.delete_records_before(201).await,
                Err(Error::OffsetOutOfRange { .. })
            ));

            // The retention pass deletes the two segments wholly below,
            // keeps the one holding the new start.
            let objects_before = object_count(&env.store).await?;
            log.enforce_retention().await?;
            assert_eq!(object_count(&env.store).await?, objects_before - 2);
            let left = log.metadata().segments(stream_id, 0).await?;
            assert_eq!(
                left.first().map(|s| s.base_offset),
                Some(segments[2].base_offset)
            );
            assert_eq!(p.log_start_offset(), cut);
            log.shutdown().await;

            let log = env.open(config.clone()).await?;
            let p = log.partition("d", 0)?;
            assert_eq!(p.log_start_offset(), cut, "{metadata:?}/{store:?}");
            assert_eq!(read_all_values(&log, "d", 0).await?.len() as i64, 200 - cut);

            // Everything, inside the active write-ahead segment too.
            let end = p.high_watermark();
            assert_eq!(p.delete_records_before(end).await?, end);
            assert!(read_all_values(&log, "d", 0).await?.is_empty());
            log.shutdown().await;
            let log = env.open(config.clone()).await?;
            let p = log.partition("d", 0)?;
            assert_eq!((p.log_start_offset(), p.high_watermark()), (end, end));
            let out = log.append("d", 0, single_record_batch(500, 300)).await?;
            assert_eq!(out.base_offset, end);
            log.shutdown().await;
        }
    }
    Ok(())
}

/// A log start inside a write-ahead segment that was never uploaded: the
/// records after it are kept across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_start_inside_the_write_ahead_segment_keeps_the_rest() -> anyhow::Result<()> {
    for metadata in metadata_kinds() {
        let env = TestEnv::new(crate::support::StoreKind::Local, metadata).await?;
        let log = env.open(env.config()).await?;
        log.create_stream("w", StreamConfig::default()).await?;
        for i in 0..10u64 {
            log.append("w", 0, single_record_batch(i, 100)).await?;
        }
        let p = log.partition("w", 0)?;
        assert_eq!(p.segment_counts(), (1, 0), "nothing sealed");
        assert_eq!(p.delete_records_before(4).await?, 4);
        log.enforce_retention().await?;
        log.shutdown().await;

        let log = env.open(env.config()).await?;
        let values = read_all_values(&log, "w", 0).await?;
        let offsets: Vec<i64> = values.iter().map(|v| v.0).collect();
        assert_eq!(offsets, (4..10).collect::<Vec<_>>(), "{metadata:?}");
        tokio::time::timeout(
            Duration::from_secs(30),
            log.append("w", 0, single_record_batch(10, 100)),
        )
        .await??;
        assert_eq!(log.partition("w", 0)?.high_watermark(), 11);
        log.shutdown().await;
    }
    Ok(())
}
