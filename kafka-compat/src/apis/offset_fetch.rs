//! OffsetFetch: a group's committed offsets, from the metadata store. A
//! partition the group never committed has offset -1 (the consumer then
//! starts where its `auto.offset.reset` says).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;

pub(super) async fn handle(
    connection: &Connection,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    let committed = match connection
        .engine
        .log()
        .metadata()
        .committed_offsets(&request.group_id.0)
        .await
    {
        Ok(committed) => committed,
        Err(_) => {
            response.error_code = ResponseError::CoordinatorNotAvailable.code();
            return response;
        }
    };
    let lookup = |stream: &str, partition: i32| {
        committed
            .iter()
            .find(|c| c.stream == stream && i64::from(c.partition) == i64::from(partition))
    };
    // The partitions asked for, or (topics null) every one committed.
    let asked: Vec<(TopicName, Vec<i32>)> = match request.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect(),
        None => {
            let mut all: Vec<(TopicName, Vec<i32>)> = Vec::new();
            for c in &committed {
                let partition = c.partition as i32;
                match all.iter_mut().find(|(name, _)| name.0.as_str() == c.stream) {
                    Some((_, partitions)) => partitions.push(partition),
                    None => all.push((
                        TopicName(StrBytes::from_string(c.stream.clone())),
                        vec![partition],
                    )),
                }
            }
            all
        }
    };
    response.topics = asked
        .into_iter()
        .map(|(name, partitions)| {
            let mut topic = OffsetFetchResponseTopic::default();
            topic.partitions = partitions
                .into_iter()
                .map(|index| {
                    let mut partition = OffsetFetchResponsePartition::default();
                    partition.partition_index = index;
                    match lookup(&name.0, index) {
                        Some(c) => {
                            partition.committed_offset = c.offset;
                            partition.metadata = Some(StrBytes::from_string(
                                c.metadata.clone().unwrap_or_default(),
                            ));
                        }
                        None => {
                            partition.committed_offset = -1;
                            partition.metadata = Some(StrBytes::default());
                        }
                    }
                    partition
                })
                .collect();
            topic.name = name;
            topic
        })
        .collect();
    response
}
