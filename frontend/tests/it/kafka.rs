//! The Kafka protocol with a real client (librdkafka, through the rdkafka
//! crate) against a real server process: produce and consume with keys and
//! headers, SQL and Kafka on the same streams, and bad input that must not
//! harm the server or other clients.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::support::{Server, connect, start};

fn producer(server: &Server) -> FutureProducer {
    compressing_producer(server, "none")
}

/// A producer whose batches are compressed with `codec`.
fn compressing_producer(server: &Server, codec: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &server.kafka)
        .set("acks", "all")
        .set("compression.type", codec)
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap()
}

/// A consumer in `group` that assigns partitions itself and commits only
/// when told.
fn group_consumer(kafka: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .unwrap()
}

/// A consumed message: partition, offset, key, value, headers.
type Consumed = (
    i32,
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Vec<u8>)>,
);

/// Reads `partitions` of `topic` from the beginning until `expected`
/// messages have arrived (blocking: run it off the async threads).
fn consume(kafka: &str, topic: &str, partitions: i32, expected: usize) -> Vec<Consumed> {
    let consumer = group_consumer(kafka, "tests");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut consumed = Vec::with_capacity(expected);
    while consumed.len() < expected {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {expected}",
            consumed.len()
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.unwrap();
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        consumed.push((
            message.partition(),
            message.offset(),
            message.key().map(<[u8]>::to_vec),
            message.payload().map(<[u8]>::to_vec),
            headers,
        ));
    }
    consumed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_round_trip_with_keys_headers_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    // 100,000 messages in all, a fifth with each codec; the batches are
    // stored and served as the producer compressed them.
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        round_trip(&server, &client, codec).await;
    }
}

