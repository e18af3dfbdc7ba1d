//! CreatePartitions: grows a topic (stream) to a larger partition count.
//! A count never shrinks (INVALID_PARTITIONS), replica assignments are
//! refused (one broker), `validate_only` checks without changing anything.

use std::collections::{BTreeSet, HashSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::error::storage_error_code;

/// The most partitions a stream may have (the log's limit).
const PARTITIONS_MAX: i32 = 10_000;

pub(super) async fn handle(
    connection: &Connection,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    // As Kafka does: a topic named twice is answered once, INVALID_REQUEST.
    let mut seen = HashSet::new();
    let duplicated: BTreeSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.0.to_string()))
        .map(|t| t.name.0.to_string())
        .collect();
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        if duplicated.contains(topic.name.0.as_str()) {
            continue;
        }
        let mut result = CreatePartitionsTopicResult::default();
        if let Err((code, message)) = grow(connection, &topic, request.validate_only).await {
            result.error_code = code.code();
            result.error_message = Some(StrBytes::from_string(message));
        }
        result.name = topic.name;
        results.push(result);
    }
    for name in duplicated {
        let mut result = CreatePartitionsTopicResult::default();
        result.error_code = ResponseError::InvalidRequest.code();
        result.error_message = Some(StrBytes::from_static_str("duplicate topic in request"));
        result.name = TopicName(StrBytes::from_string(name));
        results.push(result);
    }
    let mut response = CreatePartitionsResponse::default();
    response.results = results;
    response
}

async fn grow(
    connection: &Connection,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    let name = topic.name.0.as_str();
    let log = connection.engine.log();
    let stream = log
        .stream(name)
        .map_err(|e| (storage_error_code(&e), e.to_string()))?;
    connection
        .engine
        .check_admin(name, tributary_executor::AdminChange::Partitions)
        .map_err(|e| (crate::error::error_code(&e), e.to_string()))?;
    let current = stream.config.partitions;
    if topic.count <= current as i32 {
        let message = if topic.count == current as i32 {
            format!("topic '{name}' already has {current} partitions")
        } else {
            format!(
                "topic '{name}' has {current} partitions, more than the {} asked for: partitions can only be added",
                topic.count
            )
        };
        return Err((ResponseError::InvalidPartitions, message));
    }
    if topic.count > PARTITIONS_MAX {
        return Err((
            ResponseError::InvalidPartitions,
            format!(
                "{} partitions: a topic has at most {PARTITIONS_MAX}",
                topic.count
            ),
        ));
    }
    if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            "replica assignments are not supported on a single broker".into(),
        ));
    }
    if validate_only {
        return Ok(());
    }
    log.add_partitions(name, topic.count as u32)
        .await
        .map(|_| ())
        .map_err(|e| {
            // Another request grew the topic meanwhile.
            let code = match e {
                tributary_storage::Error::InvalidConfig(_) => ResponseError::InvalidPartitions,
                _ => storage_error_code(&e),
            };
            (code, e.to_string())
        })
}
