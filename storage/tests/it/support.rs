//! Test backends: every log test runs on the local filesystem store and on a
//! real S3 API server (s3s-fs on 127.0.0.1), with SQLite metadata, and with
//! PostgreSQL metadata when `TRIBUTARY_TEST_POSTGRES_URL` names a server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use tempfile::TempDir;
use tributary_storage::batch::{Compression, NewRecord, encode_batch};
use tributary_storage::{Log, LogConfig, MetadataStore, open_object_store};

/// Which object store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreKind {
    Local,
    S3,
}

/// Which metadata store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetadataKind {
    Sqlite,
    Postgres,
}

/// The object stores every log test runs on.
pub(crate) fn store_kinds() -> [StoreKind; 2] {
    [StoreKind::Local, StoreKind::S3]
}

/// SQLite always; PostgreSQL when a server is configured.
pub(crate) fn metadata_kinds() -> Vec<MetadataKind> {
    let mut kinds = vec![MetadataKind::Sqlite];
    if postgres_url().is_some() {
        kinds.push(MetadataKind::Postgres);
    } else {
        eprintln!(
            "NOTE: TRIBUTARY_TEST_POSTGRES_URL is not set; metadata tests run on SQLite only"
        );
    }
    kinds
}

pub(crate) fn postgres_url() -> Option<String> {
    std::env::var("TRIBUTARY_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A scratch environment: a data dir, an object store, a metadata store
/// location. Dropping it stops the S3 server and removes the files.
pub(crate) struct TestEnv {
    pub(crate) dir: TempDir,
    pub(crate) store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
    metadata_url: String,
    _s3: Option<S3Server>,
}

impl TestEnv {
    pub(crate) async fn new(
        store_kind: StoreKind,
        metadata_kind: MetadataKind,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (store, s3, local_root) = match store_kind {
            StoreKind::Local => {
                let url = format!("file://{}", dir.path().join("objects").display());
                (
                    open_object_store(&url)?,
                    None,
                    tributary_storage::objects::local_root(&url),
                )
            }
            StoreKind::S3 => {
                let server = S3Server::start(&dir.path().join("s3")).await?;
                (server.client()?, Some(server), None)
            }
        };
        let metadata_url = match metadata_kind {
            MetadataKind::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("metadata.db").display()
            ),
            MetadataKind::Postgres => fresh_postgres_database().await?,
        };
        Ok(Self {
            dir,
            store,
            local_root,
            metadata_url,
            _s3: s3,
        })
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A log config with small segments, in this env's data dir. A local
    /// store publishes segments by hard link, as `tributary serve` does.
    pub(crate) fn config(&self) -> LogConfig {
        LogConfig {
            data_dir: self.data_dir(),
            segment_bytes_max: 64 * 1024,
            segment_age_max_ms: 3_600_000,
            retry_initial_backoff_ms: 10,
            retry_max_backoff_ms: 200,
            object_store_timeout_ms: 5_000,
            retention_check_interval_ms: 3_600_000,
            local_object_root: self.local_root.clone(),
            ..Default::default()
        }
    }

    pub(crate) async fn metadata(&self) -> anyhow::Result<MetadataStore> {
        Ok(MetadataStore::connect(&self.metadata_url).await?)
    }

    pub(crate) async fn open(&self, config: LogConfig) -> anyhow::Result<Arc<Log>> {
        Ok(Log::open(config, self.store.clone(), self.metadata().await?).await?)
    }

    pub(crate) async fn open_with_store(
        &self,
        config: LogConfig,
        store: Arc<dyn ObjectStore>,
    ) -> anyhow::Result<Arc<Log>> {
        Ok(Log::open(config, store, self.metadata().await?).await?)
    }
}

/// Creates an empty PostgreSQL database for one test and returns its URL.
async fn fresh_postgres_database() -> anyhow::Result<String> {
    let base = postgres_url().ok_or_else(|| anyhow::anyhow!("no PostgreSQL configured"))?;
    sqlx::any::install_default_drivers();
    let name = format!(
        "tributary_test_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&base).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    let (prefix, _) = base
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("postgres URL needs a database path"))?;
    Ok(format!("{prefix}/{name}"))
}

/// An in-process S3 API server (s3s with its filesystem backend) on a free
/// 127.0.0.1 port, with signature checking on.
pub(crate) struct S3Server {
    pub(crate) endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

pub(crate) const S3_BUCKET: &str = "tributary";
const S3_ACCESS_KEY: &str = "test-access-key";
const S3_SECRET_KEY: &str = "test-secret-key";

impl S3Server {
    pub(crate) async fn start(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root.join(S3_BUCKET))?;
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| anyhow::anyhow!("s3s-fs: {e:?}"))?;
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            S3_ACCESS_KEY,
            S3_SECRET_KEY,
        ));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Ok(Self {
            endpoint: format!("http://{addr}"),
            task,
        })
    }

    /// object_store's real S3 client, pointed at this server.
    pub(crate) fn client(&self) -> anyhow::Result<Arc<dyn ObjectStore>> {
        let store = AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(S3_BUCKET)
            .with_region("us-east-1")
            .with_access_key_id(S3_ACCESS_KEY)
            .with_secret_access_key(S3_SECRET_KEY)
            .build()?;
        Ok(Arc::new(store))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The deterministic record number `i` used by tests: value and key derive
/// from it, so a reader can check bytes without remembering them.
pub(crate) fn record(i: u64, value_bytes: usize) -> NewRecord {
    let mut value = format!("record-{i:010}-").into_bytes();
    while value.len() < value_bytes {
        value.push(b'a' + (i % 26) as u8);
    }
    NewRecord {
        key: Some(Bytes::from(format!("key-{}", i % 97))),
        value: Some(Bytes::from(value)),
        headers: vec![("n".into(), Some(Bytes::from(i.to_string())))],
        timestamp_ms: 1_700_000_000_000 + i as i64,
    }
}

/// One batch holding only record `i`.
pub(crate) fn single_record_batch(i: u64, value_bytes: usize) -> Bytes {
    encode_batch(&[record(i, value_bytes)], Compression::None).expect("encodes")
}

/// The batch as the log stores it: the same bytes with the base offset set.
pub(crate) fn stored_form(batch: &Bytes, offset: i64) -> Vec<u8> {
    let mut bytes = batch.to_vec();
    bytes[..8].copy_from_slice(&offset.to_be_bytes());
    bytes
}

/// Reads every record of a partition, following batches to the high
/// watermark. Returns (offset, value) pairs.
pub(crate) async fn read_all_values(
    log: &Log,
    stream: &str,
    partition: u32,
) -> anyhow::Result<Vec<(i64, Bytes)>> {
    let p = log.partition(stream, partition)?;
    let mut out = Vec::new();
    let mut offset = p.log_start_offset();
    let high_watermark = p.high_watermark();
    while offset < high_watermark {
        let read = log.read(stream, partition, offset, 256 * 1024).await?;
        anyhow::ensure!(
            !read.batches.is_empty(),
            "empty read at {offset} below {high_watermark}"
        );
        for batch in read.batches {
            for record in tributary_storage::batch::decode_batch(batch)? {
                if record.offset >= offset {
                    out.push((record.offset, record.value.unwrap_or_default()));
                }
                offset = offset.max(record.offset + 1);
            }
        }
    }
    Ok(out)
}

/// Polls `condition` until true or the timeout passes.
pub(crate) async fn wait_for(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !condition() {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Counts the objects under a prefix.
pub(crate) async fn object_count(store: &Arc<dyn ObjectStore>) -> anyhow::Result<usize> {
    use futures::TryStreamExt;
    let objects: Vec<_> = store.list(None).try_collect().await?;
    Ok(objects.len())
}

/// Waits until every sealed segment of a partition is uploaded and the
/// object store, the metadata store and the partition agree: one local
/// write-ahead segment (the active one), and exactly one object and one
/// registration per uploaded segment. Returns the number uploaded.
pub(crate) async fn settled_uploads(
    log: &Log,
    store: &Arc<dyn ObjectStore>,
    stream: &str,
    partition: u32,
) -> anyhow::Result<usize> {
    let p = log.partition(stream, partition)?;
    let stream_id = log.stream(stream)?.stream_id;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (wal, remote) = p.segment_counts();
        let registered = log.metadata().segments(stream_id, partition).await?.len();
        let objects = object_count(store).await?;
        // A full active segment is about to be sealed: not settled yet.
        let seal_pending = p.local_bytes() >= log.config().segment_bytes_max;
        if wal == 1 && !seal_pending && remote == registered && registered == objects {
            return Ok(remote);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "uploads never settled: {wal} local, {remote} uploaded, {registered} registered, {objects} objects"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
