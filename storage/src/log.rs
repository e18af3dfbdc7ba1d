//! [`Log`]: every stream's partitions on this node, opened from the metadata
//! store and the data dir, with retention running in the background.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::cache::SegmentCache;
use crate::config::{LogConfig, StreamConfig, validate_stream_name};
use crate::error::{Error, Result};
use crate::metadata::store::now_ms;
use crate::metadata::{MetadataStore, StreamRecord};
use crate::objects;
use crate::partition::{
    AppendOutcome, LogContext, Partition, ReadOutcome, RetentionOutcome, open_partition,
};
use crate::wal::TornTail;

/// One stream: its registration and its open partitions (which only grow).
#[derive(Debug)]
struct OpenStream {
    record: RwLock<StreamRecord>,
    partitions: RwLock<Vec<Arc<Partition>>>,
}

/// The partitioned, durable log of every stream.
#[derive(Debug)]
pub struct Log {
    ctx: Arc<LogContext>,
    streams: RwLock<HashMap<String, Arc<OpenStream>>>,
    torn_tails: Vec<TornTail>,
    retention_task: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Held while a stream's configuration or partition count changes, so
    /// two changes never interleave between the metadata store and memory.
    alter_lock: tokio::sync::Mutex<()>,
}

impl Log {
    /// Opens the log: registered streams from `metadata`, their local
    /// write-ahead segments from `config.data_dir` (repairing torn tails),
    /// and starts writers, uploaders and the retention timer.
    pub async fn open(
        config: LogConfig,
        store: Arc<dyn ObjectStore>,
        metadata: MetadataStore,
    ) -> Result<Arc<Self>> {
        let wal_dir = config.wal_dir();
        std::fs::create_dir_all(&wal_dir).map_err(|e| Error::io(&wal_dir, e))?;
        let cache = SegmentCache::open(&config.cache_dir(), config.cache_bytes_max)?;
        let ctx = Arc::new(LogContext {
            config,
            store,
            metadata,
            cache,
        });
        let mut streams = HashMap::new();
        let mut torn_tails = Vec::new();
        let records = ctx.metadata.streams().await?;
        for record in records {
            let (open, torn) = open_stream(&ctx, record).await?;
            torn_tails.extend(torn);
            streams.insert(open.record_name(), Arc::new(open));
        }
        remove_orphan_dirs(&ctx, &streams);
        info!(
            data_dir = %ctx.config.data_dir.display(),
            streams = streams.len(),
            object_store = %ctx.store,
            metadata = %ctx.metadata.url(),
            repaired_tails = torn_tails.len(),
            "log opened"
        );
        let log = Arc::new(Self {
            ctx,
            streams: RwLock::new(streams),
            torn_tails,
            retention_task: std::sync::Mutex::new(None),
            alter_lock: tokio::sync::Mutex::new(()),
        });
        let task = tokio::spawn(run_retention(Arc::downgrade(&log)));
        *log.retention_task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok(log)
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.ctx.config
    }

    /// The metadata store.
    pub fn metadata(&self) -> &MetadataStore {
        &self.ctx.metadata
    }

