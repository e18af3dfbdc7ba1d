//! DescribeGroups: each group's state, protocol and members (with their
//! metadata and assignments when Stable). A group that only has committed
//! offsets is Empty; one unknown altogether is Dead, as Kafka answers.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::group::GroupState;

/// The operations on a group a client may do here (no ACLs): READ (3),
/// DELETE (6) and DESCRIBE (8), as a bit set.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub(super) async fn handle(
    connection: &Connection,
    header: &RequestHeader,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for group_id in request.groups {
        let mut described = DescribedGroup::default();
        if header.request_api_version >= 3 && request.include_authorized_operations {
            described.authorized_operations = GROUP_OPERATIONS;
        }
        match connection.groups.summary(&group_id.0) {
            Some(summary) => {
                described.group_state = StrBytes::from_static_str(summary.state.name());
                described.protocol_type = StrBytes::from_string(summary.protocol_type);
                described.protocol_data = StrBytes::from_string(summary.protocol_name);
                described.members = summary
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut member = DescribedGroupMember::default();
                        member.member_id = StrBytes::from_string(m.id);
                        member.group_instance_id = m.instance_id.map(StrBytes::from_string);
                        member.client_id = StrBytes::from_string(m.client_id);
                        member.client_host = StrBytes::from_string(m.client_host);
                        member.member_metadata = m.metadata;
                        member.member_assignment = m.assignment;
                        member
                    })
                    .collect();
            }
            None => {
                let committed = connection
                    .engine
                    .log()
                    .metadata()
                    .committed_offsets(&group_id.0)
                    .await;
                let state = match committed {
                    Ok(offsets) if offsets.is_empty() => GroupState::Dead,
                    Ok(_) => GroupState::Empty,
                    Err(_) => {
                        described.error_code = ResponseError::CoordinatorNotAvailable.code();
                        GroupState::Dead
                    }
                };
                described.group_state = StrBytes::from_static_str(state.name());
            }
        }
        described.group_id = group_id;
        response.groups.push(described);
    }
    response
}
