//! Materialized views against a real server process: a view holds what its
//! query gives as a batch SELECT over the same rows, whether the rows were
//! there before the view (backfill) or came after, or while it was being
//! created; a SIGKILL loses and repeats nothing; Kafka consumers read its
//! change records; what a view cannot run yet is refused with 0A000.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::NewPartitions;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka_admin::{admin, options};
use crate::support::{assert_refused, connect, kafka_produce_error, rows, start};

/// Waits until `view_query` gives what `batch_query` gives, or panics
/// after a minute with both.
async fn wait_until_equal(client: &tokio_postgres::Client, view_query: &str, batch_query: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = rows(client, view_query).await;
        let batch = rows(client, batch_query).await;
        if view == batch {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after a minute the view still differs:\nview:  {:?}\nbatch: {:?}",
            &view[..view.len().min(5)],
            &batch[..batch.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn insert_orders(client: &tokio_postgres::Client, ids: std::ops::Range<i64>) {
    let values: Vec<String> = ids
        .map(|id| {
            format!(
                "({id}, '{}', {}.5, TIMESTAMP '2026-01-01 10:00:00' + INTERVAL '{id} seconds')",
                ["ann", "bob", "cy", "dee"][id as usize % 4],
                id % 100
            )
        })
        .collect();
    client
        .batch_execute(&format!("INSERT INTO orders VALUES {}", values.join(", ")))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_holds_its_query_over_history_and_new_rows() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    client
        .batch_execute(
            "CREATE STREAM orders (order_id BIGINT, customer TEXT, amount DOUBLE PRECISION, \
             ts TIMESTAMP) WITH (partitions = 3, key = 'customer')",
        )
        .await
        .unwrap();
    insert_orders(&client, 0..300).await;
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW big AS SELECT order_id, upper(customer) AS who, \
             amount * 2 AS doubled, ts FROM orders WHERE amount > 50",
        )
        .await
        .unwrap();
    insert_orders(&client, 300..600).await;
    let batch = "SELECT order_id, upper(customer), amount * 2, ts FROM orders \
                 WHERE amount > 50 ORDER BY order_id";
    wait_until_equal(
        &client,
        "SELECT order_id, who, doubled, ts FROM big ORDER BY order_id",
        batch,
    )
    .await;
    assert_eq!(rows(&client, batch).await.len(), 300);
    // The job is running and has caught up; it has read every input row
    // (the server has not restarted) and written the view's.
    // Its throughput, over the last ten seconds, is what it has read.
    let jobs = rows(&client, "SHOW JOBS").await;
    let [job] = &jobs[..] else { panic!("{jobs:?}") };
    let (job, rate) = job.rsplit_once('|').unwrap();
    assert_eq!(
        job, "big|materialized view|running|orders|0|600|300|NULL|0",
        "{jobs:?}"
    );
    let rate: i64 = rate.parse().unwrap();
    assert!((1..=600).contains(&rate), "{jobs:?}");

    // A view over the view.
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW big_ann AS SELECT order_id FROM big WHERE who = 'ANN'",
        )
        .await
        .unwrap();
    insert_orders(&client, 600..700).await;
    wait_until_equal(
        &client,
        "SELECT order_id FROM big_ann ORDER BY order_id",
        "SELECT order_id FROM orders WHERE amount > 50 AND customer = 'ann' ORDER BY order_id",
    )
    .await;

    // Listed as views, not as streams.
    let streams = rows(&client, "SHOW STREAMS").await;
    assert_eq!(streams.len(), 1, "{streams:?}");
    let views = rows(&client, "SHOW MATERIALIZED VIEWS").await;
    assert_eq!(views.len(), 2, "{views:?}");
    assert!(views[0].starts_with("big|"), "{views:?}");

    // Kafka consumers read the changes as JSON with their op.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &server.kafka)
        .set("group.id", "view-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("big_ann", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let expected = rows(&client, "SELECT count(*) FROM big_ann").await[0]
        .parse::<usize>()
        .unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < expected && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            let value: serde_json::Value =
                serde_json::from_slice(message.payload().unwrap()).unwrap();
            assert_eq!(value["op"], "+", "{value}");
            seen.push(value["order_id"].as_i64().unwrap());
        }
    }
    assert_eq!(seen.len(), expected);

    // A GROUP BY view's changelog, as Kafka consumers read it: each record
    // keyed by its group, an update as the old row taken back ("-") and
    // the new one added ("+"); folding the records by key gives the view.
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW per_customer AS \
             SELECT customer, count(*) AS orders FROM orders GROUP BY customer",
        )
        .await
        .unwrap();
    let by_customer = "SELECT customer, count(*) FROM orders GROUP BY customer ORDER BY customer";
    let view_rows = "SELECT customer, orders FROM per_customer ORDER BY customer";
    // The history first (each customer's orders are in one partition, so
    // one chunk each: no update yet), then new orders update every group.
    wait_until_equal(&client, view_rows, by_customer).await;
    insert_orders(&client, 700..720).await;
    wait_until_equal(&client, view_rows, by_customer).await;
    // A SELECT gives one row per customer, however many changes there were.
    assert_eq!(
        rows(&client, "SELECT count(*) FROM per_customer").await,
        ["4"]
    );
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("per_customer", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let end = rows(&client, "SELECT max(_offset) + 1 FROM per_customer").await[0]
        .parse::<i64>()
        .unwrap();
    let mut latest = std::collections::BTreeMap::new();
    let mut taken_back = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next = 0;
    while next < end && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            // Records of the previous assignment may still be on their way.
            if message.topic() != "per_customer" {
                continue;
            }
            next = message.offset() + 1;
            let key: serde_json::Value = serde_json::from_slice(message.key().unwrap()).unwrap();
            let value: serde_json::Value =
                serde_json::from_slice(message.payload().unwrap()).unwrap();
            assert_eq!(key["customer"], value["customer"], "{key} {value}");
            if value["op"] == "-" {
                taken_back += 1;
            }
            latest.insert(key.to_string(), value);
        }
    }
    assert!(taken_back > 0, "20 new orders updated every customer");
    let folded: Vec<String> = latest
        .values()
        .map(|v| {
            assert_eq!(v["op"], "+", "{v}");
            format!("{}|{}", v["customer"].as_str().unwrap(), v["orders"])
        })
        .collect();
    assert_eq!(folded, rows(&client, by_customer).await);
    client
        .batch_execute("DROP MATERIALIZED VIEW per_customer")
        .await
        .unwrap();

    // A sink's stream, as Kafka consumers read it: the query's rows as
    // plain JSON objects, each once.
    client
        .batch_execute(
            "CREATE SINK cheap_sink INTO cheap_orders AS \
             SELECT order_id, amount FROM orders WHERE amount < 10",
        )
        .await
        .unwrap();
    let cheap = "SELECT order_id FROM orders WHERE amount < 10 ORDER BY order_id";
    wait_until_equal(
        &client,
        "SELECT order_id FROM cheap_orders ORDER BY order_id",
        cheap,
    )
    .await;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("cheap_orders", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let expected = rows(&client, cheap).await;
    let mut sunk = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sunk.len() < expected.len() && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            if message.topic() != "cheap_orders" {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_slice(message.payload().unwrap()).unwrap();
            assert!(value.get("op").is_none(), "{value}");
            assert!(value["amount"].as_f64().unwrap() < 10.0, "{value}");
            sunk.push(value["order_id"].as_i64().unwrap());
        }
    }
    sunk.sort();
    let sunk: Vec<String> = sunk.iter().map(i64::to_string).collect();
    assert_eq!(sunk, expected);
    client
        .batch_execute("DROP SINK cheap_sink; DROP STREAM cheap_orders")
        .await
        .unwrap();

    // What a view cannot run, or cannot be, is refused.
    for (statement, code, needle) in [
        (
            "CREATE MATERIALIZED VIEW per_customer AS SELECT array_agg(customer) FROM \
             (SELECT customer, count(*) AS n FROM orders GROUP BY customer)",
            "0A000",
            "array_agg(...) over rows that change",
        ),
        (
            "CREATE MATERIALIZED VIEW j AS SELECT a.order_id FROM orders a JOIN orders b ON a.order_id = b.order_id",
            "0A000",
            "joins",
        ),
        (
            "CREATE MATERIALIZED VIEW m AS SELECT _offset, order_id FROM orders",
            "0A000",
            "_offset",
        ),
        (
            "CREATE MATERIALIZED VIEW w AS SELECT * FROM orders EMIT ON WINDOW CLOSE",
            "0A000",
            "EMIT ON WINDOW CLOSE",
        ),
        (
            "CREATE MATERIALIZED VIEW x AS SELECT * FROM ordrs",
            "42P01",
            "ordrs",
        ),
        (
            "CREATE MATERIALIZED VIEW big AS SELECT order_id FROM orders",
            "42P07",
            "big",
        ),
        (
            "INSERT INTO big (order_id) VALUES (1)",
            "42809",
            "materialized view",
        ),
        (
            "ALTER STREAM big SET (retention = '1 day')",
            "42809",
            "materialized view",
        ),
        ("DROP STREAM orders", "2BP01", "big"),
        ("DROP STREAM big", "42809", "DROP MATERIALIZED VIEW"),
        ("DROP MATERIALIZED VIEW orders", "42809", "DROP STREAM"),
        ("DROP MATERIALIZED VIEW big", "2BP01", "big_ann"),
    ] {
        assert_refused(&client, statement, code, needle).await;
    }

    // Nor from Kafka: producing to a view, growing it, or deleting what a
    // view reads.
    let admin = admin(&server);
    let grown = admin
        .create_partitions([&NewPartitions::new("big", 2)], &options())
        .await
        .unwrap();
    assert_eq!(
        grown[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidTopic
    );
    let deleted = admin.delete_topics(&["orders"], &options()).await.unwrap();
    assert_eq!(
        deleted[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::PolicyViolation
    );
    assert_eq!(
        kafka_produce_error(&server, "big", "{\"order_id\": 1}").await,
        Some(RDKafkaErrorCode::InvalidTopic)
    );

    client
        .batch_execute(
            "DROP MATERIALIZED VIEW big_ann; DROP MATERIALIZED VIEW big; \
             DROP MATERIALIZED VIEW IF EXISTS big; DROP STREAM orders",
        )
        .await
        .unwrap();
    assert!(rows(&client, "SHOW MATERIALIZED VIEWS").await.is_empty());
}

/// A view created while its input is being written, over a server killed
/// mid-stream: once the input is complete, the view equals the batch
/// answer, with no row lost or written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_is_exact_across_a_sigkill_and_its_creation_seam() {
    const EVENTS: usize = 16_000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE STREAM bids WITH (connector = 'nexmark', kind = 'bid', rate = 5000, \
             events = {EVENTS}, partitions = 2)"
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW even_bids AS \
             SELECT auction, bidder, price, date_time FROM bids WHERE price % 2 = 0",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let written: i64 = client
        .query_one("SELECT count(*) FROM even_bids", &[])
        .await
        .unwrap()
        .get(0);
    assert!(written > 0, "the view had written nothing before the kill");
    drop(client);
    drop(server);

    let server = start(&data);
    let client = connect(&server).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows(&client, "SELECT count(*) FROM bids").await != [EVENTS.to_string()] {
        assert!(Instant::now() < deadline, "the generator did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let summary = "count(*), sum(price), sum(auction), min(date_time), max(date_time)";
    wait_until_equal(
        &client,
        &format!("SELECT {summary} FROM even_bids"),
        &format!("SELECT {summary} FROM bids WHERE price % 2 = 0"),
    )
    .await;
    // And it stays so: nothing more is written after the input ends.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rows(&client, &format!("SELECT {summary} FROM even_bids")).await,
        rows(
            &client,
            &format!("SELECT {summary} FROM bids WHERE price % 2 = 0")
        )
        .await
    );
}

/// Creates `orders` and `spend`, a GROUP BY view over it.
async fn create_spend(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "CREATE STREAM orders (order_id BIGINT, customer TEXT, amount DOUBLE PRECISION, ts TIMESTAMP);
             CREATE MATERIALIZED VIEW spend AS \
             SELECT customer, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer",
        )
        .await
        .unwrap();
}