/// 20,000 messages through a topic of 3 partitions, compressed with `codec`.
async fn round_trip(server: &Server, client: &tokio_postgres::Client, codec: &str) {
    let topic = format!("events_{codec}");
    client
        .batch_execute(&format!("CREATE STREAM {topic} WITH (partitions = 3)"))
        .await
        .unwrap();

    const MESSAGES: usize = 20_000;
    let producer = compressing_producer(server, codec);
    let mut deliveries = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let key = format!("key-{}", i % 97);
        let value = format!("value-{i}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "n",
            value: Some(i.to_string().as_bytes()),
        });
        let record = FutureRecord::to(&topic)
            .key(&key)
            .payload(&value)
            .headers(headers);
        deliveries.push(producer.send_result(record).unwrap());
    }
    // Where librdkafka's partitioner put each message, by its number.
    let mut placed = BTreeMap::new();
    for (i, delivery) in deliveries.into_iter().enumerate() {
        let delivered = delivery.await.unwrap().unwrap();
        placed.insert(i, (delivered.partition, delivered.offset));
    }

    let kafka = server.kafka.clone();
    let consumed = {
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || consume(&kafka, &topic, 3, MESSAGES))
            .await
            .unwrap()
    };
    assert_eq!(consumed.len(), MESSAGES);
    let mut last_number: BTreeMap<i32, usize> = BTreeMap::new();
    let mut key_partition: BTreeMap<Vec<u8>, i32> = BTreeMap::new();
    for (partition, offset, key, value, headers) in consumed {
        let number: usize = String::from_utf8(headers[0].1.clone())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(headers[0].0, "n");
        assert_eq!(value.unwrap(), format!("value-{number}").into_bytes());
        let key = key.unwrap();
        assert_eq!(key, format!("key-{}", number % 97).into_bytes());
        // Stored where the client's partitioner sent it, at the offset the
        // produce answer gave.
        assert_eq!(
            placed[&number],
            (partition, offset),
            "{codec}: message {number}"
        );
        // One key, one partition.
        assert_eq!(*key_partition.entry(key).or_insert(partition), partition);
        // Order per partition is the order of sending.
        if let Some(previous) = last_number.insert(partition, number) {
            assert!(
                previous < number,
                "partition {partition}: {previous} then {number}"
            );
        }
    }

    // SQL sees the same records.
    let row = client
        .query_one(
            &format!("SELECT count(*), count(DISTINCT _key) FROM {topic}"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), MESSAGES as i64);
    assert_eq!(row.get::<_, i64>(1), 97);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_and_kafka_see_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    client
        .batch_execute(
            "CREATE STREAM orders (id BIGINT, customer TEXT, amount DOUBLE PRECISION) \
             WITH (partitions = 2, key = 'customer'); \
             INSERT INTO orders VALUES (1, 'ann', 12.5), (2, 'bob', 7.25)",
        )
        .await
        .unwrap();

    // Rows inserted over pgwire reach a Kafka consumer as JSON.
    let kafka = server.kafka.clone();
    let consumed = tokio::task::spawn_blocking(move || consume(&kafka, "orders", 2, 2))
        .await
        .unwrap();
    let mut values: Vec<serde_json::Value> = consumed
        .iter()
        .map(|(_, _, _, value, _)| serde_json::from_slice(value.as_ref().unwrap()).unwrap())
        .collect();
    values.sort_by_key(|v| v["id"].as_i64());
    assert_eq!(
        values,
        [
            serde_json::json!({"id": 1, "customer": "ann", "amount": 12.5}),
            serde_json::json!({"id": 2, "customer": "bob", "amount": 7.25}),
        ]
    );

    // JSON produced by a Kafka client is selected with typed columns.
    let producer = producer(&server);
    producer
        .send(
            FutureRecord::to("orders")
                .key("cy")
                .payload(r#"{"id": 3, "customer": "cy", "amount": 99.5}"#)
                .partition(1),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let row = client
        .query_one("SELECT customer, amount FROM orders WHERE id = 3", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "cy");
    assert_eq!(row.get::<_, f64>(1), 99.5);

    // A value that is not the stream's JSON is refused, and nothing of it
    // is stored.
    let refused = producer
        .send(
            FutureRecord::to("orders")
                .key("dee")
                .payload(r#"{"id": "not a number"}"#)
                .partition(0),
            Duration::from_secs(10),
        )
        .await;
    let (error, _) = refused.unwrap_err();
    assert_eq!(
        error.rdkafka_error_code(),
        Some(rdkafka::types::RDKafkaErrorCode::InvalidRecord),
        "{error}"
    );
    let count: i64 = client
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);
}

/// Sends one frame on a fresh connection and says whether the server
/// answered (`Some(bytes)`) or closed the connection (`None`).
fn send_frame(kafka: &str, frame: &[u8]) -> Option<Vec<u8>> {
    let mut socket = TcpStream::connect(kafka).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    if socket.write_all(frame).is_err() {
        return None;
    }
    let mut size = [0u8; 4];
    socket.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
    socket.read_exact(&mut body).ok()?;
    Some(body)
}

/// A request frame: api key, version, correlation id, client id, body.
fn request(api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&api_key.to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&7i32.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes());
    frame.extend_from_slice(body);
    let mut sized = (frame.len() as i32).to_be_bytes().to_vec();
    sized.extend_from_slice(&frame);
    sized
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    client
        .batch_execute("CREATE STREAM kept (n BIGINT); INSERT INTO kept VALUES (1), (2), (3)")
        .await
        .unwrap();
    let kafka = server.kafka.clone();

    // A well-formed ApiVersions v0 is answered with correlation id 7.
    let answer = send_frame(&kafka, &request(18, 0, &[])).unwrap();
    assert_eq!(&answer[..4], &7i32.to_be_bytes());

    // Metadata v1 claiming 54 million topics in 8 bytes: refused, no
    // allocation, the connection closed.
    assert!(send_frame(&kafka, &request(3, 1, &54_000_000i32.to_be_bytes())).is_none());
    // A frame size far above the maximum, and a negative one.
    assert!(send_frame(&kafka, &[0x7f, 0xff, 0xff, 0xff, 0, 18]).is_none());
    assert!(send_frame(&kafka, &[0xff, 0xff, 0xff, 0xf0]).is_none());
    // An unknown API key, and a version not served.
    assert!(send_frame(&kafka, &request(999, 0, &[])).is_none());
    assert!(send_frame(&kafka, &request(3, 99, &[])).is_none());
    // ApiVersions newer than served: answered at v0 with UNSUPPORTED_VERSION.
    let answer = send_frame(&kafka, &request(18, 99, &[])).unwrap();
    assert_eq!(&answer[4..6], &35i16.to_be_bytes());

    // Random and truncated frames (fixed seed): each is answered or closes
    // its connection.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let served = [
        (0, 3, 9),
        (1, 4, 12),
        (2, 1, 7),
        (3, 1, 12),
        (10, 0, 4),
        (18, 0, 3),
    ];
    for _ in 0..500 {
        let (key, min, max): (i16, i16, i16) = served[(next() % served.len() as u64) as usize];
        let version = min + (next() % (max - min + 1) as u64) as i16;
        let body: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
        let mut frame = request(key, version, &body);
        if next() % 3 == 0 {
            let cut = 4 + (next() as usize % (frame.len() - 4));
            frame.truncate(cut);
            let size = (frame.len() - 4) as i32;
            frame[..4].copy_from_slice(&size.to_be_bytes());
        }
        let _ = send_frame(&kafka, &frame);
    }

    // The server is alive, serves others, and the data is unchanged.
    let answer = send_frame(&kafka, &request(18, 0, &[])).unwrap();
    assert_eq!(&answer[4..6], &0i16.to_be_bytes());
    let sum: i64 = client
        .query_one("SELECT sum(n) FROM kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_clients_create_and_delete_topics() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &server.kafka)
        .create()
        .unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));

    let made = NewTopic::new("made", 4, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let results = admin.create_topics([&made], &options).await.unwrap();
    assert_eq!(results, [Ok("made".to_string())]);
    // SQL sees a raw stream with the partitions and retention asked for.
    assert_eq!(
        listed(&client, "made").await,
        Some(vec![
            "made".into(),
            "4".into(),
            "raw".into(),
            "1 hour".into()
        ])
    );

    // Refusals, each with Kafka's code; nothing is created.
    let again = NewTopic::new("made", 1, TopicReplication::Fixed(1));
    let copies = NewTopic::new("copies", 1, TopicReplication::Fixed(3));
    let unknown =
        NewTopic::new("unknown", 1, TopicReplication::Fixed(1)).set("compression.type", "zstd");
    let illegal = NewTopic::new("no spaces", 1, TopicReplication::Fixed(1));
    let results = admin
        .create_topics([&again, &copies, &unknown, &illegal], &options)
        .await
        .unwrap();
    let codes: Vec<Option<RDKafkaErrorCode>> = results
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.1))
        .collect();
    assert_eq!(
        codes,
        [
            Some(RDKafkaErrorCode::TopicAlreadyExists),
            Some(RDKafkaErrorCode::InvalidReplicationFactor),
            Some(RDKafkaErrorCode::InvalidConfig),
            Some(RDKafkaErrorCode::InvalidTopic),
        ]
    );
    assert_eq!(listed(&client, "copies").await, None);

    let results = admin
        .delete_topics(&["made", "nope"], &options)
        .await
        .unwrap();
    assert_eq!(results[0], Ok("made".to_string()));
    assert_eq!(
        results[1].as_ref().err().map(|e| e.1),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    let gone = client.query_one("SELECT count(*) FROM made", &[]).await;
    assert_eq!(
        gone.unwrap_err().as_db_error().unwrap().code().code(),
        "42P01"
    );
}

