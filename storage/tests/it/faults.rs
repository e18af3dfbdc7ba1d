//! Faults: an object store that fails, hangs, or fails after the write
//! really happened; and a data dir on a full disk.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use tributary_storage::{Error, StreamConfig};

use crate::support::{
    MetadataKind, StoreKind, TestEnv, object_count, read_all_values, settled_uploads,
    single_record_batch, wait_for,
};

/// How the wrapped store misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Healthy,
    /// Every call fails at once.
    Fail,
    /// Every call hangs (the log's timeout must give up on it).
    Hang,
    /// PUTs reach the store, then report failure (the ambiguous PUT).
    FailAfterPut,
}

#[derive(Debug)]
struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    fault: Mutex<Fault>,
    puts_attempted: AtomicUsize,
}

impl FaultyStore {
    fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            fault: Mutex::new(Fault::Healthy),
            puts_attempted: AtomicUsize::new(0),
        })
    }

    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap()
    }

    async fn before_call(&self) -> object_store::Result<()> {
        match self.fault() {
            Fault::Fail => Err(injected()),
            Fault::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(injected())
            }
            Fault::Healthy | Fault::FailAfterPut => Ok(()),
        }
    }
}

fn injected() -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: "injected fault".into(),
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.puts_attempted.fetch_add(1, Ordering::SeqCst);
        self.before_call().await?;
        let result = self.inner.put_opts(location, payload, opts).await?;
        if self.fault() == Fault::FailAfterPut {
            return Err(injected());
        }
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.before_call().await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.before_call().await?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.before_call().await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.before_call().await?;
        self.inner.copy_opts(from, to, options).await
    }
}