/// The changes of `view` SELECTs have read from the log, by `/metrics`.
async fn changes_folded(server: &crate::support::Server, view: &str) -> f64 {
    crate::web::sum(
        &crate::web::scrape(&reqwest::Client::new(), server).await,
        "tributary_view_changes_folded_total",
        &[("view", view)],
    )
}

/// A keyed view's rows are kept between SELECTs: each change the job
/// wrote is folded once, however often the view is read, and the rows
/// read are still the batch query's as groups change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_of_a_keyed_view_is_folded_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    create_spend(&client).await;
    let view = "SELECT customer, n, total FROM spend ORDER BY customer";
    let batch =
        "SELECT customer, count(*), sum(amount) FROM orders GROUP BY customer ORDER BY customer";
    let mut selects = 0;
    for round in 0..5 {
        // Each INSERT is its own step of the job: every customer's row
        // is taken back and added again.
        insert_orders(&client, round * 40..round * 40 + 40).await;
        wait_until_equal(&client, view, batch).await;
        for _ in 0..3 {
            assert_eq!(rows(&client, view).await, rows(&client, batch).await);
        }
        selects += 4;
    }
    assert_eq!(
        rows(&client, "SELECT * FROM spend WHERE customer = 'bob'")
            .await
            .len(),
        1,
        "a point lookup finds the group's one row"
    );
    let written: i64 = client
        .query("SHOW JOBS", &[])
        .await
        .unwrap()
        .iter()
        .find(|row| row.get::<_, String>("name") == "spend")
        .expect("SHOW JOBS lists spend")
        .get("rows_out");
    let folded = changes_folded(&server, "spend").await;
    assert_eq!(
        folded, written as f64,
        "{written} changes written, {folded} folded over {selects}+ SELECTs"
    );
}

