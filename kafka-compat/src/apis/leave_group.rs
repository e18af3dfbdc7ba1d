//! LeaveGroup: members leave (one in versions 0-2, a batch from 3 on) and
//! the rest of the group rebalances without waiting for their sessions to
//! end.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, RequestHeader};

use crate::connection::Connection;

pub(super) fn handle(
    connection: &Connection,
    header: &RequestHeader,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let mut response = LeaveGroupResponse::default();
    let group = &request.group_id.0;
    if group.is_empty() {
        response.error_code = ResponseError::InvalidGroupId.code();
        return response;
    }
    if header.request_api_version <= 2 {
        let result = connection.groups.leave(group, &request.member_id, None);
        response.error_code = result.err().map_or(0, |e| e.code());
        return response;
    }
    response.members = request
        .members
        .into_iter()
        .map(|asked| {
            let result = connection.groups.leave(
                group,
                &asked.member_id,
                asked.group_instance_id.as_deref(),
            );
            let mut member = MemberResponse::default();
            member.error_code = result.err().map_or(0, |e| e.code());
            member.member_id = asked.member_id;
            member.group_instance_id = asked.group_instance_id;
            member
        })
        .collect();
    response
}