/// Appends from `producers` tasks until `total` records are in or the
/// producers stall; returns the acked offsets so far via the shared vec.
fn spawn_producers(
    log: Arc<tributary_storage::Log>,
    producers: u64,
    per_producer: u64,
    acked: Arc<Mutex<Vec<i64>>>,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<()>>> {
    (0..producers)
        .map(|p| {
            let log = log.clone();
            let acked = acked.clone();
            tokio::spawn(async move {
                for n in 0..per_producer {
                    let out = log
                        .append("f", 0, single_record_batch(p * per_producer + n, 500))
                        .await?;
                    acked.lock().unwrap().push(out.base_offset);
                }
                Ok(())
            })
        })
        .collect()
}

async fn wait_until_stalled(acked: &Arc<Mutex<Vec<i64>>>) -> usize {
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let now = acked.lock().unwrap().len();
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_or_hanging_store_means_backlog_then_back_pressure() -> anyhow::Result<()> {
    for fault in [Fault::Fail, Fault::Hang] {
        let env = TestEnv::new(StoreKind::Local, MetadataKind::Sqlite).await?;
        let store = FaultyStore::new(env.store.clone());
        store.set(fault);
        let mut config = env.config();
        config.local_object_root = None; // every upload goes through the faulty store
        config.segment_bytes_max = 8 * 1024;
        config.upload_backlog_max = 3;
        config.object_store_timeout_ms = 200;
        let log = env.open_with_store(config, store.clone()).await?;
        log.create_stream("f", StreamConfig::default()).await?;

        let acked = Arc::new(Mutex::new(Vec::new()));
        let tasks = spawn_producers(log.clone(), 2, 150, acked.clone());
        let stalled_at = wait_until_stalled(&acked).await;
        // ~14 records fill a segment; 3 sealed in the backlog plus the active one.
        assert!(
            stalled_at >= 40,
            "{fault:?}: appends were acknowledged from the write-ahead log meanwhile ({stalled_at})"
        );
        assert!(
            stalled_at < 300,
            "{fault:?}: a full backlog turns into back-pressure ({stalled_at})"
        );
        assert_eq!(object_count(&env.store).await?, 0);
        {
            let mut offsets = acked.lock().unwrap().clone();
            offsets.sort();
            offsets.dedup();
            assert_eq!(
                offsets.len(),
                stalled_at,
                "{fault:?}: two producers never share an offset"
            );
        }

        store.set(Fault::Healthy);
        for task in tasks {
            task.await??;
        }
        let mut offsets = acked.lock().unwrap().clone();
        offsets.sort();
        assert_eq!(
            offsets,
            (0..300).collect::<Vec<i64>>(),
            "{fault:?}: dense and unique"
        );
        let uploaded = settled_uploads(&log, &env.store, "f", 0).await?;
        let registered = log
            .metadata()
            .segments(log.stream("f")?.stream_id, 0)
            .await?;
        assert_eq!(
            registered.len(),
            uploaded,
            "{fault:?}: one object and one registration per segment"
        );
        assert!(
            registered
                .windows(2)
                .all(|w| w[0].last_offset + 1 == w[1].base_offset),
            "{fault:?}: segments tile the log"
        );
        log.clear_cache();
        assert_eq!(read_all_values(&log, "f", 0).await?.len(), 300);
        log.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_puts_neither_lose_nor_double_register_segments() -> anyhow::Result<()> {
    let env = TestEnv::new(StoreKind::Local, MetadataKind::Sqlite).await?;
    let store = FaultyStore::new(env.store.clone());
    store.set(Fault::FailAfterPut);
    let mut config = env.config();
    config.local_object_root = None; // every upload goes through the faulty store
    config.segment_bytes_max = 8 * 1024;
    let log = env.open_with_store(config.clone(), store.clone()).await?;
    log.create_stream("f", StreamConfig::default()).await?;
    let acked = Arc::new(Mutex::new(Vec::new()));
    for task in spawn_producers(log.clone(), 2, 60, acked.clone()) {
        task.await??;
    }
    wait_for("failed-but-written puts", Duration::from_secs(10), || {
        store.puts_attempted.load(Ordering::SeqCst) >= 6
    })
    .await?;
    store.set(Fault::Healthy);
    let uploaded = settled_uploads(&log, &env.store, "f", 0).await?;
    let registered = log
        .metadata()
        .segments(log.stream("f")?.stream_id, 0)
        .await?;
    assert!(uploaded >= 6);
    assert_eq!(registered.len(), uploaded);
    assert!(
        registered
            .windows(2)
            .all(|w| w[0].last_offset + 1 == w[1].base_offset)
    );
    log.shutdown().await;

    // The same holds after a restart that finds everything registered.
    let log = env.open(config).await?;
    log.clear_cache();
    assert_eq!(read_all_values(&log, "f", 0).await?.len(), 120);
    log.shutdown().await;
    Ok(())
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(Self { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_fails_appends_clearly_and_recovers() -> anyhow::Result<()> {
    let Some(disk) = SmallDisk::mount(2 * 1024 * 1024) else {
        eprintln!(
            "SKIPPED full_disk_fails_appends_clearly_and_recovers: cannot mount a tmpfs here (needs root)"
        );
        return Ok(());
    };
    let env = TestEnv::new(StoreKind::Local, MetadataKind::Sqlite).await?;
    let ballast = disk.dir.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 512 * 1024])?;
    let mut config = env.config();
    config.data_dir = disk.dir.path().join("data");
    config.segment_bytes_max = 64 * 1024 * 1024;
    let log = env.open(config.clone()).await?;
    log.create_stream("f", StreamConfig::default()).await?;
    let mut acked = 0i64;
    let error = loop {
        match log
            .append("f", 0, single_record_batch(acked as u64, 4000))
            .await
        {
            Ok(out) => {
                assert_eq!(out.base_offset, acked);
                acked += 1;
            }
            Err(e) => break e,
        }
        assert!(acked < 10_000, "the disk never filled");
    };
    match &error {
        Error::Io { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{error}")
        }
        other => panic!("expected an I/O error, got {other}"),
    }
    assert!(
        error.to_string().contains("No space left"),
        "clear message: {error}"
    );
    assert_eq!(
        read_all_values(&log, "f", 0).await?.len() as i64,
        acked,
        "acknowledged data intact"
    );

    std::fs::remove_file(&ballast)?;
    for n in 0..20 {
        let out = log
            .append("f", 0, single_record_batch(1_000_000 + n, 4000))
            .await?;
        assert_eq!(
            out.base_offset,
            acked + n as i64,
            "appends resume at the next offset"
        );
    }
    log.shutdown().await;
    let log = env.open(config).await?;
    assert_eq!(
        read_all_values(&log, "f", 0).await?.len() as i64,
        acked + 20
    );
    log.shutdown().await;
    Ok(())
}

/// A batch an idempotent producer could not get written (the disk is full)
/// leaves no trace in its producer state: once there is room, its retry is
/// written as new, at the next offset, and the sequence goes on from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_takes_back_the_producer_state() -> anyhow::Result<()> {
    let Some(disk) = SmallDisk::mount(2 * 1024 * 1024) else {
        eprintln!(
            "SKIPPED a_failed_write_takes_back_the_producer_state: cannot mount a tmpfs here (needs root)"
        );
        return Ok(());
    };
    let env = TestEnv::new(StoreKind::Local, MetadataKind::Sqlite).await?;
    let ballast = disk.dir.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 512 * 1024])?;
    let mut config = env.config();
    config.data_dir = disk.dir.path().join("data");
    config.segment_bytes_max = 64 * 1024 * 1024;
    let log = env.open(config).await?;
    log.create_stream("f", StreamConfig::default()).await?;
    let batch = |sequence: i32| {
        let mut bytes = single_record_batch(sequence as u64, 4000).to_vec();
        tributary_storage::batch::set_producer(&mut bytes, 77, 0, sequence);
        bytes::Bytes::from(bytes)
    };
    let mut sequence = 0;
    loop {
        match log.append("f", 0, batch(sequence)).await {
            Ok(out) => {
                assert_eq!(out.base_offset, i64::from(sequence));
                sequence += 1;
            }
            Err(Error::Io { .. }) => break,
            Err(other) => panic!("expected an I/O error, got {other}"),
        }
        assert!(sequence < 10_000, "the disk never filled");
    }
    std::fs::remove_file(&ballast)?;
    // Neither a duplicate of a batch that is not there, nor out of order.
    let retried = log.append("f", 0, batch(sequence)).await?;
    assert_eq!(
        (retried.base_offset, retried.duplicate),
        (i64::from(sequence), false)
    );
    let next = log.append("f", 0, batch(sequence + 1)).await?;
    assert_eq!(next.base_offset, i64::from(sequence) + 1);
    assert_eq!(
        read_all_values(&log, "f", 0).await?.len() as i64,
        i64::from(sequence) + 2
    );
    log.shutdown().await;
    Ok(())
}
