//! Consumer groups against a real server: librdkafka consumers that
//! `subscribe()` and share a topic's partitions with each assignor, take
//! over a leaving member's partitions without losing or repeating a
//! message, and resume at their committed offsets after a SIGKILL; and a
//! raw-protocol client that drives JoinGroup by hand to check every error
//! code and every version served.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::ops::Range;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, RequestHeader, ResponseHeader, SyncGroupRequest, SyncGroupResponse,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::support::{connect, start};

const PARTITIONS: i32 = 6;

/// A consumer that subscribes with `group` and the assignor `strategy`,
/// and commits only when told.
fn subscriber(kafka: &str, group: &str, strategy: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .set("group.id", group)
        .set("client.id", "subscriber")
        .set("partition.assignment.strategy", strategy)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("max.poll.interval.ms", "30000")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()
        .unwrap()
}

/// Produces the numbers as values, number `n` to partition `n % partitions`.
fn produce(kafka: &str, topic: &str, partitions: i32, numbers: Range<usize>) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    for n in numbers {
        let value = n.to_string();
        let partition = (n % partitions as usize) as i32;
        let record = BaseRecord::<(), String>::to(topic)
            .partition(partition)
            .payload(&value);
        producer.send(record).map_err(|(e, _)| e).unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Leaves the group with every consumer and serves the revokes with polls
/// before dropping them. A consumer dropped with a rebalance still queued
/// (the one another consumer's leave started) can hang in librdkafka's
/// close path (`rd_kafka_assign` waiting forever, confluentinc/librdkafka
/// issue 4884).
fn close_all(consumers: Vec<Option<BaseConsumer>>) {
    let live: Vec<BaseConsumer> = consumers.into_iter().flatten().collect();
    for consumer in &live {
        consumer.unsubscribe();
    }
    let assigned = |consumer: &BaseConsumer| consumer.assignment().is_ok_and(|a| a.count() > 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while live.iter().any(assigned) && Instant::now() < deadline {
        for consumer in &live {
            let _ = consumer.poll(Duration::from_millis(50));
        }
    }
}

/// Each message consumed, by (partition, offset): the consumer that got
/// it and its number.
type Consumed = BTreeMap<(i32, i64), (usize, usize)>;

/// Polls every consumer in turn, committing each message before the next
/// poll, until `done`. A message consumed twice fails the test.
fn poll_until(
    consumers: &[Option<BaseConsumer>],
    consumed: &mut Consumed,
    what: &str,
    mut done: impl FnMut(&Consumed) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(consumed) {
        assert!(
            Instant::now() < deadline,
            "{what}: gave up with {} messages consumed, assignments {:?}",
            consumed.len(),
            assignments(consumers)
        );
        for (index, consumer) in consumers.iter().enumerate() {
            let Some(consumer) = consumer else { continue };
            let Some(message) = consumer.poll(Duration::from_millis(50)) else {
                continue;
            };
            let message = message.unwrap();
            let number: usize = std::str::from_utf8(message.payload().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            let at = (message.partition(), message.offset());
            if let Some((first, _)) = consumed.insert(at, (index, number)) {
                panic!("{what}: {at:?} consumed by {first}, then again by {index}");
            }
            commit(consumer, &message);
        }
    }
}

/// Commits a message's offset. While a generation is being assigned
/// (CompletingRebalance) the coordinator answers REBALANCE_IN_PROGRESS, as
/// Kafka does; with cooperative rebalancing a member keeps consuming then,
/// and retries once the generation is assigned.
fn commit(consumer: &BaseConsumer, message: &rdkafka::message::BorrowedMessage<'_>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match consumer.commit_message(message, CommitMode::Sync) {
            Ok(()) => return,
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::RebalanceInProgress))
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("committing {}: {e}", message.offset()),
        }
    }
}

