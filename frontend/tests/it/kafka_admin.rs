//! Kafka's admin APIs against a real server: librdkafka's admin client
//! grows a topic (CreatePartitions), describes its configs
//! (DescribeConfigs) and deletes records (DeleteRecords); a raw-protocol
//! client alters configs (IncrementalAlterConfigs, which librdkafka's Rust
//! wrapper does not offer) and checks the error codes of each. Changes
//! survive a SIGKILL and restart.

use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DeleteRecordsRequest, DeleteRecordsResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, FetchRequest, FetchResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka_groups::Raw;
use crate::support::{Server, connect, start};

pub(crate) fn admin(server: &Server) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", &server.kafka)
        .create()
        .unwrap()
}

pub(crate) fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

fn producer(server: &Server) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &server.kafka)
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap()
}

/// A consumer that fails instead of jumping when its offset is out of range.
fn consumer(kafka: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .set("group.id", "admin-tests")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error")
        .create()
        .unwrap()
}

/// The first message (offset, payload) of `partition` from `offset`
/// (blocking: run it off the async threads).
fn first_message(kafka: &str, topic: &str, partition: i32, offset: Offset) -> (i64, Vec<u8>) {
    let consumer = consumer(kafka);
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, offset)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "no message from {topic}[{partition}]"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            return (
                message.offset(),
                message.payload().unwrap_or_default().to_vec(),
            );
        }
    }
}

/// The (low, high) watermarks of a partition, by ListOffsets.
fn watermarks(kafka: &str, topic: &str, partition: i32) -> (i64, i64) {
    consumer(kafka)
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap()
}

