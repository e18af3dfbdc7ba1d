//! CreateTopics: a topic is a raw stream. Partitions and the topic configs
//! Tributary keeps (retention, segment size, timestamp type) are taken;
//! anything else is refused by name, never silently ignored.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use tributary_storage::StreamConfig;

use super::metadata::is_legal_topic_name;
use super::topic_config;
use crate::connection::Connection;
use crate::error::error_code;

pub(super) async fn handle(
    connection: &Connection,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut result = CreatableTopicResult::default();
        result.name = topic.name.clone();
        match stream_config(connection, &topic) {
            Err((code, message)) => refuse(&mut result, code, message),
            Ok(config) => {
                result.num_partitions = config.partitions as i32;
                result.replication_factor = 1;
                let name = topic.name.0.as_str();
                let outcome = if request.validate_only {
                    match connection.engine.log().stream(name) {
                        Ok(_) => Err(ResponseError::TopicAlreadyExists),
                        Err(_) => Ok(()),
                    }
                    .map_err(|code| (code, format!("topic '{name}' already exists")))
                } else {
                    connection
                        .engine
                        .create_raw_stream(name, config)
                        .await
                        .map(|_| ())
                        .map_err(|e| (error_code(&e), e.to_string()))
                };
                if let Err((code, message)) = outcome {
                    refuse(&mut result, code, message);
                }
            }
        }
        results.push(result);
    }
    let mut response = CreateTopicsResponse::default();
    response.topics = results;
    response
}

fn refuse(result: &mut CreatableTopicResult, code: ResponseError, message: String) {
    result.error_code = code.code();
    result.error_message = Some(StrBytes::from_string(message));
    result.num_partitions = -1;
    result.replication_factor = -1;
}

/// The stream settings a topic asks for, or the error that refuses it.
fn stream_config(
    connection: &Connection,
    topic: &CreatableTopic,
) -> Result<StreamConfig, (ResponseError, String)> {
    let name = topic.name.0.as_str();
    if !is_legal_topic_name(name) {
        return Err((
            ResponseError::InvalidTopicException,
            format!("'{name}' is not a legal topic name (1 to 249 of a-z A-Z 0-9 . _ -)"),
        ));
    }
    let partitions = match topic.num_partitions {
        -1 => connection.config.default_partitions,
        n if n > 0 => n as u32,
        n => {
            return Err((
                ResponseError::InvalidPartitions,
                format!("{n} partitions: a topic needs at least one"),
            ));
        }
    };
    if !matches!(topic.replication_factor, -1 | 1) {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!(
                "replication factor {}: this broker keeps one copy (durability comes from the object store)",
                topic.replication_factor
            ),
        ));
    }
    if !topic.assignments.is_empty() {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            "replica assignments are not supported on a single broker".into(),
        ));
    }
    let mut config = StreamConfig {
        partitions,
        ..Default::default()
    };
    for setting in &topic.configs {
        topic_config::set(&mut config, setting.name.as_str(), setting.value.as_deref())?;
    }
    Ok(config)
}
