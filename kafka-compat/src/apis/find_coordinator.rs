//! FindCoordinator: this node coordinates every group (one node).

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::metadata::NODE_ID;
use crate::connection::Connection;

pub(super) fn handle(
    connection: &Connection,
    request: &FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let host = StrBytes::from_string(connection.config.advertised_host.clone());
    let port = i32::from(connection.config.advertised_port);
    let mut response = FindCoordinatorResponse::default();
    // Versions 0-3 answer for one key, version 4 for each key asked.
    response.node_id = BrokerId(NODE_ID);
    response.host = host.clone();
    response.port = port;
    response.coordinators = request
        .coordinator_keys
        .iter()
        .map(|key| {
            let mut coordinator = Coordinator::default();
            coordinator.key = key.clone();
            coordinator.node_id = BrokerId(NODE_ID);
            coordinator.host = host.clone();
            coordinator.port = port;
            coordinator
        })
        .collect();
    response
}
