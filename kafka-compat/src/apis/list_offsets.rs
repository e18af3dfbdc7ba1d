//! ListOffsets: the earliest offset (-2), the latest (-1), or the first
//! offset whose timestamp is at or after the one asked (-1 past the end).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use tributary_storage::Partition;
use tributary_storage::records::BatchRecords;

use crate::connection::Connection;
use crate::error::storage_error_code;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub(super) async fn handle(
    connection: &Connection,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut answer = ListOffsetsTopicResponse::default();
        for asked in &topic.partitions {
            let mut partition = ListOffsetsPartitionResponse::default();
            partition.partition_index = asked.partition_index;
            match offset_for(
                connection,
                &topic.name.0,
                asked.partition_index,
                asked.timestamp,
            )
            .await
            {
                Ok((timestamp, offset)) => {
                    partition.timestamp = timestamp;
                    partition.offset = offset;
                }
                Err(code) => {
                    partition.error_code = code.code();
                    partition.offset = -1;
                }
            }
            answer.partitions.push(partition);
        }
        answer.name = topic.name;
        topics.push(answer);
    }
    let mut response = ListOffsetsResponse::default();
    response.topics = topics;
    response
}

/// The (timestamp, offset) answer for one partition.
async fn offset_for(
    connection: &Connection,
    stream: &str,
    partition: i32,
    timestamp: i64,
) -> Result<(i64, i64), ResponseError> {
    let partition = u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition)?;
    let handle = connection
        .engine
        .log()
        .partition(stream, partition)
        .map_err(|e| storage_error_code(&e))?;
    match timestamp {
        LATEST => Ok((-1, handle.high_watermark())),
        EARLIEST => Ok((-1, handle.log_start_offset())),
        t if t >= 0 => match handle.offset_for_timestamp(t).await {
            Ok(Some(offset)) => Ok((record_timestamp(&handle, offset).await.unwrap_or(t), offset)),
            Ok(None) => Ok((-1, -1)),
            Err(e) => Err(storage_error_code(&e)),
        },
        _ => Err(ResponseError::UnsupportedVersion),
    }
}

/// The timestamp of the record at `offset` (what Kafka answers next to the
/// offset found), if it can be read.
async fn record_timestamp(partition: &Arc<Partition>, offset: i64) -> Option<i64> {
    let read = partition.read(offset, 1).await.ok()?;
    let batch = BatchRecords::new(read.batches.into_iter().next()?).ok()?;
    batch
        .iter()
        .filter_map(Result::ok)
        .find(|r| r.offset == offset)
        .map(|r| r.timestamp)
}
