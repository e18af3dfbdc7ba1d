//! Heartbeat: keeps a member's session alive, and tells it when its group
//! rebalances (REBALANCE_IN_PROGRESS: join again).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::connection::Connection;

pub(super) fn handle(connection: &Connection, request: &HeartbeatRequest) -> HeartbeatResponse {
    let result = if request.group_id.0.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else {
        connection.groups.heartbeat(
            &request.group_id.0,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        )
    };
    let mut response = HeartbeatResponse::default();
    response.error_code = result.err().map_or(0, |e| e.code());
    response
}
