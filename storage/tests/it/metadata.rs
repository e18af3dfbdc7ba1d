//! The metadata store on SQLite, and on PostgreSQL when one is configured
//! (`.ci/run` starts one and sets TRIBUTARY_TEST_POSTGRES_URL).

use std::time::Duration;

use tributary_storage::metadata::{CommittedOffset, SegmentRecord};
use tributary_storage::{Error, StreamConfig};

use crate::support::{
    StoreKind, TestEnv, metadata_kinds, read_all_values, single_record_batch, wait_for,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_store_contract() -> anyhow::Result<()> {
    for kind in metadata_kinds() {
        let env = TestEnv::new(StoreKind::Local, kind).await?;
        let store = env.metadata().await?;
        let config = StreamConfig {
            partitions: 2,
            retention_ms: Some(5),
            ..Default::default()
        };
        let created = store.create_stream("orders", &config).await?;
        assert!(
            matches!(
                store.create_stream("orders", &config).await,
                Err(Error::StreamExists(_))
            ),
            "{kind:?}"
        );
        let other = store
            .create_stream("clicks", &StreamConfig::default())
            .await?;
        assert_ne!(created.stream_id, other.stream_id);
        let streams = store.streams().await?;
        assert_eq!(
            streams.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["clicks", "orders"]
        );
        assert_eq!(streams[1].config, config);

        let segment = |base: i64, last: i64| SegmentRecord {
            stream_id: created.stream_id,
            partition: 1,
            base_offset: base,
            last_offset: last,
            size_bytes: 100,
            min_timestamp: 1,
            max_timestamp: 2,
            object_key: format!("k/{base}"),
            created_at_ms: 3,
        };
        store.register_segment(&segment(0, 9)).await?;
        store.register_segment(&segment(0, 9)).await?; // retried: no second row
        store.register_segment(&segment(10, 19)).await?;
        assert_eq!(
            store.segments(created.stream_id, 1).await?,
            vec![segment(0, 9), segment(10, 19)],
            "{kind:?}"
        );
        assert!(store.segments(created.stream_id, 0).await?.is_empty());

        store.advance_log_start(created.stream_id, 1, 10).await?;
        assert_eq!(store.log_start_offset(created.stream_id, 1).await?, 10);
        assert_eq!(
            store.segments(created.stream_id, 1).await?,
            vec![segment(10, 19)]
        );
        store.advance_log_start(created.stream_id, 1, 5).await?; // never moves back
        assert_eq!(store.log_start_offset(created.stream_id, 1).await?, 10);

        let offset = |o: i64| CommittedOffset {
            group_id: "g".into(),
            stream: "orders".into(),
            partition: 1,
            offset: o,
            metadata: Some("m".into()),
        };
        store.commit_offset(&offset(5)).await?;
        store.commit_offset(&offset(7)).await?;
        assert_eq!(store.committed_offsets("g").await?, vec![offset(7)]);

        let mut altered = config.clone();
        altered.retention_bytes = Some(1 << 20);
        store.update_stream_config("orders", &altered).await?;
        assert!(matches!(
            store.update_stream_config("nope", &altered).await,
            Err(Error::UnknownStream(_))
        ));

        // Migrations are idempotent: a second connection sees the same data.
        store.close().await;
        let store = env.metadata().await?;
        assert_eq!(store.streams().await?[1].config, altered);
        let gone = store.delete_stream("orders").await?;
        assert_eq!(gone, vec![segment(10, 19)]);
        assert!(
            store.committed_offsets("g").await?.is_empty(),
            "offsets of a dropped stream go too"
        );
        assert!(matches!(
            store.delete_stream("orders").await,
            Err(Error::UnknownStream(_))
        ));
        assert_eq!(store.delete_group("g").await?, 0);
        store.close().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_recovers_from_every_metadata_store() -> anyhow::Result<()> {
    for kind in metadata_kinds() {
        for store_kind in crate::support::store_kinds() {
            let env = TestEnv::new(store_kind, kind).await?;
            let mut config = env.config();
            config.segment_bytes_max = 8 * 1024;
            let log = env.open(config.clone()).await?;
            log.create_stream(
                "m",
                StreamConfig {
                    partitions: 2,
                    ..Default::default()
                },
            )
            .await?;
            for i in 0..200u64 {
                log.append("m", (i % 2) as u32, single_record_batch(i, 300))
                    .await?;
            }
            let p = log.partition("m", 0)?;
            wait_for("uploads", Duration::from_secs(30), || {
                p.segment_counts().0 == 1
            })
            .await?;
            log.shutdown().await;
            let log = env.open(config).await?;
            for partition in 0..2 {
                let values = read_all_values(&log, "m", partition).await?;
                assert_eq!(
                    values.len(),
                    100,
                    "{kind:?}/{store_kind:?} partition {partition}"
                );
            }
            log.shutdown().await;
        }
    }
    Ok(())
}
