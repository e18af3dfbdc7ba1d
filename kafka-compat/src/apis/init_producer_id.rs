//! InitProducerId: a producer id for an idempotent producer
//! (`enable.idempotence=true`), unique across restarts and nodes sharing
//! the metadata store.
//!
//! As in Kafka, a request without a transactional id always gets a new
//! producer id at epoch 0, also when it names its current id and epoch
//! (KIP-360, v3+, sent after a producer lost track of its sequences): the
//! new id starts every partition's sequence afresh, and two producers can
//! never share one. Transactions are not served: a transactional id is
//! refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients report
//! as a fatal error naming it, instead of retrying forever as they would
//! on COORDINATOR_NOT_AVAILABLE.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::{debug, warn};

use crate::connection::Connection;

pub(super) async fn handle(
    connection: &Connection,
    request: &InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    if let Some(transactional_id) = &request.transactional_id {
        debug!(transactional_id = %transactional_id.as_str(), "transactions are not supported");
        response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return response;
    }
    match connection.engine.log().metadata().next_producer_id().await {
        Ok(id) => {
            debug!(
                producer_id = id,
                previous_id = request.producer_id.0,
                previous_epoch = request.producer_epoch,
                "producer id allocated"
            );
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(e) => {
            warn!(error = %e, "could not allocate a producer id");
            // Retriable: the client asks again.
            response.error_code = ResponseError::CoordinatorNotAvailable.code();
        }
    }
    response
}
