//! [`MeteredStore`]: an object store that counts its calls, bytes and
//! latencies through the `metrics` facade (`/metrics` shows them), and
//! otherwise passes everything to the store it wraps.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// Wraps a store and records `tributary_object_store_request_duration_seconds`
/// (a histogram, whose count is the number of requests; the time to the
/// answer, not to the last byte) by operation (`put`, `get`, `head`,
/// `list`, `copy`, `multipart` for starting an upload) and outcome,
/// `tributary_object_store_deletes_total` and
/// `tributary_object_store_lists_total` (streamed calls, counted), and
/// `tributary_object_store_bytes_total` by direction.
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
}

impl MeteredStore {
    /// `inner`, metered.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }
}

fn record<T>(operation: &'static str, started: Instant, result: &object_store::Result<T>) {
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::histogram!(
        "tributary_object_store_request_duration_seconds",
        "operation" => operation,
        "outcome" => outcome,
    )
    .record(started.elapsed().as_secs_f64());
}

fn bytes(direction: &'static str, count: u64) {
    metrics::counter!("tributary_object_store_bytes_total", "direction" => direction)
        .increment(count);
}

impl fmt::Display for MeteredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Metered({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for MeteredStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let size = payload.content_length() as u64;
        let started = Instant::now();
        let result = self.inner.put_opts(location, payload, opts).await;
        record("put", started, &result);
        if result.is_ok() {
            bytes("written", size);
        }
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let started = Instant::now();
        let result = self.inner.put_multipart_opts(location, opts).await;
        record("multipart", started, &result);
        result
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let head = options.head;
        let started = Instant::now();
        let result = self.inner.get_opts(location, options).await;
        record(if head { "head" } else { "get" }, started, &result);
        if let Ok(got) = &result
            && !head
        {
            // The bytes the request asked for, counted when it answers.
            bytes("read", got.range.end.saturating_sub(got.range.start));
        }
        result
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner
            .delete_stream(locations)
            .inspect(|result| {
                let outcome = if result.is_ok() { "ok" } else { "error" };
                metrics::counter!(
                    "tributary_object_store_deletes_total",
                    "outcome" => outcome,
                )
                .increment(1);
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        metrics::counter!("tributary_object_store_lists_total").increment(1);
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let started = Instant::now();
        let result = self.inner.list_with_delimiter(prefix).await;
        record("list", started, &result);
        result
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        let started = Instant::now();
        let result = self.inner.copy_opts(from, to, options).await;
        record("copy", started, &result);
        result
    }
}