/// The value, source and default flag of each config DescribeConfigs
/// reports for a topic, in `names`' order.
async fn described(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    names: &[&str],
) -> Vec<(String, String, bool)> {
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options())
        .await
        .unwrap();
    let resource = results.into_iter().next().unwrap().unwrap();
    let entries = resource.entry_map();
    names
        .iter()
        .map(|name| {
            let entry = entries
                .get(name)
                .unwrap_or_else(|| panic!("{name} not described"));
            let source = match entry.source {
                ConfigSource::DynamicTopic => "topic",
                ConfigSource::Default => "default",
                _ => "other",
            };
            (
                entry.value.clone().unwrap_or_default(),
                source.to_string(),
                entry.is_default,
            )
        })
        .collect()
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// One IncrementalAlterConfigs of a topic's configs (name, operation,
/// value); the error code and message.
fn alter(
    raw: &mut Raw,
    version: i16,
    topic: &str,
    changes: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let mut resource = AlterConfigsResource::default();
    resource.resource_type = 2;
    resource.resource_name = text(topic);
    resource.configs = changes
        .iter()
        .map(|(name, operation, value)| {
            let mut config = AlterableConfig::default();
            config.name = text(name);
            config.config_operation = *operation;
            config.value = value.map(text);
            config
        })
        .collect();
    let mut request = IncrementalAlterConfigsRequest::default();
    request.resources = vec![resource];
    request.validate_only = validate_only;
    let response: IncrementalAlterConfigsResponse =
        raw.call(ApiKey::IncrementalAlterConfigs, version, &request);
    assert_eq!(response.responses.len(), 1);
    let answer = &response.responses[0];
    assert_eq!(answer.resource_name.as_str(), topic);
    (
        answer.error_code,
        answer.error_message.as_ref().map(|m| m.to_string()),
    )
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_grow_and_their_configs_change_and_stay_changed() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = start(&data_dir);
    let client = connect(&server).await;
    let admin = admin(&server);

    let topic = NewTopic::new("grown", 2, TopicReplication::Fixed(1))
        .set("retention.ms", "3600000")
        .set("segment.bytes", "1048576");
    let results = admin.create_topics([&topic], &options()).await.unwrap();
    assert_eq!(results, [Ok("grown".to_string())]);

    // DescribeConfigs: what was set at creation, and the defaults.
    let names = [
        "retention.ms",
        "segment.bytes",
        "retention.bytes",
        "cleanup.policy",
        "message.timestamp.type",
    ];
    let expected_at_creation = [
        ("3600000", "topic", false),
        ("1048576", "topic", false),
        ("-1", "default", true),
        ("delete", "default", true),
        ("CreateTime", "default", true),
    ];
    let as_owned = |e: &[(&str, &str, bool)]| -> Vec<(String, String, bool)> {
        e.iter()
            .map(|(v, s, d)| (v.to_string(), s.to_string(), *d))
            .collect()
    };
    assert_eq!(
        described(&admin, "grown", &names).await,
        as_owned(&expected_at_creation)
    );
    // rdkafka reports no per-resource errors for DescribeConfigs: an
    // unknown topic, the key filter and synonyms are checked raw below.
    let results = admin
        .describe_configs([&ResourceSpecifier::Broker(0)], &options())
        .await
        .unwrap();
    let broker = results[0].as_ref().unwrap();
    let broker_entries = broker.entry_map();
    assert_eq!(
        broker_entries["num.partitions"].value.as_deref(),
        Some("1"),
        "the broker's configs are answered"
    );
    assert!(broker_entries["num.partitions"].is_read_only);

    let mut raw = Raw::connect(&server.kafka);
    for version in 1..=4 {
        assert_eq!(
            raw_describe(
                &mut raw,
                version,
                "grown",
                &["retention.ms", "max.message.bytes"]
            ),
            Ok(vec![(
                "retention.ms".to_string(),
                "3600000".to_string(),
                1,
                vec![
                    ("retention.ms".to_string(), "3600000".to_string(), 1),
                    ("log.retention.ms".to_string(), "-1".to_string(), 5),
                ]
            )]),
            "v{version}"
        );
        assert_eq!(
            raw_describe(&mut raw, version, "nope", &[]),
            Err(ResponseError::UnknownTopicOrPartition.code()),
            "v{version}"
        );
    }

    // CreatePartitions: 2 → 4; fewer or unknown refused; validate_only
    // changes nothing.
    let results = admin
        .create_partitions([&NewPartitions::new("grown", 4)], &options())
        .await
        .unwrap();
    assert_eq!(results, [Ok("grown".to_string())]);
    let results = admin
        .create_partitions(
            [
                &NewPartitions::new("grown", 3),
                &NewPartitions::new("nope", 2),
            ],
            &options(),
        )
        .await
        .unwrap();
    let codes: Vec<Option<RDKafkaErrorCode>> = results
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.1))
        .collect();
    assert_eq!(
        codes,
        [
            Some(RDKafkaErrorCode::InvalidPartitions),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition),
        ]
    );
    let same = admin
        .create_partitions([&NewPartitions::new("grown", 4)], &options())
        .await
        .unwrap();
    assert_eq!(
        same[0].as_ref().err().map(|e| e.1),
        Some(RDKafkaErrorCode::InvalidPartitions)
    );
    let results = admin
        .create_partitions(
            [&NewPartitions::new("grown", 8)],
            &options().validate_only(true),
        )
        .await
        .unwrap();
    assert_eq!(results, [Ok("grown".to_string())]);
    let metadata = admin
        .inner()
        .fetch_metadata(Some("grown"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 4);

    // The new partition takes records, a consumer reads them, SQL sees them.
    let producer = producer(&server);
    let delivered = producer
        .send(
            FutureRecord::to("grown")
                .key("k")
                .payload("in partition 3")
                .partition(3),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!((delivered.partition, delivered.offset), (3, 0));
    let kafka = server.kafka.clone();
    let first =
        tokio::task::spawn_blocking(move || first_message(&kafka, "grown", 3, Offset::Beginning))
            .await
            .unwrap();
    assert_eq!(first, (0, b"in partition 3".to_vec()));
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM grown WHERE _partition = 3 \
             AND convert_from(value, 'UTF8') = 'in partition 3'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);

    // IncrementalAlterConfigs at each version: SET and DELETE.
    for version in 0..=1 {
        let ok = alter(
            &mut raw,
            version,
            "grown",
            &[
                ("retention.ms", SET, Some("60000")),
                ("segment.bytes", DELETE, None),
            ],
            false,
        );
        assert_eq!(ok, (0, None), "v{version}");
    }
    // Refusals: APPEND and SUBTRACT, a bad value, an unknown config, an
    // unknown topic; validate_only changes nothing.
    let refusals = [
        ("grown", ("cleanup.policy", APPEND, Some("compact"))),
        ("grown", ("cleanup.policy", SUBTRACT, Some("delete"))),
        ("grown", ("retention.ms", SET, Some("a while"))),
        ("grown", ("compression.type", SET, Some("zstd"))),
        ("nope", ("retention.ms", SET, Some("1"))),
    ];
    let codes: Vec<i16> = refusals
        .iter()
        .map(|(topic, change)| alter(&mut raw, 1, topic, &[*change], false).0)
        .collect();
    let invalid = ResponseError::InvalidConfig.code();
    assert_eq!(
        codes,
        [
            invalid,
            invalid,
            invalid,
            invalid,
            ResponseError::UnknownTopicOrPartition.code()
        ]
    );
    let (_, message) = alter(
        &mut raw,
        1,
        "grown",
        &[("retention.ms", SET, Some("a while"))],
        false,
    );
    assert_eq!(
        message.as_deref(),
        Some("invalid value 'a while' for retention.ms")
    );
    // A refused change leaves the others of its resource undone.
    let (code, _) = alter(
        &mut raw,
        1,
        "grown",
        &[
            ("retention.bytes", SET, Some("1000")),
            ("retention.ms", SET, Some("-")),
        ],
        false,
    );
    assert_eq!(code, invalid);
    let validated = alter(
        &mut raw,
        0,
        "grown",
        &[("retention.bytes", SET, Some("1000"))],
        true,
    );
    assert_eq!(validated, (0, None));

    let default_segment_bytes = described(&admin, "grown", &["segment.bytes"]).await[0]
        .0
        .clone();
    assert_ne!(default_segment_bytes, "1048576");
    let expected_after_alter = [
        ("60000", "topic", false),
        (default_segment_bytes.as_str(), "default", true),
        ("-1", "default", true),
        ("delete", "default", true),
        ("CreateTime", "default", true),
    ];
    assert_eq!(
        described(&admin, "grown", &names).await,
        as_owned(&expected_after_alter)
    );

    // Killed and started again: partitions and configs are as they were.
    drop(raw);
    drop(producer);
    drop(admin);
    drop(server);
    let server = start(&data_dir);
    let admin = self::admin(&server);
    assert_eq!(
        described(&admin, "grown", &names).await,
        as_owned(&expected_after_alter)
    );
    let client = connect(&server).await;
    let sizes: Vec<(i32, i64)> = client
        .query(
            "SELECT _partition, count(*) FROM grown GROUP BY _partition ORDER BY _partition",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(sizes, [(3, 1)]);
    let shown = client
        .simple_query("SHOW STREAMS")
        .await
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) if row.get(0) == Some("grown") => {
                row.get(1).map(str::to_string)
            }
            _ => None,
        });
    assert_eq!(shown.as_deref(), Some("4"));
}

