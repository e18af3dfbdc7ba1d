//! IncrementalAlterConfigs: SET and DELETE (back to the default) of a
//! topic's configs, through the same mapping as CreateTopics. APPEND and
//! SUBTRACT are for list configs, which Tributary has none of to change:
//! INVALID_CONFIG. A resource's changes apply together or not at all, and
//! persist in the metadata store (`Log::alter_stream`); retention changes
//! take effect at the next retention pass.

use std::collections::HashSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use tracing::info;

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::topic_config::{self, Refusal};
use crate::connection::Connection;
use crate::error::storage_error_code;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub(super) async fn handle(
    connection: &Connection,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in request.resources {
        let mut result = AlterConfigsResourceResponse::default();
        // The default is an empty message; Kafka answers null on success.
        result.error_message = None;
        let outcome = match resource.resource_type {
            RESOURCE_TOPIC => alter_topic(connection, &resource, request.validate_only).await,
            RESOURCE_BROKER => Err((
                ResponseError::InvalidRequest,
                "broker configs are set in the server's config file, not at runtime".into(),
            )),
            other => Err((
                ResponseError::InvalidRequest,
                format!("resource type {other} has no configs here (topics do)"),
            )),
        };
        if let Err((code, message)) = outcome {
            result.error_code = code.code();
            result.error_message = Some(StrBytes::from_string(message));
        }
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name;
        response.responses.push(result);
    }
    response
}

async fn alter_topic(
    connection: &Connection,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), Refusal> {
    let name = resource.resource_name.as_str();
    let log = connection.engine.log();
    let stream = log
        .stream(name)
        .map_err(|e| (storage_error_code(&e), e.to_string()))?;
    connection
        .engine
        .check_admin(name, tributary_executor::AdminChange::Retention)
        .map_err(|e| (crate::error::error_code(&e), e.to_string()))?;
    let mut config = stream.config.clone();
    let mut seen = HashSet::new();
    for change in &resource.configs {
        let key = change.name.as_str();
        if !seen.insert(key) {
            return Err((
                ResponseError::InvalidRequest,
                format!("config {key} is changed more than once"),
            ));
        }
        match change.config_operation {
            OP_SET => topic_config::set(&mut config, key, change.value.as_deref())?,
            OP_DELETE => topic_config::reset(&mut config, key)?,
            OP_APPEND | OP_SUBTRACT => {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("config {key} is not a list: APPEND and SUBTRACT do not apply"),
                ));
            }
            other => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("unknown config operation {other} for {key}"),
                ));
            }
        }
    }
    if validate_only || config == stream.config {
        return Ok(());
    }
    log.alter_stream(name, config)
        .await
        .map_err(|e| (storage_error_code(&e), e.to_string()))?;
    info!(topic = name, "topic configs altered");
    Ok(())
}
