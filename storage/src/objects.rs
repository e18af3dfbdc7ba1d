//! The object store: opening it from a URL, naming segment objects, and
//! calling it with a timeout and retries.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use tracing::warn;

use crate::error::{Error, Result};

/// Opens the object store named by `url`:
/// - `file:///abs/dir` — the local filesystem (the embedded default);
/// - `s3://bucket/prefix` — S3 or any S3-compatible server; endpoint,
///   region and credentials come from the usual `AWS_*` environment
///   variables (`AWS_ENDPOINT=http://...` allows plain HTTP);
/// - `memory://` — in memory, for tests.
pub fn open_object_store(url: &str) -> Result<Arc<dyn ObjectStore>> {
    Ok(Arc::new(crate::metered_store::MeteredStore::new(
        open_unmetered(url)?,
    )))
}

/// The store `url` names, without the metering [`open_object_store`] adds.
fn open_unmetered(url: &str) -> Result<Arc<dyn ObjectStore>> {
    let bad = |reason: String| Error::InvalidConfig(format!("object store URL {url:?}: {reason}"));
    if let Some(path) = url.strip_prefix("file://") {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let store = LocalFileSystem::new_with_prefix(path)
            .map_err(|e| bad(e.to_string()))?
            .with_automatic_cleanup(true);
        return Ok(Arc::new(store));
    }
    if url == "memory://" || url == "memory:///" {
        return Ok(Arc::new(InMemory::new()));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket".into()));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if std::env::var("AWS_ENDPOINT").is_ok_and(|e| e.starts_with("http://")) {
            builder = builder.with_allow_http(true);
        }
        let store = builder.build().map_err(|e| bad(e.to_string()))?;
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            return Ok(Arc::new(store));
        }
        return Ok(Arc::new(PrefixStore::new(store, prefix)));
    }
    Err(bad("use file://, s3:// or memory://".into()))
}

/// The directory a `file://` object store URL names, if it is one. With it,
/// the log can publish segments by hard link (see
/// [`crate::LogConfig::local_object_root`]).
pub fn local_root(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("file://")?;
    std::fs::canonicalize(path).ok()
}

/// The file that holds the object `key` in a local-filesystem store rooted
/// at `root` (see [`local_root`]): where the uploader links segments, and
/// where reads find them without going through the store.
pub fn local_object_path(root: &std::path::Path, key: &ObjectPath) -> std::path::PathBuf {
    root.join(key.as_ref())
}

/// The key of a sealed segment's object.
pub fn segment_key(stream_id: i64, partition: u32, base_offset: i64) -> ObjectPath {
    ObjectPath::from(format!(
        "streams/{stream_id}/{partition}/{base_offset:020}.seg"
    ))
}

/// Runs one object-store call with a timeout, naming the object on failure.
pub async fn call<T>(
    location: &ObjectPath,
    timeout: Duration,
    fut: impl Future<Output = object_store::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(Error::ObjectStore {
            location: location.to_string(),
            source,
        }),
        Err(_) => Err(Error::ObjectStoreTimeout {
            location: location.to_string(),
            timeout_ms: timeout.as_millis() as u64,
        }),
    }
}

/// Exponential backoff between retries of work that must eventually happen
/// (uploads, registrations).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { next: initial, max }
    }

    /// Logs the failure and sleeps before the next attempt.
    pub async fn wait_after(&mut self, what: &str, error: &Error) {
        warn!(error = %error, retry_in_ms = self.next.as_millis() as u64, "{what} failed; retrying");
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.max);
    }
}

/// Retries `attempt` with backoff until it succeeds.
pub async fn retry_forever<T, F, Fut>(what: &str, mut backoff: Backoff, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) => backoff.wait_after(what, &e).await,
        }
    }
}
