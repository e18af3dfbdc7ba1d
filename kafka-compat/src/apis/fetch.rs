//! Fetch: whole stored batches from each partition's offset, as they are
//! on disk (a read that starts inside a batch returns all of it; clients
//! skip the records before their offset). With too little data for
//! `min_bytes`, the request waits for new appends up to `max_wait_ms`.
//! Fetch sessions are declined (session id 0): every request is a full
//! fetch, which the protocol allows a broker to do.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use tokio::time::Instant;

use crate::connection::Connection;
use crate::error::storage_error_code;

/// Longest wait honoured, whatever a client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

pub(super) async fn handle(connection: &Connection, request: FetchRequest) -> FetchResponse {
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0).max(1);
    loop {
        // Watch before reading, so an append between the read and the wait
        // still wakes the wait.
        let mut watches = high_watermarks(connection, &request);
        let (response, bytes, failed) = read_all(connection, &request).await;
        if bytes >= min_bytes || failed || watches.is_empty() || Instant::now() >= deadline {
            return response;
        }
        let changed = futures::future::select_all(
            watches
                .iter_mut()
                .map(|w| async move { w.changed().await.is_ok() }.boxed()),
        );
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return response;
        }
    }
}

/// A watch of the high watermark of every partition asked about.
fn high_watermarks(
    connection: &Connection,
    request: &FetchRequest,
) -> Vec<tokio::sync::watch::Receiver<i64>> {
    request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().filter_map(|p| {
                let partition = u32::try_from(p.partition).ok()?;
                let handle = connection
                    .engine
                    .log()
                    .partition(&topic.topic.0, partition)
                    .ok()?;
                Some(handle.watch_high_watermark())
            })
        })
        .collect()
}

/// Reads every partition asked for: the response, the bytes of records in
/// it, and whether any partition failed (which answers at once).
async fn read_all(connection: &Connection, request: &FetchRequest) -> (FetchResponse, usize, bool) {
    let mut budget = usize::try_from(request.max_bytes).unwrap_or(0);
    let mut total = 0;
    let mut failed = false;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut answer = FetchableTopicResponse::default();
        answer.topic = topic.topic.clone();
        for asked in &topic.partitions {
            let mut data = PartitionData::default();
            data.partition_index = asked.partition;
            let max = usize::try_from(asked.partition_max_bytes)
                .unwrap_or(0)
                .min(budget);
            match read_partition(
                connection,
                &topic.topic.0,
                asked.partition,
                asked.fetch_offset,
                max,
                total == 0,
            )
            .await
            {
                Ok((records, high_watermark, log_start_offset)) => {
                    data.high_watermark = high_watermark;
                    data.last_stable_offset = high_watermark;
                    data.log_start_offset = log_start_offset;
                    total += records.len();
                    budget = budget.saturating_sub(records.len());
                    data.records = Some(records);
                }
                Err(code) => {
                    failed = true;
                    data.error_code = code.code();
                    data.high_watermark = -1;
                    data.records = Some(Bytes::new());
                }
            }
            answer.partitions.push(data);
        }
        topics.push(answer);
    }
    let mut response = FetchResponse::default();
    response.responses = topics;
    (response, total, failed)
}

/// One partition's batches from `offset`, at most `max_bytes` unless the
/// first batch alone is larger and nothing else is in the response yet
/// (Kafka returns it whole so that a consumer always makes progress).
async fn read_partition(
    connection: &Connection,
    stream: &str,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    first_in_response: bool,
) -> Result<(Bytes, i64, i64), ResponseError> {
    let partition = u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition)?;
    let log = connection.engine.log();
    let handle = log
        .partition(stream, partition)
        .map_err(|e| storage_error_code(&e))?;
    let high_watermark = handle.high_watermark();
    if max_bytes == 0 && !first_in_response {
        return Ok((Bytes::new(), high_watermark, handle.log_start_offset()));
    }
    let read = handle
        .read(offset, max_bytes.max(1))
        .await
        .map_err(|e| storage_error_code(&e))?;
    // The log keeps to the budget, except for a first batch larger than it.
    let oversized = read.batches.first().is_some_and(|b| b.len() > max_bytes);
    let mut records = BytesMut::new();
    if !oversized || first_in_response {
        records.reserve(read.size_bytes());
        for batch in &read.batches {
            records.extend_from_slice(batch);
        }
    }
    Ok((records.freeze(), read.high_watermark, read.log_start_offset))
}