    /// The object store.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.ctx.store
    }

    /// Torn write-ahead tails that were cut off when the log opened.
    pub fn torn_tails(&self) -> &[TornTail] {
        &self.torn_tails
    }

    /// Creates a stream with `config.partitions` empty partitions.
    pub async fn create_stream(&self, name: &str, config: StreamConfig) -> Result<StreamRecord> {
        validate_stream_name(name)?;
        config.validate()?;
        if self.read_streams().contains_key(name) {
            return Err(Error::StreamExists(name.to_string()));
        }
        let record = self.ctx.metadata.create_stream(name, &config).await?;
        let (open, _) = open_stream(&self.ctx, record.clone()).await?;
        let mut streams = self.write_streams();
        if streams.contains_key(name) {
            return Err(Error::StreamExists(name.to_string()));
        }
        streams.insert(name.to_string(), Arc::new(open));
        info!(
            stream = name,
            partitions = config.partitions,
            "stream created"
        );
        Ok(record)
    }

    /// Drops a stream: its partitions stop, its registration goes, then its
    /// objects and local files are deleted.
    pub async fn delete_stream(&self, name: &str) -> Result<()> {
        let open = self.stream_handle(name)?;
        let segments = self.ctx.metadata.delete_stream(name).await?;
        self.write_streams().remove(name);
        for partition in &open.partitions() {
            partition.shutdown().await;
            partition.remove_local_files();
        }
        let timeout = self.ctx.config.object_store_timeout();
        for segment in segments {
            let key = segment.object_path();
            self.ctx.cache.remove(&key);
            if let Err(e) = objects::call(&key, timeout, self.ctx.store.delete(&key)).await {
                warn!(error = %e, "could not delete an object of a dropped stream");
            }
        }
        info!(stream = name, "stream dropped");
        Ok(())
    }

    /// Every stream, by name.
    pub fn streams(&self) -> Vec<StreamRecord> {
        let mut all: Vec<_> = self.read_streams().values().map(|s| s.record()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// One stream's registration.
    pub fn stream(&self, name: &str) -> Result<StreamRecord> {
        Ok(self.stream_handle(name)?.record())
    }

    /// Changes retention or segment settings of a stream. The partition count
    /// cannot change here.
    pub async fn alter_stream(&self, name: &str, config: StreamConfig) -> Result<StreamRecord> {
        config.validate()?;
        let _altering = self.alter_lock.lock().await;
        let open = self.stream_handle(name)?;
        let current = open.record();
        if config.partitions != current.config.partitions {
            return Err(Error::InvalidConfig(
                "the partition count of a stream cannot be changed here".into(),
            ));
        }
        self.ctx
            .metadata
            .update_stream_config(name, &config)
            .await?;
        for partition in &open.partitions() {
            partition.set_stream_config(config.clone());
        }
        let mut record = open.record.write().unwrap_or_else(|e| e.into_inner());
        record.config = config;
        Ok(record.clone())
    }

    /// Grows a stream to `partitions` partitions: the new ones are
    /// registered (with the new count, in one transaction) and opened empty,
    /// with their writers. A partition count never shrinks: records are
    /// where their keys were hashed to.
    pub async fn add_partitions(&self, name: &str, partitions: u32) -> Result<StreamRecord> {
        let _altering = self.alter_lock.lock().await;
        let open = self.stream_handle(name)?;
        let current = open.record();
        if partitions <= current.config.partitions {
            return Err(Error::InvalidConfig(format!(
                "stream \"{name}\" has {} partitions; the count can only grow, not to {partitions}",
                current.config.partitions
            )));
        }
        let config = StreamConfig {
            partitions,
            ..current.config.clone()
        };
        config.validate()?;
        self.ctx
            .metadata
            .add_partitions(current.stream_id, &config)
            .await?;
        let record = StreamRecord {
            config,
            ..current.clone()
        };
        let mut added = Vec::new();
        for partition in current.config.partitions..partitions {
            let (partition, _) = open_partition(self.ctx.clone(), &record, partition).await?;
            added.push(partition);
        }
        for partition in &open.partitions() {
            partition.set_stream_config(record.config.clone());
        }
        // Partitions first, then the count: whoever sees the new count finds
        // every partition it names.
        open.partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(added);
        *open.record.write().unwrap_or_else(|e| e.into_inner()) = record.clone();
        info!(
            stream = name,
            from = current.config.partitions,
            to = partitions,
            "partitions added"
        );
        Ok(record)
    }

    /// One partition of a stream.
    pub fn partition(&self, stream: &str, partition: u32) -> Result<Arc<Partition>> {
        let open = self.stream_handle(stream)?;
        let partitions = open.partitions.read().unwrap_or_else(|e| e.into_inner());
        partitions
            .get(partition as usize)
            .cloned()
            .ok_or_else(|| Error::UnknownPartition {
                stream: stream.to_string(),
                partition,
                partitions: partitions.len() as u32,
            })
    }

    /// Appends a blob of v2 record batches to a partition; resolves once
    /// durable, with the offsets assigned.
    pub async fn append(
        &self,
        stream: &str,
        partition: u32,
        batches: Bytes,
    ) -> Result<AppendOutcome> {
        self.partition(stream, partition)?.append(batches).await
    }

    /// Hands a blob of v2 record batches this process built to a
    /// partition's writer, in order; the returned append resolves once
    /// durable (see [`Partition::submit_built`]).
    pub async fn submit_built(
        &self,
        stream: &str,
        partition: u32,
        batches: Bytes,
    ) -> Result<crate::PendingAppend> {
        self.partition(stream, partition)?
            .submit_built(batches)
            .await
    }

    /// Reads whole batches from `offset` on, up to about `max_bytes`.
    pub async fn read(
        &self,
        stream: &str,
        partition: u32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadOutcome> {
        self.partition(stream, partition)?
            .read(offset, max_bytes)
            .await
    }

    /// The first offset with a timestamp at or after `timestamp_ms`.
    pub async fn offset_for_timestamp(
        &self,
        stream: &str,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<i64>> {
        self.partition(stream, partition)?
            .offset_for_timestamp(timestamp_ms)
            .await
    }

    /// Runs retention on every partition now.
    pub async fn enforce_retention(&self) -> Result<Vec<(String, u32, RetentionOutcome)>> {
        let now = now_ms();
        let partitions: Vec<Arc<Partition>> = self
            .read_streams()
            .values()
            .flat_map(|s| s.partitions())
            .collect();
        let mut outcomes = Vec::new();
        for partition in partitions {
            let outcome = partition.enforce_retention(now).await?;
            if outcome.segments_deleted > 0 {
                outcomes.push((partition.stream().to_string(), partition.id(), outcome));
            }
        }
        Ok(outcomes)
    }

    /// Empties the local segment cache (reads then come from the object
    /// store until it fills again).
    pub fn clear_cache(&self) {
        self.ctx.cache.clear();
    }

    /// Bytes in the local segment cache.
    pub fn cache_bytes(&self) -> u64 {
        self.ctx.cache.bytes()
    }

    /// Stops every writer after what is queued is durable, and stops
    /// uploads and retention. Nothing half-written is sealed; sealed
    /// segments not yet uploaded are uploaded at the next start.
    pub async fn shutdown(&self) {
        if let Some(task) = self
            .retention_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        let streams: Vec<Arc<OpenStream>> = self.read_streams().values().cloned().collect();
        for stream in streams {
            for partition in &stream.partitions() {
                partition.shutdown().await;
            }
        }
        // Read-ahead downloads write into the cache directory: let them
        // finish (they are bounded by the object store timeout).
        let deadline = std::time::Instant::now() + self.ctx.config.object_store_timeout();
        while self.ctx.cache.fills_running() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.ctx.metadata.close().await;
        info!("log shut down");
    }

    fn stream_handle(&self, name: &str) -> Result<Arc<OpenStream>> {
        self.read_streams()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownStream(name.to_string()))
    }

    fn read_streams(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<OpenStream>>> {
        self.streams.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_streams(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<OpenStream>>> {
        self.streams.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl OpenStream {
    fn record(&self) -> StreamRecord {
        self.record
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn record_name(&self) -> String {
        self.record().name
    }

    fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

async fn open_stream(
    ctx: &Arc<LogContext>,
    record: StreamRecord,
) -> Result<(OpenStream, Vec<TornTail>)> {
    let mut partitions = Vec::with_capacity(record.config.partitions as usize);
    let mut torn = Vec::new();
    for partition in 0..record.config.partitions {
        ctx.metadata
            .ensure_partition(record.stream_id, partition)
            .await?;
        let (open, tails) = open_partition(ctx.clone(), &record, partition).await?;
        partitions.push(open);
        torn.extend(tails);
    }
    Ok((
        OpenStream {
            record: RwLock::new(record),
            partitions: RwLock::new(partitions),
        },
        torn,
    ))
}

/// Removes write-ahead directories of streams that no longer exist (a drop
/// interrupted by a crash).
fn remove_orphan_dirs(ctx: &LogContext, streams: &HashMap<String, Arc<OpenStream>>) {
    let known: Vec<String> = streams
        .values()
        .map(|s| s.record().stream_id.to_string())
        .collect();
    let wal_dir = ctx.config.wal_dir();
    let Ok(entries) = std::fs::read_dir(&wal_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !known.contains(&name) {
            info!(path = %entry.path().display(), "removing write-ahead files of a dropped stream");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Enforces retention at the configured interval while the log lives.
async fn run_retention(log: std::sync::Weak<Log>) {
    let interval_ms = match log.upgrade() {
        Some(log) => log.ctx.config.retention_check_interval_ms.max(100),
        None => return,
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms));
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(log) = log.upgrade() else { return };
        if let Err(e) = log.enforce_retention().await {
            warn!(error = %e, "retention pass failed; trying again at the next interval");
        }
    }
}
