//! Nexmark streams (`CREATE STREAM ... WITH (connector = 'nexmark')`)
//! against a real server process: the generator writes exactly the events
//! it was asked for, goes on where it stopped after a SIGKILL (no event
//! lost or written twice), and clients cannot write into its stream.

use std::time::{Duration, Instant};

use nexmark::EventGenerator;
use nexmark::config::NexmarkConfig;
use nexmark::event::{Event, EventType};
use rdkafka::types::RDKafkaErrorCode;

use crate::support::{assert_refused, connect, kafka_produce_error, sqlstate_and_message, start};

/// The sum of the prices of the first `events` Nexmark bids: what the
/// stream must hold, whatever its partitions and restarts.
fn expected_price_sum(events: usize) -> i64 {
    EventGenerator::new(NexmarkConfig::default())
        .with_type_filter(EventType::Bid)
        .take(events)
        .map(|event| match event {
            Event::Bid(bid) => bid.price as i64,
            other => panic!("not a bid: {other:?}"),
        })
        .sum()
}

/// `count(*)` once it has stopped growing at `expected`, or panics after a
/// minute.
async fn wait_for_count(client: &tokio_postgres::Client, stream: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let count: i64 = client
            .query_one(&format!("SELECT count(*) FROM {stream}"), &[])
            .await
            .unwrap()
            .get(0);
        assert!(count <= expected, "{count} events, more than {expected}");
        if count == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} of {expected} events after a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The stream's events: as many as asked, dense offsets, event time in
/// order within each partition, and the same bids as the generator makes.
async fn check_bids(client: &tokio_postgres::Client, stream: &str, events: usize) {
    let row = client
        .query_one(&format!("SELECT count(*), sum(price) FROM {stream}"), &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), events as i64);
    assert_eq!(row.get::<_, i64>(1), expected_price_sum(events));
    let partitions = client
        .query(
            &format!(
                "SELECT _partition, count(*), max(_offset) + 1, \
                 count(*) FILTER (WHERE date_time < prev) \
                 FROM (SELECT _partition, _offset, date_time, \
                   lag(date_time) OVER (PARTITION BY _partition ORDER BY _offset) AS prev \
                   FROM {stream}) GROUP BY _partition"
            ),
            &[],
        )
        .await
        .unwrap();
    for row in partitions {
        let partition: i32 = row.get(0);
        assert_eq!(
            row.get::<_, i64>(1),
            row.get::<_, i64>(2),
            "partition {partition}"
        );
        assert_eq!(
            row.get::<_, i64>(3),
            0,
            "partition {partition} out of order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nexmark_stream_holds_its_events_once_across_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data);
    let client = connect(&server).await;

    // A small one first, written at once.
    client
        .batch_execute(
            "CREATE STREAM few_bids WITH (connector = 'nexmark', kind = 'bid', \
             rate = 100000, events = 1000)",
        )
        .await
        .unwrap();
    wait_for_count(&client, "few_bids", 1000).await;
    check_bids(&client, "few_bids", 1000).await;
    let columns = client
        .query(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_name = 'few_bids' AND column_name NOT LIKE '\\_%' \
             ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap();
    let columns: Vec<String> = columns.iter().map(|r| r.get::<_, String>(0)).collect();
    assert_eq!(
        columns,
        [
            "auction",
            "bidder",
            "price",
            "channel",
            "url",
            "date_time",
            "extra"
        ]
    );

    // Clients cannot write into it: not over pgwire...
    assert_refused(
        &client,
        "INSERT INTO few_bids (auction, bidder, price, channel, url, date_time, extra) \
         VALUES (1, 1, 1, 'c', 'u', now(), '')",
        "42809",
        "connector",
    )
    .await;
    match client
        .copy_in::<_, bytes::Bytes>("COPY few_bids FROM STDIN")
        .await
    {
        Ok(_) => panic!("COPY into a nexmark stream was accepted"),
        Err(error) => assert_eq!(sqlstate_and_message(&error).0, "42809"),
    }
    // ... nor from Kafka.
    assert_eq!(
        kafka_produce_error(&server, "few_bids", "{}").await,
        Some(RDKafkaErrorCode::InvalidTopic)
    );
    wait_for_count(&client, "few_bids", 1000).await;

    // A slower one over three partitions, killed half way.
    const EVENTS: usize = 12_000;
    client
        .batch_execute(&format!(
            "CREATE STREAM bids WITH (connector = 'nexmark', kind = 'bid', \
             rate = 4000, events = {EVENTS}, partitions = 3)"
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before: i64 = client
        .query_one("SELECT count(*) FROM bids", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        (1..EVENTS as i64).contains(&before),
        "{before} events written before the kill"
    );
    drop(client);
    drop(server);

    let server = start(&data);
    let client = connect(&server).await;
    wait_for_count(&client, "bids", EVENTS as i64).await;
    check_bids(&client, "bids", EVENTS).await;
    check_bids(&client, "few_bids", 1000).await;

    // Dropping the stream stops its generator; a new one of the same name
    // starts from the first event again.
    client
        .batch_execute(
            "DROP STREAM bids; CREATE STREAM bids WITH (connector = 'nexmark', kind = 'bid', \
             rate = 100000, events = 500)",
        )
        .await
        .unwrap();
    wait_for_count(&client, "bids", 500).await;
    check_bids(&client, "bids", 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nexmark_options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    for (statement, code, needle) in [
        (
            "CREATE STREAM p WITH (connector = 'nexmark', kind = 'people')",
            "22023",
            "kind",
        ),
        (
            "CREATE STREAM p (id BIGINT) WITH (connector = 'nexmark', kind = 'person')",
            "22023",
            "declare none",
        ),
        (
            "CREATE STREAM p WITH (connector = 'nexmark', kind = 'person', rate = 0)",
            "22023",
            "rate",
        ),
        (
            "CREATE STREAM p WITH (connector = 'kinesis', kind = 'person')",
            "22023",
            "connector",
        ),
    ] {
        assert_refused(&client, statement, code, needle).await;
    }
    // Persons and auctions have their own columns, and a watermark of
    // their own choosing.
    client
        .batch_execute(
            "CREATE STREAM people (WATERMARK FOR date_time AS date_time - INTERVAL '1 second') \
             WITH (connector = 'nexmark', kind = 'person', rate = 100000, events = 50); \
             CREATE STREAM auctions WITH (connector = 'nexmark', kind = 'auction', \
             rate = 100000, events = 60)",
        )
        .await
        .unwrap();
    wait_for_count(&client, "people", 50).await;
    wait_for_count(&client, "auctions", 60).await;
    let row = client
        .query_one(
            "SELECT count(DISTINCT id), min(length(email_address)) > 0 FROM people",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 50);
    assert!(row.get::<_, bool>(1));
    let later: i64 = client
        .query_one(
            "SELECT count(*) FROM auctions WHERE expires > date_time",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(later, 60);
}
