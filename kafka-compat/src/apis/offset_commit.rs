//! OffsetCommit: a group's committed offsets go to the metadata store and
//! survive restarts. A commit with a member id and generation is checked
//! against the group first: a member of an older generation gets
//! ILLEGAL_GENERATION, one the group does not know UNKNOWN_MEMBER_ID, and
//! one whose generation is still being assigned REBALANCE_IN_PROGRESS.
//! Generation -1 without a member id (a consumer that assigns its
//! partitions itself) is taken for a group without members, as Kafka does.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use tributary_storage::metadata::CommittedOffset;

use crate::connection::Connection;

pub(super) async fn handle(
    connection: &Connection,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let refusal = if group.is_empty() {
        Some(ResponseError::InvalidGroupId)
    } else {
        connection
            .groups
            .check_commit(
                &group,
                &request.member_id,
                request.group_instance_id.as_deref(),
                request.generation_id_or_member_epoch,
            )
            .err()
    };
    let log = connection.engine.log();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut answer = OffsetCommitResponseTopic::default();
        for asked in &topic.partitions {
            let mut partition = OffsetCommitResponsePartition::default();
            partition.partition_index = asked.partition_index;
            let code = match refusal {
                Some(code) => Some(code),
                None => {
                    let exists = u32::try_from(asked.partition_index)
                        .ok()
                        .and_then(|p| log.partition(&topic.name.0, p).ok().map(|_| p));
                    match exists {
                        None => Some(ResponseError::UnknownTopicOrPartition),
                        Some(p) => {
                            let offset = CommittedOffset {
                                group_id: group.clone(),
                                stream: topic.name.0.to_string(),
                                partition: p,
                                offset: asked.committed_offset,
                                metadata: asked.committed_metadata.as_ref().map(|m| m.to_string()),
                            };
                            log.metadata()
                                .commit_offset(&offset)
                                .await
                                .err()
                                .map(|_| ResponseError::CoordinatorNotAvailable)
                        }
                    }
                }
            };
            partition.error_code = code.map_or(0, |c| c.code());
            answer.partitions.push(partition);
        }
        answer.name = topic.name;
        topics.push(answer);
    }
    let mut response = OffsetCommitResponse::default();
    response.topics = topics;
    response
}
