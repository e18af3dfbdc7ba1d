//! [`MetadataStore`]: the sqlx-backed store behind the log.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use tracing::info;

use super::records::{CheckpointRecord, CommittedOffset, SegmentRecord, StreamRecord};
use crate::config::StreamConfig;
use crate::error::{Error, Result};

/// The columns of the segments table, in the order `segment_from_row` reads.
macro_rules! segment_columns {
    () => {
        "stream_id, partition_id, base_offset, last_offset, size_bytes, min_timestamp, \
         max_timestamp, object_key, created_at_ms"
    };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The metadata store: a pool of connections to SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct MetadataStore {
    pool: AnyPool,
    url_for_logs: String,
}

impl MetadataStore {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and applies
    /// the migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let max_connections = if url.starts_with("sqlite:") { 4 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        let url_for_logs = redact_password(url);
        info!(url = %url_for_logs, "metadata store opened");
        Ok(Self { pool, url_for_logs })
    }

    /// Opens (creating if needed) the embedded SQLite store at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// The URL, with any password removed, for logs.
    pub fn url(&self) -> &str {
        &self.url_for_logs
    }

    /// Registers a new stream and its partitions in one transaction.
    pub async fn create_stream(&self, name: &str, config: &StreamConfig) -> Result<StreamRecord> {
        let config_json = serde_json::to_string(config)
            .map_err(|e| Error::Internal(format!("stream config does not serialize: {e}")))?;
        let created_at_ms = now_ms();
        let mut tx = self.pool.begin().await?;
        let existing = sqlx::query("SELECT name FROM streams WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if existing.is_some() {
            return Err(Error::StreamExists(name.to_string()));
        }
        let newest: Option<i64> = sqlx::query("SELECT MAX(stream_id) AS newest FROM streams")
            .fetch_one(&mut *tx)
            .await?
            .try_get("newest")?;
        let stream_id = now_us().max(newest.unwrap_or(0) + 1);
        sqlx::query(
            "INSERT INTO streams (name, stream_id, config, created_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(stream_id)
        .bind(&config_json)
        .bind(created_at_ms)
        .execute(&mut *tx)
        .await?;
        for partition in 0..config.partitions {
            sqlx::query(
                "INSERT INTO partitions (stream_id, partition_id, log_start_offset) VALUES ($1, $2, 0)",
            )
            .bind(stream_id)
            .bind(i64::from(partition))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(StreamRecord {
            name: name.to_string(),
            stream_id,
            config: config.clone(),
            created_at_ms,
        })
    }

    /// Every registered stream.
    pub async fn streams(&self) -> Result<Vec<StreamRecord>> {
        let rows =
            sqlx::query("SELECT name, stream_id, config, created_at_ms FROM streams ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(stream_from_row).collect()
    }

    /// Replaces a stream's configuration (partitions may only grow).
    pub async fn update_stream_config(&self, name: &str, config: &StreamConfig) -> Result<()> {
        let config_json = serde_json::to_string(config)
            .map_err(|e| Error::Internal(format!("stream config does not serialize: {e}")))?;
        let done = sqlx::query("UPDATE streams SET config = $1 WHERE name = $2")
            .bind(&config_json)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::UnknownStream(name.to_string()));
        }
        Ok(())
    }

    /// Grows a stream: its new configuration (with the larger partition
    /// count) and the rows of the partitions added, in one transaction.
    pub async fn add_partitions(&self, stream_id: i64, config: &StreamConfig) -> Result<()> {
        let config_json = serde_json::to_string(config)
            .map_err(|e| Error::Internal(format!("stream config does not serialize: {e}")))?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE streams SET config = $1 WHERE stream_id = $2")
            .bind(&config_json)
            .bind(stream_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Internal(format!(
                "stream id {stream_id} is not registered"
            )));
        }
        for partition in 0..config.partitions {
            sqlx::query(
                "INSERT INTO partitions (stream_id, partition_id, log_start_offset) \
                 VALUES ($1, $2, 0) ON CONFLICT (stream_id, partition_id) DO NOTHING",
            )
            .bind(stream_id)
            .bind(i64::from(partition))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a stream with its partitions, segments and committed offsets.
    /// Returns the segments that were registered, so their objects can go.
    pub async fn delete_stream(&self, name: &str) -> Result<Vec<SegmentRecord>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT stream_id FROM streams WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(Error::UnknownStream(name.to_string()));
        };
        let stream_id: i64 = row.try_get("stream_id")?;
        let segments = sqlx::query(concat!(
            "SELECT ",
            segment_columns!(),
            " FROM segments WHERE stream_id = $1"
        ))
        .bind(stream_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(segment_from_row)
        .collect::<Result<Vec<_>>>()?;
        for statement in [
            "DELETE FROM segments WHERE stream_id = $1",
            "DELETE FROM producer_snapshots WHERE stream_id = $1",
            "DELETE FROM partitions WHERE stream_id = $1",
            "DELETE FROM streams WHERE stream_id = $1",
        ] {
            sqlx::query(statement)
                .bind(stream_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM consumer_offsets WHERE stream_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(segments)
    }

    /// The first retained offset of a partition.
    pub async fn log_start_offset(&self, stream_id: i64, partition: u32) -> Result<i64> {
        let row = sqlx::query(
            "SELECT log_start_offset FROM partitions WHERE stream_id = $1 AND partition_id = $2",
        )
        .bind(stream_id)
        .bind(i64::from(partition))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(row.try_get("log_start_offset")?),
            None => Err(Error::Internal(format!(
                "partition {partition} of stream id {stream_id} is not registered"
            ))),
        }
    }

    /// Moves a partition's log start up to `offset` (never down), as a
    /// Kafka DeleteRecords does; the segments below stay registered until the
    /// retention pass deletes them with [`Self::advance_log_start`].
    pub async fn raise_log_start_offset(
        &self,
        stream_id: i64,
        partition: u32,
        offset: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE partitions SET log_start_offset = $1 \
             WHERE stream_id = $2 AND partition_id = $3 AND log_start_offset < $4",
        )
        .bind(offset)
        .bind(stream_id)
        .bind(i64::from(partition))
        .bind(offset)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Makes sure a partition row exists (after partitions were added).
    pub async fn ensure_partition(&self, stream_id: i64, partition: u32) -> Result<()> {
        sqlx::query(
            "INSERT INTO partitions (stream_id, partition_id, log_start_offset) VALUES ($1, $2, 0) \
             ON CONFLICT (stream_id, partition_id) DO NOTHING",
        )
        .bind(stream_id)
        .bind(i64::from(partition))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Registers a sealed segment. Registering the same segment again is a
    /// no-op, so an upload retried after an ambiguous failure is harmless.
    pub async fn register_segment(&self, segment: &SegmentRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO segments (stream_id, partition_id, base_offset, last_offset, size_bytes, \
             min_timestamp, max_timestamp, object_key, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (stream_id, partition_id, base_offset) DO NOTHING",
        )
        .bind(segment.stream_id)
        .bind(i64::from(segment.partition))
        .bind(segment.base_offset)
        .bind(segment.last_offset)
        .bind(segment.size_bytes as i64)
        .bind(segment.min_timestamp)
        .bind(segment.max_timestamp)
        .bind(&segment.object_key)
        .bind(segment.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Registers a sealed segment together with `producers`, the
    /// partition's producer state at its end, in one transaction: recovery
    /// starts from that state and replays only the write-ahead segments
    /// after it. A retried registration changes nothing; an older segment's
    /// state never replaces a newer one's.
    pub async fn register_segment_with_producers(
        &self,
        segment: &SegmentRecord,
        producers: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO segments (stream_id, partition_id, base_offset, last_offset, size_bytes, \
             min_timestamp, max_timestamp, object_key, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (stream_id, partition_id, base_offset) DO NOTHING",
        )
        .bind(segment.stream_id)
        .bind(i64::from(segment.partition))
        .bind(segment.base_offset)
        .bind(segment.last_offset)
        .bind(segment.size_bytes as i64)
        .bind(segment.min_timestamp)
        .bind(segment.max_timestamp)
        .bind(&segment.object_key)
        .bind(segment.created_at_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO producer_snapshots (stream_id, partition_id, end_offset, state) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (stream_id, partition_id) DO UPDATE SET \
             end_offset = excluded.end_offset, state = excluded.state \
             WHERE producer_snapshots.end_offset < excluded.end_offset",
        )
        .bind(segment.stream_id)
        .bind(i64::from(segment.partition))
        .bind(segment.last_offset + 1)
        .bind(producers)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The producer state registered with a partition's newest segment:
    /// the offset it holds up to (exclusive) and the state.
    pub async fn producer_snapshot(
        &self,
        stream_id: i64,
        partition: u32,
    ) -> Result<Option<(i64, String)>> {
        let row = sqlx::query(
            "SELECT end_offset, state FROM producer_snapshots \
             WHERE stream_id = $1 AND partition_id = $2",
        )
        .bind(stream_id)
        .bind(i64::from(partition))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((row.try_get("end_offset")?, row.try_get("state")?)))
            .transpose()
    }

    /// A producer id never handed out before, on this node or any other
    /// sharing the store, across restarts (InitProducerId).
    pub async fn next_producer_id(&self) -> Result<i64> {
        let row = sqlx::query(
            "UPDATE counters SET value = value + 1 WHERE name = 'producer_id' RETURNING value",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("value")?)
    }

    /// The registered segments of a partition, oldest first.
    pub async fn segments(&self, stream_id: i64, partition: u32) -> Result<Vec<SegmentRecord>> {
        sqlx::query(concat!(
            "SELECT ",
            segment_columns!(),
            " FROM segments WHERE stream_id = $1 AND partition_id = $2 ORDER BY base_offset"
        ))
        .bind(stream_id)
        .bind(i64::from(partition))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(segment_from_row)
        .collect()
    }

    /// Moves a partition's log start to `new_log_start_offset` and forgets
    /// the segments wholly below it, in one transaction.
    pub async fn advance_log_start(
        &self,
        stream_id: i64,
        partition: u32,
        new_log_start_offset: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE partitions SET log_start_offset = $1 \
             WHERE stream_id = $2 AND partition_id = $3 AND log_start_offset < $4",
        )
        .bind(new_log_start_offset)
        .bind(stream_id)
        .bind(i64::from(partition))
        .bind(new_log_start_offset)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM segments WHERE stream_id = $1 AND partition_id = $2 AND last_offset < $3",
        )
        .bind(stream_id)
        .bind(i64::from(partition))
        .bind(new_log_start_offset)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a consumer group's committed offset for a partition.
    pub async fn commit_offset(&self, offset: &CommittedOffset) -> Result<()> {
        sqlx::query(
            "INSERT INTO consumer_offsets (group_id, stream_name, partition_id, committed_offset, \
             metadata, committed_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (group_id, stream_name, partition_id) DO UPDATE SET \
             committed_offset = excluded.committed_offset, metadata = excluded.metadata, \
             committed_at_ms = excluded.committed_at_ms",
        )
        .bind(&offset.group_id)
        .bind(&offset.stream)
        .bind(i64::from(offset.partition))
        .bind(offset.offset)
        .bind(offset.metadata.as_deref())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every offset a group committed.
    pub async fn committed_offsets(&self, group_id: &str) -> Result<Vec<CommittedOffset>> {
        let rows = sqlx::query(
            "SELECT group_id, stream_name, partition_id, committed_offset, metadata \
             FROM consumer_offsets WHERE group_id = $1 ORDER BY stream_name, partition_id",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(committed_offset_from).collect()
    }

    /// Every offset every group committed, by group, stream and partition.
    pub async fn all_committed_offsets(&self) -> Result<Vec<CommittedOffset>> {
        let rows = sqlx::query(
            "SELECT group_id, stream_name, partition_id, committed_offset, metadata \
             FROM consumer_offsets ORDER BY group_id, stream_name, partition_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(committed_offset_from).collect()
    }

    /// Forgets every offset a group committed.
    pub async fn delete_group(&self, group_id: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM consumer_offsets WHERE group_id = $1")
            .bind(group_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Registers a job's checkpoint, once its state file is in the object
    /// store.
    pub async fn register_checkpoint(&self, checkpoint: &CheckpointRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO job_checkpoints (job, epoch, object_path, manifest, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&checkpoint.job)
        .bind(checkpoint.epoch)
        .bind(&checkpoint.object_path)
        .bind(&checkpoint.manifest)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A job's checkpoints, newest first.
    pub async fn checkpoints(&self, job: &str) -> Result<Vec<CheckpointRecord>> {
        let rows = sqlx::query(
            "SELECT job, epoch, object_path, manifest FROM job_checkpoints \
             WHERE job = $1 ORDER BY epoch DESC",
        )
        .bind(job)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CheckpointRecord {
                    job: row.try_get("job")?,
                    epoch: row.try_get("epoch")?,
                    object_path: row.try_get("object_path")?,
                    manifest: row.try_get("manifest")?,
                })
            })
            .collect()
    }

    /// Forgets one checkpoint (its file is deleted by the caller).
    pub async fn delete_checkpoint(&self, job: &str, epoch: i64) -> Result<()> {
        sqlx::query("DELETE FROM job_checkpoints WHERE job = $1 AND epoch = $2")
            .bind(job)
            .bind(epoch)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn committed_offset_from(row: &AnyRow) -> Result<CommittedOffset> {
    Ok(CommittedOffset {
        group_id: row.try_get("group_id")?,
        stream: row.try_get("stream_name")?,
        partition: partition_from(row.try_get("partition_id")?)?,
        offset: row.try_get("committed_offset")?,
        metadata: row.try_get("metadata")?,
    })
}

fn stream_from_row(row: &AnyRow) -> Result<StreamRecord> {
    let name: String = row.try_get("name")?;
    let config_json: String = row.try_get("config")?;
    let config = serde_json::from_str(&config_json).map_err(|e| {
        Error::corrupt(
            format!("metadata row of stream {name}"),
            format!("config is not valid JSON: {e}"),
        )
    })?;
    Ok(StreamRecord {
        name,
        stream_id: row.try_get("stream_id")?,
        config,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn segment_from_row(row: &AnyRow) -> Result<SegmentRecord> {
    let size_bytes: i64 = row.try_get("size_bytes")?;
    Ok(SegmentRecord {
        stream_id: row.try_get("stream_id")?,
        partition: partition_from(row.try_get("partition_id")?)?,
        base_offset: row.try_get("base_offset")?,
        last_offset: row.try_get("last_offset")?,
        size_bytes: u64::try_from(size_bytes)
            .map_err(|_| Error::corrupt("segments table", "negative segment size"))?,
        min_timestamp: row.try_get("min_timestamp")?,
        max_timestamp: row.try_get("max_timestamp")?,
        object_key: row.try_get("object_key")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn partition_from(value: i64) -> Result<u32> {
    u32::try_from(value)
        .map_err(|_| Error::corrupt("metadata store", format!("bad partition {value}")))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Microseconds since the Unix epoch: stream ids grow with time, so a name
/// dropped and created again never reuses an id (and so an object key).
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("postgres://u:secret@localhost:5432/db"),
            "postgres://u:***@localhost:5432/db"
        );
        assert_eq!(redact_password("sqlite://x.db"), "sqlite://x.db");
    }
}
