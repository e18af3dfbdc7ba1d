//! DeleteRecords: moves each partition's log start offset up to the offset
//! given (-1: the high watermark). Reads below it are OFFSET_OUT_OF_RANGE
//! at once, ListOffsets' earliest answers it, it survives restarts, and the
//! retention pass deletes the segments wholly below it.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::connection::Connection;
use crate::error::storage_error_code;

/// The offset that means "everything so far".
const HIGH_WATERMARK: i64 = -1;

pub(super) async fn handle(
    connection: &Connection,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    for topic in request.topics {
        let mut answer = DeleteRecordsTopicResult::default();
        for asked in &topic.partitions {
            let mut partition = DeleteRecordsPartitionResult::default();
            partition.partition_index = asked.partition_index;
            match delete(
                connection,
                &topic.name.0,
                asked.partition_index,
                asked.offset,
            )
            .await
            {
                Ok(low_watermark) => partition.low_watermark = low_watermark,
                Err(code) => {
                    partition.low_watermark = -1;
                    partition.error_code = code.code();
                }
            }
            answer.partitions.push(partition);
        }
        answer.name = topic.name;
        response.topics.push(answer);
    }
    response
}

/// Deletes the records of one partition below `offset`; the new log start.
async fn delete(
    connection: &Connection,
    stream: &str,
    partition: i32,
    offset: i64,
) -> Result<i64, ResponseError> {
    let partition = u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition)?;
    connection
        .engine
        .check_admin(stream, tributary_executor::AdminChange::Retention)
        .map_err(|e| crate::error::error_code(&e))?;
    let handle = connection
        .engine
        .log()
        .partition(stream, partition)
        .map_err(|e| storage_error_code(&e))?;
    let offset = match offset {
        HIGH_WATERMARK => handle.high_watermark(),
        offset => offset,
    };
    handle
        .delete_records_before(offset)
        .await
        .map_err(|e| storage_error_code(&e))
}