/// The partitions each consumer holds (empty for one that left).
fn assignments(consumers: &[Option<BaseConsumer>]) -> Vec<BTreeSet<i32>> {
    consumers
        .iter()
        .map(|c| match c {
            Some(c) => c
                .assignment()
                .unwrap()
                .elements()
                .iter()
                .map(|e| e.partition())
                .collect(),
            None => BTreeSet::new(),
        })
        .collect()
}

/// Whether the live consumers share every partition, `each` apiece, none
/// twice.
fn balanced(consumers: &[Option<BaseConsumer>], each: usize) -> bool {
    let held = assignments(consumers);
    let live: Vec<&BTreeSet<i32>> = consumers
        .iter()
        .zip(&held)
        .filter(|(c, _)| c.is_some())
        .map(|(_, h)| h)
        .collect();
    let all: BTreeSet<i32> = live.iter().flat_map(|h| h.iter().copied()).collect();
    live.iter().all(|h| h.len() == each)
        && all.len() == PARTITIONS as usize
        && live.iter().map(|h| h.len()).sum::<usize>() == PARTITIONS as usize
}

/// Three consumers share a 6-partition topic with `strategy`, each message
/// consumed once; one leaves and the other two take its partitions over.
async fn three_consumers_then_two(strategy: &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    let topic = format!("shared_{}", strategy.replace('-', "_"));
    client
        .batch_execute(&format!(
            "CREATE STREAM {topic} WITH (partitions = {PARTITIONS})"
        ))
        .await
        .unwrap();
    let group = format!("group_{strategy}");
    const FIRST: usize = 600;
    const SECOND: usize = 300;

    let kafka = server.kafka.clone();
    let (topic, group) = tokio::task::spawn_blocking(move || {
        let mut consumers: Vec<Option<BaseConsumer>> = (0..3)
            .map(|_| Some(subscriber(&kafka, &group, strategy)))
            .collect();
        for consumer in consumers.iter().flatten() {
            consumer.subscribe(&[&topic]).unwrap();
        }
        let mut consumed = Consumed::new();
        poll_until(&consumers, &mut consumed, "three join", |_| {
            balanced(&consumers, 2)
        });
        let three = assignments(&consumers);

        produce(&kafka, &topic, PARTITIONS, 0..FIRST);
        poll_until(&consumers, &mut consumed, "three consume", |c| {
            c.len() == FIRST
        });
        // Each consumer read only its own partitions.
        for (&(partition, _), &(consumer, _)) in &consumed {
            assert!(
                three[consumer].contains(&partition),
                "{strategy}: consumer {consumer} read partition {partition}, held {three:?}"
            );
        }
        assert_eq!(assignments(&consumers), three, "{strategy}: no rebalance");

        // One leaves (close sends LeaveGroup); the two left take over.
        consumers[2] = None;
        poll_until(&consumers, &mut consumed, "two take over", |_| {
            balanced(&consumers, 3)
        });
        let two = assignments(&consumers);
        if strategy == "cooperative-sticky" {
            for survivor in 0..2 {
                assert!(
                    three[survivor].is_subset(&two[survivor]),
                    "sticky: {three:?} then {two:?}"
                );
            }
        }
        produce(&kafka, &topic, PARTITIONS, FIRST..FIRST + SECOND);
        poll_until(&consumers, &mut consumed, "two consume", |c| {
            c.len() == FIRST + SECOND
        });
        let numbers: BTreeSet<usize> = consumed.values().map(|&(_, n)| n).collect();
        assert_eq!(numbers, (0..FIRST + SECOND).collect::<BTreeSet<_>>());
        for (&(partition, _), &(consumer, number)) in &consumed {
            assert_eq!(partition as usize, number % PARTITIONS as usize);
            if number >= FIRST {
                assert!(two[consumer].contains(&partition), "{strategy}: {two:?}");
            }
        }
        // The group as DescribeGroups reports it.
        let mut raw = Raw::connect(&kafka);
        let described = raw.describe(&group, 5);
        assert_eq!(described.group_state.as_str(), "Stable");
        assert_eq!(described.protocol_type.as_str(), "consumer");
        assert_eq!(described.protocol_data.as_str(), strategy);
        assert_eq!(described.members.len(), 2);
        assert!(
            described
                .members
                .iter()
                .all(|m| m.client_id.as_str() == "subscriber" && !m.member_assignment.is_empty())
        );
        close_all(consumers);
        (topic, group)
    })
    .await
    .unwrap();

    // Every message committed: no lag, 150 per partition.
    let rows = client
        .query(
            "SELECT stream, partition, committed_offset, lag FROM tributary.consumer_lag \
             WHERE group_id = $1 ORDER BY partition",
            &[&group],
        )
        .await
        .unwrap();
    let per_partition = ((FIRST + SECOND) / PARTITIONS as usize) as i64;
    let lag: Vec<(String, i32, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let expected: Vec<(String, i32, i64, i64)> = (0..PARTITIONS)
        .map(|p| (topic.clone(), p, per_partition, 0))
        .collect();
    assert_eq!(lag, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_assignor_shares_partitions_and_survives_a_leave() {
    three_consumers_then_two("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundrobin_assignor_shares_partitions_and_survives_a_leave() {
    three_consumers_then_two("roundrobin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_assignor_shares_partitions_and_survives_a_leave() {
    three_consumers_then_two("cooperative-sticky").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_group_resumes_at_its_commits_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = start(&data_dir);
    connect(&server)
        .await
        .batch_execute("CREATE STREAM resumed WITH (partitions = 2)")
        .await
        .unwrap();
    const MESSAGES: usize = 100;
    const BEFORE: usize = 30;
    let kafka = server.kafka.clone();
    let before = tokio::task::spawn_blocking(move || {
        produce(&kafka, "resumed", 2, 0..MESSAGES);
        let consumers = vec![Some(subscriber(&kafka, "resumers", "range"))];
        consumers[0]
            .as_ref()
            .unwrap()
            .subscribe(&["resumed"])
            .unwrap();
        let mut consumed = Consumed::new();
        poll_until(&consumers, &mut consumed, "before", |c| c.len() == BEFORE);
        consumed
    })
    .await
    .unwrap();
    // Where the group stands: past the last message consumed.
    let mut committed: BTreeMap<i32, i64> = BTreeMap::from([(0, 0), (1, 0)]);
    for &(partition, offset) in before.keys() {
        committed.insert(partition, offset + 1);
    }

    // Killed and started again on the same data: membership is gone, the
    // offsets are not.
    drop(server);
    let server = start(&data_dir);
    let kafka = server.kafka.clone();
    let after = tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(&kafka);
        let described = raw.describe("resumers", 5);
        assert_eq!(described.group_state.as_str(), "Empty");
        assert!(described.members.is_empty());
        let listed = raw.list(5, &[]);
        assert_eq!(listed, [("resumers".to_string(), "Empty".to_string())]);

        let consumers = vec![Some(subscriber(&kafka, "resumers", "range"))];
        consumers[0]
            .as_ref()
            .unwrap()
            .subscribe(&["resumed"])
            .unwrap();
        let mut consumed = Consumed::new();
        poll_until(&consumers, &mut consumed, "after", |c| {
            c.len() == MESSAGES - BEFORE
        });
        assert_eq!(
            raw.delete(&["resumers"], 2),
            [ResponseError::NonEmptyGroup.code()]
        );
        close_all(consumers);
        consumed
    })
    .await
    .unwrap();
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    for &(partition, offset) in after.keys() {
        first.entry(partition).or_insert(offset);
    }
    assert_eq!(first, committed);
    let numbers: BTreeSet<usize> = before
        .values()
        .chain(after.values())
        .map(|&(_, n)| n)
        .collect();
    assert_eq!(numbers.len(), MESSAGES);

    // Once the consumer has left, the group can be deleted, offsets and all.
    let client = connect(&server).await;
    let groups = client.query("SHOW CONSUMER GROUPS", &[]).await.unwrap();
    assert_eq!(groups.len(), 1);
    let kafka = server.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(&kafka);
        assert_eq!(raw.delete(&["resumers", "nobody"], 2), [0, 69]);
        assert_eq!(raw.describe("resumers", 5).group_state.as_str(), "Dead");
    })
    .await
    .unwrap();
    let groups = client.query("SHOW CONSUMER GROUPS", &[]).await.unwrap();
    assert!(groups.is_empty());
}

/// A member driven by hand over one connection.
struct Member {
    id: String,
    generation: i32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_from_an_old_generation_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    connect(&server)
        .await
        .batch_execute("CREATE STREAM generations WITH (partitions = 1)")
        .await
        .unwrap();
    let kafka = server.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(&kafka);
        let code = |e: ResponseError| e.code();
        // Version 4 on: the first join gets an id to join with.
        let first = raw.join("g", "", 9);
        assert_eq!(first.error_code, code(ResponseError::MemberIdRequired));
        let id = first.member_id.to_string();
        assert!(!id.is_empty());
        let joined = raw.join("g", &id, 9);
        assert_eq!(joined.error_code, 0);
        assert_eq!(joined.generation_id, 1);
        assert_eq!(joined.leader.as_str(), id);
        assert_eq!(joined.protocol_name.as_deref(), Some("range"));
        assert_eq!(joined.members.len(), 1);
        assert_eq!(
            joined.members[0].metadata,
            Bytes::from_static(b"subscription")
        );
        let one = Member {
            id: id.clone(),
            generation: 1,
        };
        let synced = raw.sync("g", &one, &[&id], 5);
        assert_eq!(synced.error_code, 0);
        assert_eq!(synced.assignment, Bytes::from(id.clone()));
        assert_eq!(raw.commit("g", &one, 5), 0);
        assert_eq!(raw.heartbeat("g", &one, 4), 0);

        // The leader joins again: generation 2, waiting for its SyncGroup.
        let rejoined = raw.join("g", &id, 9);
        assert_eq!((rejoined.error_code, rejoined.generation_id), (0, 2));
        let two = Member {
            id: id.clone(),
            generation: 2,
        };
        assert_eq!(
            raw.commit("g", &one, 7),
            code(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            raw.commit("g", &two, 7),
            code(ResponseError::RebalanceInProgress)
        );
        assert_eq!(
            raw.heartbeat("g", &one, 4),
            code(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            raw.sync("g", &one, &[&id], 5).error_code,
            code(ResponseError::IllegalGeneration)
        );
        assert_eq!(raw.fetch("g"), 5);
        assert_eq!(raw.sync("g", &two, &[&id], 5).error_code, 0);
        assert_eq!(raw.commit("g", &two, 9), 0);
        assert_eq!(raw.fetch("g"), 9);
        assert_eq!(
            raw.commit("g", &one, 11),
            code(ResponseError::IllegalGeneration)
        );
        let stranger = Member {
            id: "stranger".into(),
            generation: 2,
        };
        assert_eq!(
            raw.commit("g", &stranger, 11),
            code(ResponseError::UnknownMemberId)
        );
        assert_eq!(
            raw.heartbeat("g", &stranger, 4),
            code(ResponseError::UnknownMemberId)
        );
        // Outside a generation: refused while the group has members.
        let simple = Member {
            id: String::new(),
            generation: -1,
        };
        assert_eq!(
            raw.commit("g", &simple, 11),
            code(ResponseError::UnknownMemberId)
        );
        assert_eq!(raw.fetch("g"), 9);

        // What the group looks like.
        let described = raw.describe("g", 5);
        assert_eq!(described.group_state.as_str(), "Stable");
        assert_eq!(described.protocol_data.as_str(), "range");
        assert_eq!(described.members.len(), 1);
        assert_eq!(described.members[0].client_id.as_str(), "raw");
        assert_eq!(
            described.members[0].member_assignment,
            Bytes::from(id.clone())
        );
        assert_eq!(raw.list(5, &[]), [("g".to_string(), "Stable".to_string())]);
        assert!(raw.list(5, &["Empty"]).is_empty());
        assert_eq!(raw.delete(&["g"], 2), [code(ResponseError::NonEmptyGroup)]);

        // It leaves: the group has no members, a simple consumer commits.
        assert_eq!(raw.leave("g", &id, 5), [0]);
        assert_eq!(
            raw.heartbeat("g", &two, 4),
            code(ResponseError::UnknownMemberId)
        );
        assert_eq!(raw.commit("g", &simple, 11), 0);
        assert_eq!(raw.fetch("g"), 11);
        assert_eq!(raw.describe("g", 5).group_state.as_str(), "Empty");
        assert_eq!(raw.delete(&["g"], 2), [0]);
        assert_eq!(raw.fetch("g"), -1);
    })
    .await
    .unwrap();
}

/// A member that stops heartbeating is removed when its session ends, and
/// the rebalance it held up completes without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_member_is_removed_when_its_session_ends() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let kafka = server.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let mut silent = Raw::connect(&kafka);
        let id = silent.join("s", "", 5).member_id.to_string();
        let joined = silent.join_with_session("s", &id, 5, 6_000);
        assert_eq!((joined.error_code, joined.generation_id), (0, 1));
        let member = Member {
            id: id.clone(),
            generation: 1,
        };
        assert_eq!(silent.sync("s", &member, &[&id], 5).error_code, 0);

        // A second member joins; the first never rejoins nor heartbeats.
        let mut other = Raw::connect(&kafka);
        let other_id = other.join("s", "", 5).member_id.to_string();
        let joined = other.join_with_session("s", &other_id, 5, 6_000);
        assert_eq!(joined.error_code, 0);
        assert_eq!(joined.generation_id, 2);
        assert_eq!(joined.leader.as_str(), other_id);
        assert_eq!(joined.members.len(), 1);
        assert_eq!(
            silent.heartbeat("s", &member, 4),
            ResponseError::UnknownMemberId.code()
        );
    })
    .await
    .unwrap();
}

