//! DeleteTopics: drops the streams and their data, as `DROP STREAM` does.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::error::error_code;

pub(super) async fn handle(
    connection: &Connection,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // Versions 1-5 name topics; version 6 lists them, by name or id.
    let asked: Vec<Option<TopicName>> = request
        .topic_names
        .into_iter()
        .map(Some)
        .chain(request.topics.into_iter().map(|t| t.name))
        .collect();
    let mut responses = Vec::with_capacity(asked.len());
    for name in asked {
        let mut result = DeletableTopicResult::default();
        let outcome = match &name {
            None => Err((
                ResponseError::UnknownTopicId,
                "topics are deleted by name here".to_string(),
            )),
            Some(name) => connection
                .engine
                .delete_stream(name.0.as_str())
                .await
                .map_err(|e| (error_code(&e), e.to_string())),
        };
        if let Err((code, message)) = outcome {
            result.error_code = code.code();
            result.error_message = Some(StrBytes::from_string(message));
        }
        result.name = name;
        responses.push(result);
    }
    let mut response = DeleteTopicsResponse::default();
    response.responses = responses;
    response
}
