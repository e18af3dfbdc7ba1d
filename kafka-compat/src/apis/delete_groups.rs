//! DeleteGroups: an empty group's committed offsets are deleted from the
//! metadata store; a group with members is refused (NON_EMPTY_GROUP), an
//! unknown one is GROUP_ID_NOT_FOUND.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use tracing::info;

use crate::connection::Connection;

pub(super) async fn handle(
    connection: &Connection,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for group_id in request.groups_names {
        let mut result = DeletableGroupResult::default();
        result.error_code = delete(connection, &group_id.0)
            .await
            .err()
            .map_or(0, |e| e.code());
        result.group_id = group_id;
        response.results.push(result);
    }
    response
}

async fn delete(connection: &Connection, group_id: &str) -> Result<(), ResponseError> {
    if group_id.is_empty() {
        return Err(ResponseError::InvalidGroupId);
    }
    let in_memory = connection.groups.summary(group_id).is_some();
    connection.groups.forget(group_id)?;
    let deleted = connection
        .engine
        .log()
        .metadata()
        .delete_group(group_id)
        .await
        .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
    if deleted == 0 && !in_memory {
        return Err(ResponseError::GroupIdNotFound);
    }
    info!(group = group_id, offsets = deleted, "group deleted");
    Ok(())
}