/// A member's whole life at every version of every group API served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_group_api_version_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    connect(&server)
        .await
        .batch_execute("CREATE STREAM generations WITH (partitions = 1)")
        .await
        .unwrap();
    let kafka = server.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(&kafka);
        for version in 0..=9 {
            let group = format!("v{version}");
            let mut joined = raw.join(&group, "", version);
            if version >= 4 {
                assert_eq!(joined.error_code, ResponseError::MemberIdRequired.code());
                joined = raw.join(&group, &joined.member_id.to_string(), version);
            }
            assert_eq!(joined.error_code, 0, "JoinGroup v{version}");
            assert_eq!(joined.protocol_name.as_deref(), Some("range"));
            let id = joined.member_id.to_string();
            let member = Member {
                id: id.clone(),
                generation: joined.generation_id,
            };
            let synced = raw.sync(&group, &member, &[&id], version.min(5));
            assert_eq!(synced.error_code, 0, "SyncGroup v{}", version.min(5));
            assert_eq!(synced.assignment, Bytes::from(id.clone()));
            assert_eq!(raw.heartbeat(&group, &member, version.min(4)), 0);
            let described = raw.describe(&group, version.min(5));
            assert_eq!(described.group_state.as_str(), "Stable");
            assert_eq!(described.members[0].member_id.as_str(), id);
            let listed = raw.list(version.min(5), &[]);
            assert!(listed.iter().any(|(g, _)| *g == group), "{listed:?}");
            assert_eq!(raw.commit(&group, &member, 3), 0);
            let left = raw.leave(&group, &id, version.min(5));
            assert_eq!(left, [0], "LeaveGroup v{}", version.min(5));
            assert_eq!(raw.delete(&[group.as_str()], version.min(2)), [0]);
        }
    })
    .await
    .unwrap();
}

