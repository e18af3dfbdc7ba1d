//! The topic configs Tributary keeps, mapped to and from a stream's
//! [`StreamConfig`]: one table for CreateTopics, DescribeConfigs and
//! IncrementalAlterConfigs, so the three agree on names, values and
//! refusals.

use kafka_protocol::ResponseError;
use tributary_storage::{StreamConfig, TimestampType};

/// The topic configs served, in the order DescribeConfigs lists them.
pub(super) const TOPIC_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "message.timestamp.type",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
];

/// Kafka's config types (DescribeConfigs v3+).
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

/// A refusal: the Kafka code and a message naming the config.
pub(super) type Refusal = (ResponseError, String);

/// One topic config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DescribedConfig {
    pub(super) name: &'static str,
    pub(super) value: String,
    /// The stream's own value, not the default.
    pub(super) is_set: bool,
    /// Kafka's config type code.
    pub(super) config_type: i8,
    pub(super) documentation: &'static str,
}

/// Sets the topic config `name` to `value` in `config`, or refuses it with
/// INVALID_CONFIG naming it.
pub(super) fn set(
    config: &mut StreamConfig,
    name: &str,
    value: Option<&str>,
) -> Result<(), Refusal> {
    let value = value.unwrap_or_default();
    let invalid = || {
        (
            ResponseError::InvalidConfig,
            format!("invalid value '{value}' for {name}"),
        )
    };
    let number = || value.parse::<i64>().map_err(|_| invalid());
    // -1 means "no limit" in Kafka's configs.
    let limit = |n: i64| u64::try_from(n).ok();
    match name {
        "retention.ms" => config.retention_ms = limit(number()?),
        "retention.bytes" => config.retention_bytes = limit(number()?),
        "segment.bytes" => {
            config.segment_bytes = Some(limit(number()?).filter(|n| *n > 0).ok_or_else(invalid)?)
        }
        "message.timestamp.type" => {
            config.timestamp_type = match value {
                "CreateTime" => TimestampType::CreateTime,
                "LogAppendTime" => TimestampType::LogAppendTime,
                _ => return Err(invalid()),
            }
        }
        "cleanup.policy" if value == "delete" => {}
        "cleanup.policy" => {
            return Err((
                ResponseError::InvalidConfig,
                format!("invalid value '{value}' for cleanup.policy: only delete is supported"),
            ));
        }
        other => return Err(unsupported(other)),
    }
    Ok(())
}

/// Puts the topic config `name` back to its default (IncrementalAlterConfigs'
/// DELETE).
pub(super) fn reset(config: &mut StreamConfig, name: &str) -> Result<(), Refusal> {
    let default = StreamConfig::default();
    match name {
        "retention.ms" => config.retention_ms = default.retention_ms,
        "retention.bytes" => config.retention_bytes = default.retention_bytes,
        "segment.bytes" => config.segment_bytes = default.segment_bytes,
        "message.timestamp.type" => config.timestamp_type = default.timestamp_type,
        "cleanup.policy" => {}
        other => return Err(unsupported(other)),
    }
    Ok(())
}

/// Every topic config of a stream with its value; `segment_bytes_max` is
/// the log's segment size, the default of `segment.bytes`.
pub(super) fn describe(config: &StreamConfig, segment_bytes_max: u64) -> Vec<DescribedConfig> {
    let limit = |n: Option<u64>| n.map_or_else(|| "-1".to_string(), |n| n.to_string());
    TOPIC_CONFIGS
        .iter()
        .map(|&name| {
            let (value, is_set, config_type, documentation) = match name {
                "cleanup.policy" => (
                    "delete".to_string(),
                    false,
                    TYPE_LIST,
                    "Old segments are deleted by retention (compaction is not supported).",
                ),
                "message.timestamp.type" => (
                    match config.timestamp_type {
                        TimestampType::CreateTime => "CreateTime",
                        TimestampType::LogAppendTime => "LogAppendTime",
                    }
                    .to_string(),
                    config.timestamp_type != TimestampType::default(),
                    TYPE_STRING,
                    "CreateTime keeps the producer's timestamps; LogAppendTime stamps the append time.",
                ),
                "retention.bytes" => (
                    limit(config.retention_bytes),
                    config.retention_bytes.is_some(),
                    TYPE_LONG,
                    "Oldest segments are deleted while a partition holds more bytes (-1: no limit).",
                ),
                "retention.ms" => (
                    limit(config.retention_ms),
                    config.retention_ms.is_some(),
                    TYPE_LONG,
                    "Segments whose newest record is older are deleted (-1: kept forever).",
                ),
                _ => (
                    config
                        .segment_bytes
                        .unwrap_or(segment_bytes_max)
                        .to_string(),
                    config.segment_bytes.is_some(),
                    TYPE_INT,
                    "A write-ahead segment is sealed and uploaded at this size.",
                ),
            };
            DescribedConfig {
                name,
                value,
                is_set,
                config_type,
                documentation,
            }
        })
        .collect()
}

fn unsupported(name: &str) -> Refusal {
    (
        ResponseError::InvalidConfig,
        format!(
            "topic config {name} is not supported (supported: retention.ms, retention.bytes, segment.bytes, message.timestamp.type, cleanup.policy=delete)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_reset_and_describe_agree() {
        let mut config = StreamConfig::default();
        set(&mut config, "retention.ms", Some("3600000")).unwrap();
        set(&mut config, "segment.bytes", Some("1048576")).unwrap();
        set(&mut config, "message.timestamp.type", Some("LogAppendTime")).unwrap();
        let described = describe(&config, 16 << 20);
        let values: Vec<(&str, &str, bool)> = described
            .iter()
            .map(|c| (c.name, c.value.as_str(), c.is_set))
            .collect();
        assert_eq!(
            values,
            [
                ("cleanup.policy", "delete", false),
                ("message.timestamp.type", "LogAppendTime", true),
                ("retention.bytes", "-1", false),
                ("retention.ms", "3600000", true),
                ("segment.bytes", "1048576", true),
            ]
        );
        for name in TOPIC_CONFIGS {
            reset(&mut config, name).unwrap();
        }
        assert_eq!(config, StreamConfig::default());
        assert_eq!(describe(&config, 7)[4].value, "7");
    }

    #[test]
    fn bad_values_and_names_are_invalid_config() {
        let mut config = StreamConfig::default();
        for (name, value) in [
            ("retention.ms", "soon"),
            ("segment.bytes", "0"),
            ("segment.bytes", "-1"),
            ("message.timestamp.type", "Now"),
            ("cleanup.policy", "compact"),
            ("compression.type", "zstd"),
        ] {
            let (code, message) = set(&mut config, name, Some(value)).unwrap_err();
            assert_eq!(code, ResponseError::InvalidConfig);
            assert!(message.contains(name), "{message}");
        }
        assert_eq!(config, StreamConfig::default());
        // -1 is Kafka's "no limit".
        set(&mut config, "retention.bytes", Some("-1")).unwrap();
        assert_eq!(config.retention_bytes, None);
        assert!(reset(&mut config, "max.message.bytes").is_err());
    }
}
