//! Produce: each partition's batches are checked against the stream and
//! handed to its writer, in the request's order, before the connection
//! reads its next request; the answer comes once they are durable. So
//! pipelined requests (librdkafka sends up to five) share group commits,
//! while each partition keeps the order its batches were sent in.

use std::future::Future;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use tributary_executor::ExecError;
use tributary_storage::PendingAppend;

use crate::connection::Connection;
use crate::error::error_code;

/// Hands every partition's batches to its writer, in order; returns what
/// answers once they are durable (`None` for acks=0, which gets no
/// response).
pub(super) async fn submit(
    connection: &Connection,
    request: ProduceRequest,
) -> impl Future<Output = Option<ProduceResponse>> + Send + '_ {
    let acks = request.acks;
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let mut answer = PartitionProduceResponse::default();
            answer.index = data.index;
            let appended = match (u32::try_from(data.index), data.records) {
                (Err(_), _) => Err(ResponseError::UnknownTopicOrPartition),
                (Ok(_), None) => Err(ResponseError::CorruptMessage),
                (Ok(partition), Some(records)) => Ok(connection
                    .engine
                    .submit_produce(&name, partition, records)
                    .await
                    .map(|pending| (partition, pending))),
            };
            partitions.push((answer, appended));
        }
        topics.push((topic.name, name, partitions));
    }
    async move {
        let mut answers = Vec::with_capacity(topics.len());
        for (topic_name, name, partitions) in topics {
            let durable = partitions.into_iter().map(|(answer, appended)| {
                let name = name.clone();
                async move { finish(connection, &name, answer, appended).await }
            });
            let mut answer = TopicProduceResponse::default();
            answer.name = topic_name;
            answer.partition_responses = futures::future::join_all(durable).await;
            answers.push(answer);
        }
        if acks == 0 {
            return None;
        }
        let mut response = ProduceResponse::default();
        response.responses = answers;
        Some(response)
    }
}

/// One partition's answer, once its append is durable (or refused).
async fn finish(
    connection: &Connection,
    name: &str,
    mut answer: PartitionProduceResponse,
    appended: Result<Result<(u32, PendingAppend), ExecError>, ResponseError>,
) -> PartitionProduceResponse {
    let (partition, pending) = match appended {
        Err(code) => {
            answer.error_code = code.code();
            return answer;
        }
        Ok(Err(e)) => {
            refuse(&mut answer, &e);
            return answer;
        }
        Ok(Ok(submitted)) => submitted,
    };
    match pending.durable().await {
        Ok(appended) => {
            answer.base_offset = appended.base_offset;
            answer.log_append_time_ms = appended.log_append_time_ms;
            if let Ok(p) = connection.engine.log().partition(name, partition) {
                answer.log_start_offset = p.log_start_offset();
            }
        }
        Err(e) => refuse(&mut answer, &ExecError::from(e)),
    }
    answer
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
