//! Produce: each partition's batches go through the engine, which checks
//! them against the stream and appends them as sent. The partitions of one
//! request are appended concurrently, so they share group commits.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use tributary_executor::ExecError;

use crate::connection::Connection;
use crate::error::error_code;

/// Appends and answers; `None` for acks=0, which gets no response.
pub(super) async fn handle(
    connection: &Connection,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let appends = topic.partition_data.into_iter().map(|data| {
            let name = name.clone();
            async move {
                let mut answer = PartitionProduceResponse::default();
                answer.index = data.index;
                let Ok(partition) = u32::try_from(data.index) else {
                    answer.error_code = ResponseError::UnknownTopicOrPartition.code();
                    return answer;
                };
                let Some(records) = data.records else {
                    answer.error_code = ResponseError::CorruptMessage.code();
                    return answer;
                };
                match connection.engine.produce(&name, partition, records).await {
                    Ok(appended) => {
                        answer.base_offset = appended.base_offset;
                        answer.log_append_time_ms = appended.log_append_time_ms;
                        if let Ok(p) = connection.engine.log().partition(&name, partition) {
                            answer.log_start_offset = p.log_start_offset();
                        }
                    }
                    Err(e) => refuse(&mut answer, &e),
                }
                answer
            }
        });
        let mut answer = TopicProduceResponse::default();
        answer.name = topic.name;
        answer.partition_responses = futures::future::join_all(appends).await;
        topics.push(answer);
    }
    if acks == 0 {
        return None;
    }
    let mut response = ProduceResponse::default();
    response.responses = topics;
    Some(response)
}

/// The error code and message of a refused append; for a record that does
/// not fit its stream, which record and why.
fn refuse(answer: &mut PartitionProduceResponse, error: &ExecError) {
    answer.error_code = error_code(error).code();
    answer.base_offset = -1;
    answer.error_message = Some(StrBytes::from_string(error.to_string()));
    if let ExecError::InvalidRecord { index, reason, .. } = error {
        let mut record = BatchIndexAndErrorMessage::default();
        record.batch_index = i32::try_from(*index).unwrap_or(i32::MAX);
        record.batch_index_error_message = Some(StrBytes::from_string(reason.clone()));
        answer.record_errors = vec![record];
    }
}