/// A Kafka client speaking the protocol by hand, one request at a time on
/// one connection, with `kafka-protocol` encoding and decoding.
pub(crate) struct Raw {
    socket: TcpStream,
    correlation_id: i32,
}

impl Raw {
    pub(crate) fn connect(kafka: &str) -> Self {
        let socket = TcpStream::connect(kafka).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Self {
            socket,
            correlation_id: 0,
        }
    }

    pub(crate) fn call<R: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &impl Encodable,
    ) -> R {
        let correlation_id = self.send(key, version, request);
        self.receive(key, version, correlation_id)
    }

    /// Sends a request without waiting for its answer; its correlation id.
    pub(crate) fn send(&mut self, key: ApiKey, version: i16, request: &impl Encodable) -> i32 {
        self.correlation_id += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation_id;
        header.client_id = Some(StrBytes::from_static_str("raw"));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, key.request_header_version(version))
            .unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        self.socket.write_all(&frame).unwrap();
        self.correlation_id
    }

    /// Reads the next answer, which must be the one to `correlation_id`.
    pub(crate) fn receive<R: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        correlation_id: i32,
    ) -> R {
        let mut size = [0u8; 4];
        self.socket.read_exact(&mut size).unwrap();
        let mut answer = vec![0u8; u32::from_be_bytes(size) as usize];
        self.socket.read_exact(&mut answer).unwrap();
        let mut answer = Bytes::from(answer);
        let header =
            ResponseHeader::decode(&mut answer, key.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, correlation_id);
        let response = R::decode(&mut answer, version).unwrap();
        assert!(
            !answer.has_remaining(),
            "{key:?} v{version}: bytes left over"
        );
        response
    }

    fn join(&mut self, group: &str, member_id: &str, version: i16) -> JoinGroupResponse {
        self.join_with_session(group, member_id, version, 30_000)
    }

    fn join_with_session(
        &mut self,
        group: &str,
        member_id: &str,
        version: i16,
        session_timeout_ms: i32,
    ) -> JoinGroupResponse {
        let mut request = JoinGroupRequest::default();
        request.group_id = group_id(group);
        request.session_timeout_ms = session_timeout_ms;
        request.rebalance_timeout_ms = 30_000;
        request.member_id = StrBytes::from_string(member_id.into());
        request.protocol_type = StrBytes::from_static_str("consumer");
        let mut protocol = JoinGroupRequestProtocol::default();
        protocol.name = StrBytes::from_static_str("range");
        protocol.metadata = Bytes::from_static(b"subscription");
        request.protocols = vec![protocol];
        self.call(ApiKey::JoinGroup, version, &request)
    }

    /// A SyncGroup; from the leader, each of `members` is assigned its id.
    fn sync(
        &mut self,
        group: &str,
        member: &Member,
        members: &[&str],
        version: i16,
    ) -> SyncGroupResponse {
        let mut request = SyncGroupRequest::default();
        request.group_id = group_id(group);
        request.generation_id = member.generation;
        request.member_id = StrBytes::from_string(member.id.clone());
        if version >= 5 {
            request.protocol_type = Some(StrBytes::from_static_str("consumer"));
            request.protocol_name = Some(StrBytes::from_static_str("range"));
        }
        request.assignments = members
            .iter()
            .map(|m| {
                let mut assignment = SyncGroupRequestAssignment::default();
                assignment.member_id = StrBytes::from_string(m.to_string());
                assignment.assignment = Bytes::from(m.to_string());
                assignment
            })
            .collect();
        self.call(ApiKey::SyncGroup, version, &request)
    }

    fn heartbeat(&mut self, group: &str, member: &Member, version: i16) -> i16 {
        let mut request = HeartbeatRequest::default();
        request.group_id = group_id(group);
        request.generation_id = member.generation;
        request.member_id = StrBytes::from_string(member.id.clone());
        let response: HeartbeatResponse = self.call(ApiKey::Heartbeat, version, &request);
        response.error_code
    }

    /// Commits `offset` for partition 0 of `generations`; the error code.
    fn commit(&mut self, group: &str, member: &Member, offset: i64) -> i16 {
        let mut request = OffsetCommitRequest::default();
        request.group_id = group_id(group);
        request.generation_id_or_member_epoch = member.generation;
        request.member_id = StrBytes::from_string(member.id.clone());
        let mut partition = OffsetCommitRequestPartition::default();
        partition.committed_offset = offset;
        let mut topic = OffsetCommitRequestTopic::default();
        topic.name = TopicName(StrBytes::from_static_str("generations"));
        topic.partitions = vec![partition];
        request.topics = vec![topic];
        let response: OffsetCommitResponse = self.call(ApiKey::OffsetCommit, 8, &request);
        response.topics[0].partitions[0].error_code
    }

    /// The group's committed offset for partition 0 of `generations`.
    fn fetch(&mut self, group: &str) -> i64 {
        let mut request = OffsetFetchRequest::default();
        request.group_id = group_id(group);
        let mut topic = OffsetFetchRequestTopic::default();
        topic.name = TopicName(StrBytes::from_static_str("generations"));
        topic.partition_indexes = vec![0];
        request.topics = Some(vec![topic]);
        let response: OffsetFetchResponse = self.call(ApiKey::OffsetFetch, 7, &request);
        response.topics[0].partitions[0].committed_offset
    }

    /// Leaves; the error code of each member (one before version 3).
    fn leave(&mut self, group: &str, member_id: &str, version: i16) -> Vec<i16> {
        let mut request = LeaveGroupRequest::default();
        request.group_id = group_id(group);
        if version <= 2 {
            request.member_id = StrBytes::from_string(member_id.into());
        } else {
            let mut member = MemberIdentity::default();
            member.member_id = StrBytes::from_string(member_id.into());
            request.members = vec![member];
        }
        let response: LeaveGroupResponse = self.call(ApiKey::LeaveGroup, version, &request);
        if version <= 2 {
            vec![response.error_code]
        } else {
            assert_eq!(response.error_code, 0);
            response.members.iter().map(|m| m.error_code).collect()
        }
    }

    fn describe(
        &mut self,
        group: &str,
        version: i16,
    ) -> kafka_protocol::messages::describe_groups_response::DescribedGroup {
        let mut request = DescribeGroupsRequest::default();
        request.groups = vec![group_id(group)];
        let mut response: DescribeGroupsResponse =
            self.call(ApiKey::DescribeGroups, version, &request);
        assert_eq!(response.groups.len(), 1);
        let described = response.groups.remove(0);
        assert_eq!(described.error_code, 0);
        described
    }

    /// The groups listed, with their states (from version 4) and `states`
    /// as the filter.
    fn list(&mut self, version: i16, states: &[&'static str]) -> Vec<(String, String)> {
        let mut request = ListGroupsRequest::default();
        if version >= 4 {
            request.states_filter = states
                .iter()
                .map(|s| StrBytes::from_static_str(s))
                .collect();
        }
        let response: ListGroupsResponse = self.call(ApiKey::ListGroups, version, &request);
        assert_eq!(response.error_code, 0);
        response
            .groups
            .iter()
            .map(|g| (g.group_id.to_string(), g.group_state.to_string()))
            .collect()
    }

    /// Deletes groups; the error code of each.
    fn delete(&mut self, groups: &[&str], version: i16) -> Vec<i16> {
        let mut request = DeleteGroupsRequest::default();
        request.groups_names = groups.iter().map(|g| group_id(g)).collect();
        let response: DeleteGroupsResponse = self.call(ApiKey::DeleteGroups, version, &request);
        response.results.iter().map(|r| r.error_code).collect()
    }
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.into()))
}