/// A described config: name, value, source and synonyms (name, value,
/// source).
type RawConfig = (String, String, i8, Vec<(String, String, i8)>);

/// A raw DescribeConfigs of one topic's `keys` (all when empty), with
/// synonyms; its configs or its error code.
fn raw_describe(
    raw: &mut Raw,
    version: i16,
    topic: &str,
    keys: &[&str],
) -> Result<Vec<RawConfig>, i16> {
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = 2;
    resource.resource_name = text(topic);
    resource.configuration_keys =
        (!keys.is_empty()).then(|| keys.iter().map(|k| text(k)).collect());
    let mut request = DescribeConfigsRequest::default();
    request.resources = vec![resource];
    request.include_synonyms = true;
    let response: DescribeConfigsResponse = raw.call(ApiKey::DescribeConfigs, version, &request);
    let result = &response.results[0];
    assert_eq!(result.resource_name.as_str(), topic);
    if result.error_code != 0 {
        assert!(result.configs.is_empty());
        return Err(result.error_code);
    }
    Ok(result
        .configs
        .iter()
        .map(|c| {
            assert!(!c.read_only && !c.is_sensitive);
            (
                c.name.to_string(),
                c.value.as_deref().unwrap_or_default().to_string(),
                c.config_source,
                c.synonyms
                    .iter()
                    .map(|s| {
                        (
                            s.name.to_string(),
                            s.value.as_deref().unwrap_or_default().to_string(),
                            s.source,
                        )
                    })
                    .collect(),
            )
        })
        .collect())
}

