//! SyncGroup: the leader hands in the generation's assignments; every
//! member (the leader too) gets its own, followers waiting for the leader.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::group::membership::SyncRequest;

pub(super) async fn handle(
    connection: &Connection,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let mut response = SyncGroupResponse::default();
    if request.group_id.0.is_empty() {
        response.error_code = ResponseError::InvalidGroupId.code();
        return response;
    }
    let sync = SyncRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation: request.generation_id,
        protocol_type: request.protocol_type.map(|p| p.to_string()),
        protocol_name: request.protocol_name.map(|p| p.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    match connection.groups.sync(&request.group_id.0, sync).await {
        Ok(synced) => {
            response.protocol_type = synced.protocol_type.map(StrBytes::from_string);
            response.protocol_name = synced.protocol_name.map(StrBytes::from_string);
            response.assignment = synced.assignment;
        }
        Err(error) => response.error_code = error.code(),
    }
    response
}
