//! Idempotent producers against a real server: a librdkafka producer with
//! `enable.idempotence=true` keeps producing while the server is killed
//! with SIGKILL and restarted on the same port, and the topic ends up with
//! every message exactly once, in order; and a raw-protocol client checks
//! InitProducerId and each sequence rule, across a restart too.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProduceRequest, ProduceResponse, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tributary_storage::batch::{Compression, NewRecord, encode_batch, set_producer};

use crate::kafka_groups::Raw;
use crate::support::{connect, start, start_with_kafka};

const MESSAGES: usize = 20_000;
const PARTITIONS: usize = 3;

/// Counts deliveries and keeps every failure.
#[derive(Default)]
struct Deliveries {
    delivered: AtomicUsize,
    failed: Mutex<Vec<String>>,
}

#[derive(Clone, Default)]
struct Counting(Arc<Deliveries>);

impl rdkafka::ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, message)) => self.0.failed.lock().unwrap().push(format!(
                "offset {} of {}: {e}",
                message.offset(),
                message.partition()
            )),
        }
    }
}

/// Waits (off the async threads) until `deliveries` reached `count`.
async fn delivered_at_least(deliveries: &Deliveries, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while deliveries.delivered.load(Ordering::Relaxed) < count {
        assert!(
            Instant::now() < deadline,
            "only {} delivered, failures: {:?}",
            deliveries.delivered.load(Ordering::Relaxed),
            deliveries.failed.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_survives_sigkills_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut server = start(&data_dir);
    let kafka = server.kafka.clone();
    connect(&server)
        .await
        .batch_execute("CREATE STREAM numbers (n BIGINT) WITH (partitions = 3)")
        .await
        .unwrap();

    let deliveries = Counting::default();
    let context = deliveries.clone();
    let bootstrap = kafka.clone();
    let producing = tokio::task::spawn_blocking(move || {
        let producer: ThreadedProducer<Counting> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("message.timeout.ms", "300000")
            .set("linger.ms", "2")
            .set("batch.num.messages", "50")
            .set("retry.backoff.ms", "50")
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "500")
            .create_with_context(context)
            .unwrap();
        for n in 0..MESSAGES {
            let value = format!("{{\"n\": {n}}}");
            let mut record = BaseRecord::<(), String>::to("numbers")
                .partition((n % PARTITIONS) as i32)
                .payload(&value);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        // The local queue is full: wait for deliveries.
                        record = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(300)).unwrap();
    });

    // SIGKILL twice while messages are in flight, each time restarted on
    // the same data and the same Kafka port.
    for kill_at in [MESSAGES / 4, MESSAGES * 3 / 5] {
        delivered_at_least(&deliveries.0, kill_at).await;
        drop(server);
        server = start_with_kafka(&data_dir, &kafka);
        assert_eq!(server.kafka, kafka);
    }
    producing.await.unwrap();
    assert_eq!(
        *deliveries.0.failed.lock().unwrap(),
        Vec::<String>::new(),
        "every message is delivered"
    );
    assert_eq!(deliveries.0.delivered.load(Ordering::Relaxed), MESSAGES);

    // Every message once, in order in its partition, and nothing else.
    let bootstrap = kafka.clone();
    let by_partition = tokio::task::spawn_blocking(move || consume_all(&bootstrap))
        .await
        .unwrap();
    for (partition, numbers) in by_partition.iter().enumerate() {
        let expected: Vec<usize> = (partition..MESSAGES).step_by(PARTITIONS).collect();
        assert_eq!(
            numbers.len(),
            expected.len(),
            "partition {partition} holds {} messages",
            numbers.len()
        );
        assert!(
            *numbers == expected,
            "partition {partition} is out of order"
        );
    }
    let client = connect(&server).await;
    let count: i64 = client
        .query_one("SELECT count(*) FROM numbers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, MESSAGES as i64);
}

/// Every number in each partition, in offset order, until the high
/// watermark of each partition (read once at the start) is reached.
fn consume_all(kafka: &str) -> Vec<Vec<usize>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .set("group.id", "checker")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .unwrap();
    let mut ends = Vec::new();
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS as i32 {
        let (_, high) = consumer
            .fetch_watermarks("numbers", p, Duration::from_secs(30))
            .unwrap();
        ends.push(high);
        assignment
            .add_partition_offset("numbers", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut numbers = vec![Vec::new(); PARTITIONS];
    let mut next = vec![0i64; PARTITIONS];
    let deadline = Instant::now() + Duration::from_secs(120);
    while (0..PARTITIONS).any(|p| next[p] < ends[p]) {
        assert!(
            Instant::now() < deadline,
            "consumed up to {next:?} of {ends:?}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.unwrap();
        let p = message.partition() as usize;
        assert_eq!(message.offset(), next[p], "offsets are dense");
        next[p] += 1;
        let value: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        numbers[p].push(value["n"].as_u64().unwrap() as usize);
    }
    numbers
}

/// A v2 batch of `count` JSON records from producer `id` at `epoch`,
/// first sequence `sequence`.
fn idempotent_batch(id: i64, epoch: i16, sequence: i32, first: u64, count: u64) -> Bytes {
    let records: Vec<NewRecord> = (first..first + count)
        .map(|n| NewRecord {
            value: Some(Bytes::from(format!("{{\"n\": {n}}}"))),
            timestamp_ms: 1_700_000_000_000,
            ..Default::default()
        })
        .collect();
    let mut batch = encode_batch(&records, Compression::None).unwrap().to_vec();
    set_producer(&mut batch, id, epoch, sequence);
    Bytes::from(batch)
}

/// Produces one batch to partition 0 of `topic`: (error code, base offset).
fn produce(raw: &mut Raw, version: i16, topic: &str, batch: Bytes) -> (i16, i64) {
    let request = produce_request(topic, batch);
    let response: ProduceResponse = raw.call(ApiKey::Produce, version, &request);
    produce_answer(&response)
}

/// A produce of one batch to partition 0 of `topic`, acks=all.
fn produce_request(topic: &str, batch: Bytes) -> ProduceRequest {
    let mut partition = PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(batch);
    let mut data = TopicProduceData::default();
    data.name = TopicName(StrBytes::from_string(topic.to_string()));
    data.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 30_000;
    request.topic_data = vec![data];
    request
}

/// The (error code, base offset) of a one-partition produce's answer.
fn produce_answer(response: &ProduceResponse) -> (i16, i64) {
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

fn init_producer_id(
    raw: &mut Raw,
    version: i16,
    transactional_id: Option<&str>,
) -> InitProducerIdResponse {
    let mut request = InitProducerIdRequest::default();
    request.transactional_id =
        transactional_id.map(|id| TransactionalId(StrBytes::from_string(id.to_string())));
    request.transaction_timeout_ms = 60_000;
    request.producer_id = kafka_protocol::messages::ProducerId(-1);
    request.producer_epoch = -1;
    raw.call(ApiKey::InitProducerId, version, &request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_rules_over_the_raw_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = start(&data_dir);
    let client = connect(&server).await;
    client
        .batch_execute("CREATE STREAM seq (n BIGINT)")
        .await
        .unwrap();
    let kafka = server.kafka.clone();
    let (id, seen_ids) = tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(&kafka);
        let versions: ApiVersionsResponse =
            raw.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        let advertised = versions
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::InitProducerId as i16)
            .map(|k| (k.min_version, k.max_version));
        assert_eq!(advertised, Some((0, 4)));

        // A new id at every version, epoch 0; transactions are refused.
        let mut ids = Vec::new();
        for version in 0..=4 {
            let answer = init_producer_id(&mut raw, version, None);
            assert_eq!(answer.error_code, 0, "v{version}");
            assert_eq!(answer.producer_epoch, 0);
            ids.push(answer.producer_id.0);
            let refused = init_producer_id(&mut raw, version, Some("tx"));
            assert_eq!(
                refused.error_code,
                ResponseError::TransactionalIdAuthorizationFailed.code(),
                "v{version}"
            );
        }
        let id = ids[0];

        // In sequence, then the same batch again: the original offset.
        assert_eq!(
            produce(&mut raw, 9, "seq", idempotent_batch(id, 0, 0, 0, 3)),
            (0, 0)
        );
        assert_eq!(
            produce(&mut raw, 9, "seq", idempotent_batch(id, 0, 0, 0, 3)),
            (0, 0)
        );
        assert_eq!(
            produce(&mut raw, 3, "seq", idempotent_batch(id, 0, 3, 3, 2)),
            (0, 3)
        );
        assert_eq!(
            produce(&mut raw, 7, "seq", idempotent_batch(id, 0, 3, 3, 2)),
            (0, 3)
        );
        // A gap.
        let (code, offset) = produce(&mut raw, 9, "seq", idempotent_batch(id, 0, 9, 99, 1));
        assert_eq!(code, ResponseError::OutOfOrderSequenceNumber.code());
        assert_eq!(offset, -1);
        // A bumped epoch starts at 0; the old one is then fenced.
        let (code, _) = produce(&mut raw, 9, "seq", idempotent_batch(id, 1, 5, 99, 1));
        assert_eq!(code, ResponseError::OutOfOrderSequenceNumber.code());
        assert_eq!(
            produce(&mut raw, 9, "seq", idempotent_batch(id, 1, 0, 5, 1)),
            (0, 5)
        );
        let (code, _) = produce(&mut raw, 9, "seq", idempotent_batch(id, 0, 5, 99, 1));
        assert_eq!(code, ResponseError::InvalidProducerEpoch.code());
        (id, ids)
    })
    .await
    .unwrap();
    let count: i64 = client
        .query_one("SELECT count(*) FROM seq", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 6, "duplicates and refused batches are not stored");

    // Killed and restarted: the producer state and the id counter survive.
    drop(server);
    let server = start(&data_dir);
    let kafka = server.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(&kafka);
        assert_eq!(
            produce(&mut raw, 9, "seq", idempotent_batch(id, 1, 0, 5, 1)),
            (0, 5)
        );
        let (code, _) = produce(&mut raw, 9, "seq", idempotent_batch(id, 0, 0, 0, 3));
        assert_eq!(code, ResponseError::InvalidProducerEpoch.code());
        let (code, _) = produce(&mut raw, 9, "seq", idempotent_batch(id, 1, 2, 99, 1));
        assert_eq!(code, ResponseError::OutOfOrderSequenceNumber.code());
        assert_eq!(
            produce(&mut raw, 9, "seq", idempotent_batch(id, 1, 1, 6, 1)),
            (0, 6)
        );
        let fresh = init_producer_id(&mut raw, 4, None).producer_id.0;
        assert!(
            !seen_ids.contains(&fresh),
            "{fresh} was handed out before the restart"
        );
    })
    .await
    .unwrap();
    let client = connect(&server).await;
    let numbers: Vec<i64> = client
        .query("SELECT n FROM seq ORDER BY _offset", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(numbers, [0, 1, 2, 3, 4, 5, 6]);
}

/// Produces sent back to back on one connection, without waiting for
/// answers (as librdkafka pipelines them): they are appended in the order
/// sent, so an idempotent producer's sequence numbers all fit, and
/// answered in that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_produces_are_appended_and_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = start(&data_dir);
    let client = connect(&server).await;
    client
        .batch_execute("CREATE STREAM piped (n BIGINT)")
        .await
        .unwrap();
    let kafka = server.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(&kafka);
        let id = init_producer_id(&mut raw, 4, None).producer_id.0;
        const REQUESTS: u64 = 40;
        const RECORDS: u64 = 5;
        let sent: Vec<i32> = (0..REQUESTS)
            .map(|i| {
                let batch = idempotent_batch(id, 0, (i * RECORDS) as i32, i * RECORDS, RECORDS);
                raw.send(ApiKey::Produce, 9, &produce_request("piped", batch))
            })
            .collect();
        for (i, correlation_id) in sent.into_iter().enumerate() {
            let response: ProduceResponse = raw.receive(ApiKey::Produce, 9, correlation_id);
            assert_eq!(
                produce_answer(&response),
                (0, i as i64 * RECORDS as i64),
                "request {i}"
            );
        }
    })
    .await
    .unwrap();
    let rows = client
        .query("SELECT n FROM piped ORDER BY _offset", &[])
        .await
        .unwrap();
    let numbers: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(numbers, (0..200).collect::<Vec<i64>>());
}