/// A raw Fetch of `topic`[0] at `offset`: the error code and the log start
/// (-1 with an error, as Kafka answers).
fn raw_fetch(raw: &mut Raw, topic: &str, offset: i64) -> (i16, i64) {
    let mut partition = FetchPartition::default();
    partition.fetch_offset = offset;
    partition.partition_max_bytes = 1 << 20;
    let mut fetch_topic = FetchTopic::default();
    fetch_topic.topic = TopicName(text(topic));
    fetch_topic.partitions = vec![partition];
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(-1);
    request.max_bytes = 1 << 20;
    request.topics = vec![fetch_topic];
    let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &request);
    let answer = &response.responses[0].partitions[0];
    (answer.error_code, answer.log_start_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_records_move_the_low_watermark_and_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = start(&data_dir);
    let admin = admin(&server);
    let topic = NewTopic::new("trimmed", 2, TopicReplication::Fixed(1));
    admin.create_topics([&topic], &options()).await.unwrap();
    let producer = producer(&server);
    for n in 0..10 {
        for partition in 0..2 {
            producer
                .send(
                    FutureRecord::to("trimmed")
                        .key("k")
                        .payload(&format!("record {n}"))
                        .partition(partition),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
    }

    // Partition 0 up to offset 4; beyond the high watermark is refused.
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("trimmed", 0, Offset::Offset(4))
        .unwrap();
    let deleted = admin.delete_records(&offsets, &options()).await.unwrap();
    let element = deleted.find_partition("trimmed", 0).unwrap();
    assert_eq!(element.error(), Ok(()));
    assert_eq!(element.offset(), Offset::Offset(4));
    let mut beyond = TopicPartitionList::new();
    beyond
        .add_partition_offset("trimmed", 1, Offset::Offset(11))
        .unwrap();
    let refused = admin.delete_records(&beyond, &options()).await.unwrap();
    assert_eq!(
        refused.find_partition("trimmed", 1).unwrap().error(),
        Err(KafkaError::OffsetFetch(RDKafkaErrorCode::OffsetOutOfRange))
    );

    // The raw protocol at every version: a partition that does not exist,
    // -1 for the high watermark (partition 1 of a second request).
    let mut raw = Raw::connect(&server.kafka);
    for version in 0..=2 {
        let mut topic = DeleteRecordsTopic::default();
        topic.name = TopicName(text("trimmed"));
        let mut unknown = DeleteRecordsPartition::default();
        unknown.partition_index = 7;
        unknown.offset = 1;
        let mut again = DeleteRecordsPartition::default();
        again.offset = 2;
        topic.partitions = vec![unknown, again];
        let mut request = DeleteRecordsRequest::default();
        request.topics = vec![topic];
        let response: DeleteRecordsResponse = raw.call(ApiKey::DeleteRecords, version, &request);
        let answers: Vec<(i32, i64, i16)> = response.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.low_watermark, p.error_code))
            .collect();
        assert_eq!(
            answers,
            [
                (7, -1, ResponseError::UnknownTopicOrPartition.code()),
                (0, 4, 0),
            ],
            "v{version}: a lower offset leaves the start where it is"
        );
    }

    // ListOffsets, fetches and SQL see the new start.
    let kafka = server.kafka.clone();
    let (marks, first) = tokio::task::spawn_blocking(move || {
        (
            watermarks(&kafka, "trimmed", 0),
            first_message(&kafka, "trimmed", 0, Offset::Beginning),
        )
    })
    .await
    .unwrap();
    assert_eq!(marks, (4, 10));
    assert_eq!(first, (4, b"record 4".to_vec()));
    assert_eq!(
        raw_fetch(&mut raw, "trimmed", 2),
        (ResponseError::OffsetOutOfRange.code(), -1)
    );
    assert_eq!(raw_fetch(&mut raw, "trimmed", 4), (0, 4));
    let kafka = server.kafka.clone();
    let below = tokio::task::spawn_blocking(move || {
        let consumer = consumer(&kafka);
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset("trimmed", 0, Offset::Offset(2))
            .unwrap();
        consumer.assign(&assignment).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "no error for a fetch below the start"
            );
            match consumer.poll(Duration::from_millis(200)) {
                Some(Err(error)) => return error,
                Some(Ok(message)) => panic!("read offset {} below the start", message.offset()),
                None => {}
            }
        }
    })
    .await
    .unwrap();
    // With auto.offset.reset=error, librdkafka reports the broker's
    // OFFSET_OUT_OF_RANGE as a failed reset.
    assert_eq!(
        below.rdkafka_error_code(),
        Some(RDKafkaErrorCode::AutoOffsetReset),
        "{below}"
    );
    let client = connect(&server).await;
    let counts: Vec<i64> = client
        .query(
            "SELECT count(*) FROM trimmed GROUP BY _partition ORDER BY _partition",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(counts, [6, 10]);

    // Killed and started again: the start holds; then everything goes.
    drop(raw);
    drop(producer);
    drop(admin);
    drop(server);
    let server = start(&data_dir);
    let kafka = server.kafka.clone();
    let marks = tokio::task::spawn_blocking(move || watermarks(&kafka, "trimmed", 0))
        .await
        .unwrap();
    assert_eq!(marks, (4, 10));
    let kafka = server.kafka.clone();
    let first =
        tokio::task::spawn_blocking(move || first_message(&kafka, "trimmed", 0, Offset::Beginning))
            .await
            .unwrap();
    assert_eq!(first, (4, b"record 4".to_vec()));
    let admin = self::admin(&server);
    let mut everything = TopicPartitionList::new();
    everything
        .add_partition_offset("trimmed", 1, Offset::End)
        .unwrap();
    let deleted = admin.delete_records(&everything, &options()).await.unwrap();
    assert_eq!(
        deleted.find_partition("trimmed", 1).unwrap().offset(),
        Offset::Offset(10)
    );
    let kafka = server.kafka.clone();
    let marks = tokio::task::spawn_blocking(move || watermarks(&kafka, "trimmed", 1))
        .await
        .unwrap();
    assert_eq!(marks, (10, 10));
}