/// The rows a SELECT folded are saved: after a restart, a keyed view is
/// read from them and the changes written after them, not from its first
/// change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_reads_a_keyed_view_from_its_saved_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data);
    let client = connect(&server).await;
    create_spend(&client).await;
    let insert = |ids: std::ops::Range<i64>| {
        let values: Vec<String> = ids
            .map(|id| {
                format!(
                    "({id}, 'c{}', 1.5, TIMESTAMP '2026-01-01 10:00:00')",
                    id % 5000
                )
            })
            .collect();
        format!("INSERT INTO orders VALUES {}", values.join(", "))
    };
    let view = "SELECT count(*), sum(n), sum(total) FROM spend";
    let batch = "SELECT count(DISTINCT customer), count(*), sum(amount) FROM orders";
    // 5,000 customers: 5,000 changes, enough for the SELECT that folds
    // them to save the rows.
    client.batch_execute(&insert(0..5000)).await.unwrap();
    wait_until_equal(&client, view, batch).await;
    // Ten customers order again: 20 changes after the saved rows.
    client.batch_execute(&insert(5000..5010)).await.unwrap();
    wait_until_equal(&client, view, batch).await;
    drop(client);
    drop(server);

    let server = start(&data);
    let client = connect(&server).await;
    wait_until_equal(&client, view, batch).await;
    assert_eq!(
        rows(&client, "SELECT n, total FROM spend WHERE customer = 'c3'").await,
        ["2|3"]
    );
    assert_eq!(
        changes_folded(&server, "spend").await,
        20.0,
        "changes folded after the restart"
    );
}