/// The name, partitions, format and retention `SHOW STREAMS` lists for a
/// stream, if it lists it.
async fn listed(client: &tokio_postgres::Client, name: &str) -> Option<Vec<String>> {
    client
        .simple_query("SHOW STREAMS")
        .await
        .unwrap()
        .into_iter()
        .find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) if row.get(0) == Some(name) => Some(
                [0, 1, 2, 4]
                    .iter()
                    .map(|&i| row.get(i).unwrap_or_default().to_string())
                    .collect(),
            ),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_restart() {
    use rdkafka::consumer::CommitMode;

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = start(&data_dir);
    connect(&server)
        .await
        .batch_execute(
            "CREATE STREAM ticks (n BIGINT) WITH (partitions = 2); \
             INSERT INTO ticks SELECT value FROM generate_series(1, 100)",
        )
        .await
        .unwrap();
    let kafka = server.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let consumer = group_consumer(&kafka, "readers");
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("ticks", 0, Offset::Offset(10))
            .unwrap();
        offsets
            .add_partition_offset("ticks", 1, Offset::Offset(20))
            .unwrap();
        consumer.commit(&offsets, CommitMode::Sync).unwrap();
    })
    .await
    .unwrap();

    // Killed and started again on the same data.
    drop(server);
    let server = start(&data_dir);
    let kafka = server.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let consumer = group_consumer(&kafka, "readers");
        let mut asked = TopicPartitionList::new();
        asked.add_partition("ticks", 0);
        asked.add_partition("ticks", 1);
        let committed = consumer
            .committed_offsets(asked, Duration::from_secs(10))
            .unwrap();
        let offsets: Vec<(i32, Offset)> = committed
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect();
        assert_eq!(offsets, [(0, Offset::Offset(10)), (1, Offset::Offset(20))]);

        // ListOffsets by timestamp: the first record at or after it, or the
        // end past the last one.
        let mut times = TopicPartitionList::new();
        times
            .add_partition_offset("ticks", 0, Offset::Offset(0))
            .unwrap();
        times
            .add_partition_offset("ticks", 1, Offset::Offset(i64::MAX / 2))
            .unwrap();
        let found = consumer
            .offsets_for_times(times, Duration::from_secs(10))
            .unwrap();
        let found: Vec<(i32, Offset)> = found
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect();
        assert_eq!(found, [(0, Offset::Offset(0)), (1, Offset::End)]);

        // Consuming from the stored offsets starts at them.
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset("ticks", 0, Offset::Stored)
            .unwrap();
        assignment
            .add_partition_offset("ticks", 1, Offset::Stored)
            .unwrap();
        consumer.assign(&assignment).unwrap();
        let mut first: BTreeMap<i32, i64> = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while first.len() < 2 {
            assert!(Instant::now() < deadline, "first offsets seen: {first:?}");
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message.unwrap();
                first.entry(message.partition()).or_insert(message.offset());
            }
        }
        assert_eq!(first, BTreeMap::from([(0, 10), (1, 20)]));
    })
    .await
    .unwrap();

    // The lag is one query away in SQL.
    let client = connect(&server).await;
    let lag: Vec<(String, String, i32, i64, i64, i64)> = client
        .query(
            "SELECT group_id, stream, partition, committed_offset, high_watermark, lag \
             FROM tributary.consumer_lag ORDER BY partition",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    let sizes: Vec<i64> = client
        .query(
            "SELECT count(*) FROM ticks GROUP BY _partition ORDER BY _partition",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        lag,
        [
            (
                "readers".into(),
                "ticks".into(),
                0,
                10,
                sizes[0],
                sizes[0] - 10
            ),
            (
                "readers".into(),
                "ticks".into(),
                1,
                20,
                sizes[1],
                sizes[1] - 20
            ),
        ]
    );
    let groups = client.query("SHOW CONSUMER GROUPS", &[]).await.unwrap();
    let groups: Vec<(String, i64, i64, i64)> = groups
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(groups, [("readers".into(), 1, 2, 100 - 30)]);
}
