//! ListGroups: the groups with members, and the groups that only have
//! committed offsets (Empty, as Kafka lists them until their offsets
//! expire). Version 4 filters by state, version 5 by type (every group
//! here is `classic`).

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::group::GroupState;

/// The type of every group served: the classic protocol's.
const GROUP_TYPE: &str = "classic";

pub(super) async fn handle(
    connection: &Connection,
    request: &ListGroupsRequest,
) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    let committed = match connection
        .engine
        .log()
        .metadata()
        .all_committed_offsets()
        .await
    {
        Ok(committed) => committed,
        Err(_) => {
            response.error_code = ResponseError::CoordinatorNotAvailable.code();
            return response;
        }
    };
    let mut groups: BTreeMap<String, (GroupState, String)> = connection
        .groups
        .summaries()
        .into_iter()
        .map(|g| (g.id, (g.state, g.protocol_type)))
        .collect();
    for offset in committed {
        groups
            .entry(offset.group_id)
            .or_insert((GroupState::Empty, String::new()));
    }
    let wanted = |filter: &[StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    if !wanted(&request.types_filter, GROUP_TYPE) {
        return response;
    }
    response.groups = groups
        .into_iter()
        .filter(|(_, (state, _))| wanted(&request.states_filter, state.name()))
        .map(|(id, (state, protocol_type))| {
            let mut group = ListedGroup::default();
            group.group_id = GroupId(StrBytes::from_string(id));
            group.protocol_type = StrBytes::from_string(protocol_type);
            group.group_state = StrBytes::from_static_str(state.name());
            group.group_type = StrBytes::from_static_str(GROUP_TYPE);
            group
        })
        .collect();
    response
}
