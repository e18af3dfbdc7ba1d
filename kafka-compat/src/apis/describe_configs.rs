//! DescribeConfigs: a topic's configs (those Tributary keeps, see
//! `topic_config`) with their values, whether the topic set them, their
//! types, documentation and synonyms. A broker is answered with the few
//! settings that hold for every topic, read-only, so admin tools that ask
//! for them get an answer instead of an error.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use tributary_storage::StreamConfig;

use super::topic_config::{self, DescribedConfig};
use crate::connection::Connection;
use crate::error::storage_error_code;

/// Kafka's resource types.
pub(super) const RESOURCE_TOPIC: i8 = 2;
pub(super) const RESOURCE_BROKER: i8 = 4;

/// Kafka's config sources.
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

pub(super) async fn handle(
    connection: &Connection,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default();
        // The default is an empty message; Kafka answers null on success.
        result.error_message = None;
        result.resource_type = resource.resource_type;
        let configs = match resource.resource_type {
            RESOURCE_TOPIC => topic_configs(connection, &resource, request.include_synonyms),
            RESOURCE_BROKER => Ok(broker_configs(connection)),
            other => Err((
                ResponseError::InvalidRequest,
                format!("resource type {other} has no configs here (topics and brokers do)"),
            )),
        };
        match configs {
            Ok(configs) => {
                result.configs = configs
                    .into_iter()
                    .filter(|c| {
                        resource
                            .configuration_keys
                            .as_ref()
                            .is_none_or(|keys| keys.iter().any(|k| k.as_str() == c.name.as_str()))
                    })
                    .map(|mut c| {
                        if !request.include_documentation {
                            c.documentation = None;
                        }
                        c
                    })
                    .collect();
            }
            Err((code, message)) => {
                result.error_code = code.code();
                result.error_message = Some(StrBytes::from_string(message));
            }
        }
        result.resource_name = resource.resource_name;
        response.results.push(result);
    }
    response
}

fn topic_configs(
    connection: &Connection,
    resource: &DescribeConfigsResource,
    include_synonyms: bool,
) -> Result<Vec<DescribeConfigsResourceResult>, (ResponseError, String)> {
    let log = connection.engine.log();
    let stream = log
        .stream(resource.resource_name.as_str())
        .map_err(|e| (storage_error_code(&e), e.to_string()))?;
    let segment_bytes_max = log.config().segment_bytes_max;
    let defaults = topic_config::describe(&StreamConfig::default(), segment_bytes_max);
    let described = topic_config::describe(&stream.config, segment_bytes_max);
    Ok(described
        .into_iter()
        .zip(defaults)
        .map(|(config, default)| {
            let source = if config.is_set {
                SOURCE_DYNAMIC_TOPIC
            } else {
                SOURCE_DEFAULT
            };
            let mut result = entry(&config, source, false);
            if include_synonyms {
                if config.is_set {
                    result
                        .synonyms
                        .push(synonym(config.name, &config.value, SOURCE_DYNAMIC_TOPIC));
                }
                result.synonyms.push(synonym(
                    &format!("log.{}", config.name),
                    &default.value,
                    SOURCE_DEFAULT,
                ));
            }
            result
        })
        .collect())
}

/// The broker's settings that apply to every topic, read-only.
fn broker_configs(connection: &Connection) -> Vec<DescribeConfigsResourceResult> {
    let log = connection.engine.log();
    let defaults = topic_config::describe(&StreamConfig::default(), log.config().segment_bytes_max);
    let mut configs: Vec<DescribeConfigsResourceResult> = defaults
        .iter()
        .map(|c| {
            let mut result = entry(c, SOURCE_STATIC_BROKER, true);
            result.name = StrBytes::from_string(format!("log.{}", c.name));
            result
        })
        .collect();
    for (name, value) in [
        (
            "auto.create.topics.enable",
            connection.config.auto_create_topics.to_string(),
        ),
        (
            "num.partitions",
            connection.config.default_partitions.to_string(),
        ),
        ("default.replication.factor", "1".to_string()),
    ] {
        let mut result = DescribeConfigsResourceResult::default();
        result.name = StrBytes::from_static_str(name);
        result.value = Some(StrBytes::from_string(value));
        result.read_only = true;
        result.config_source = SOURCE_STATIC_BROKER;
        configs.push(result);
    }
    configs
}

fn entry(config: &DescribedConfig, source: i8, read_only: bool) -> DescribeConfigsResourceResult {
    let mut result = DescribeConfigsResourceResult::default();
    result.name = StrBytes::from_static_str(config.name);
    result.value = Some(StrBytes::from_string(config.value.clone()));
    result.read_only = read_only;
    result.config_source = source;
    result.config_type = config.config_type;
    result.documentation = Some(StrBytes::from_static_str(config.documentation));
    result
}

fn synonym(name: &str, value: &str, source: i8) -> DescribeConfigsSynonym {
    let mut synonym = DescribeConfigsSynonym::default();
    synonym.name = StrBytes::from_string(name.to_string());
    synonym.value = Some(StrBytes::from_string(value.to_string()));
    synonym.source = source;
    synonym
}
