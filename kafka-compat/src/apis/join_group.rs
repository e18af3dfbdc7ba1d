//! JoinGroup: a member joins its group's next generation, waiting until
//! the others have too (see [`crate::group`]).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::group::membership::JoinRequest;

pub(super) async fn handle(
    connection: &Connection,
    header: &RequestHeader,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let version = header.request_api_version;
    let mut response = JoinGroupResponse::default();
    if request.group_id.0.is_empty() {
        response.error_code = ResponseError::InvalidGroupId.code();
        response.member_id = request.member_id;
        return response;
    }
    // Version 0 has no rebalance timeout: the session timeout serves.
    let rebalance_timeout_ms = if version == 0 || request.rebalance_timeout_ms <= 0 {
        request.session_timeout_ms
    } else {
        request.rebalance_timeout_ms
    };
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        client_id: header
            .client_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        client_host: connection.client_host(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_member_id: version >= 4,
    };
    let joined = connection.groups.join(&request.group_id.0, join).await;
    response.error_code = joined.error.map_or(0, |e| e.code());
    response.generation_id = joined.generation;
    response.protocol_type = joined.protocol_type.map(StrBytes::from_string);
    // Nullable from version 7; before, an empty string stands for none.
    response.protocol_name = match joined.protocol_name {
        Some(name) => Some(StrBytes::from_string(name)),
        None if version >= 7 => None,
        None => Some(StrBytes::default()),
    };
    response.leader = StrBytes::from_string(joined.leader);
    response.member_id = StrBytes::from_string(joined.member_id);
    response.members = joined
        .members
        .into_iter()
        .map(|m| {
            let mut member = JoinGroupResponseMember::default();
            member.member_id = StrBytes::from_string(m.id);
            member.group_instance_id = m.instance_id.map(StrBytes::from_string);
            member.metadata = m.metadata;
            member
        })
        .collect();
    response
}
