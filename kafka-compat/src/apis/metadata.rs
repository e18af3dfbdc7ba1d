//! Metadata: this one broker, and the streams as topics. A topic that does
//! not exist is created as a raw stream when the broker allows it and the
//! client asks (Kafka's auto-creation).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tracing::info;
use tributary_executor::ExecError;
use tributary_storage::StreamConfig;

use crate::connection::Connection;
use crate::error::error_code;

/// The id of the one broker.
pub(crate) const NODE_ID: i32 = 0;

pub(super) async fn handle(connection: &Connection, request: MetadataRequest) -> MetadataResponse {
    let log = connection.engine.log();
    let names: Vec<String> = match &request.topics {
        None => log.streams().into_iter().map(|s| s.name).collect(),
        Some(topics) => topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect(),
    };
    let create = request.allow_auto_topic_creation && connection.config.auto_create_topics;
    let mut topics = Vec::with_capacity(names.len());
    for name in names {
        topics.push(describe_topic(connection, name, create).await);
    }
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = BrokerId(NODE_ID);
    broker.host = StrBytes::from_string(connection.config.advertised_host.clone());
    broker.port = i32::from(connection.config.advertised_port);
    let mut response = MetadataResponse::default();
    response.brokers = vec![broker];
    response.cluster_id = Some(StrBytes::from_static_str("tributary"));
    response.controller_id = BrokerId(NODE_ID);
    response.topics = topics;
    response
}

async fn describe_topic(
    connection: &Connection,
    name: String,
    create: bool,
) -> MetadataResponseTopic {
    let mut topic = MetadataResponseTopic::default();
    topic.name = Some(TopicName(StrBytes::from_string(name.clone())));
    if !is_legal_topic_name(&name) {
        topic.error_code = ResponseError::InvalidTopicException.code();
        return topic;
    }
    let log = connection.engine.log();
    let stream: Result<_, ExecError> = match log.stream(&name) {
        Ok(stream) => Ok(stream),
        Err(tributary_storage::Error::UnknownStream(_)) if create => {
            match connection
                .engine
                .create_raw_stream(
                    &name,
                    StreamConfig {
                        partitions: connection.config.default_partitions,
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(stream) => {
                    info!(topic = %name, partitions = stream.config.partitions, "created topic");
                    Ok(stream)
                }
                // Another client created it meanwhile.
                Err(_) => log.stream(&name).map_err(Into::into),
            }
        }
        Err(e) => Err(e.into()),
    };
    match stream {
        Ok(stream) => {
            topic.partitions = (0..stream.config.partitions)
                .map(|p| {
                    let mut partition = MetadataResponsePartition::default();
                    partition.partition_index = p as i32;
                    partition.leader_id = BrokerId(NODE_ID);
                    partition.leader_epoch = 0;
                    partition.replica_nodes = vec![BrokerId(NODE_ID)];
                    partition.isr_nodes = vec![BrokerId(NODE_ID)];
                    partition
                })
                .collect();
        }
        Err(e) => topic.error_code = error_code(&e).code(),
    }
    topic
}

/// Kafka's rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub(super) fn is_legal_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}
