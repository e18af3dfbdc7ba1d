//! FindCoordinator: this node coordinates every group (one node).

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::metadata::NODE_ID;
use crate::connection::Connection;

pub(super) fn handle(
    connection: &Connection,
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    answer(
        StrBytes::from_string(connection.config.advertised_host.clone()),
        i32::from(connection.config.advertised_port),
        request,
        version,
    )
}

/// This node, at `host:port`, as the coordinator of what `request` asks
/// for, in the fields of `version`.
fn answer(
    host: StrBytes,
    port: i32,
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    // Versions 0-3 answer for one key in these fields; from version 4 they
    // are gone (a response that sets them cannot be encoded), and each key
    // asked has its own answer.
    if version < 4 {
        response.node_id = BrokerId(NODE_ID);
        response.host = host;
        response.port = port;
        return response;
    }
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

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::protocol::Encodable;

    use super::*;

    #[test]
    fn every_version_is_answered_in_its_own_fields() {
        for version in 0..=4 {
            let mut request = FindCoordinatorRequest::default();
            if version < 4 {
                request.key = StrBytes::from_static_str("g");
            } else {
                request.coordinator_keys = vec![
                    StrBytes::from_static_str("g"),
                    StrBytes::from_static_str("h"),
                ];
            }
            let response = answer(StrBytes::from_static_str("h1"), 9092, &request, version);
            let mut encoded = BytesMut::new();
            response
                .encode(&mut encoded, version)
                .unwrap_or_else(|e| panic!("version {version}: {e}"));
            if version < 4 {
                assert_eq!((response.host.as_str(), response.port), ("h1", 9092));
            } else {
                let keys: Vec<&str> = response
                    .coordinators
                    .iter()
                    .map(|c| c.key.as_str())
                    .collect();
                assert_eq!(keys, ["g", "h"]);
                assert!(response.coordinators.iter().all(|c| c.port == 9092));
            }
        }
    }
}
