//! The HTTP front door from outside, against a real server process: the
//! JSON SQL API (rows, errors with SQLSTATE and position, bad bodies), the
//! catalog and jobs, a live tail as server-sent events fed by an INSERT
//! over pgwire, and `/metrics` read by a Prometheus text parser.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::support::{connect, start};

fn url(server: &crate::support::Server, path: &str) -> String {
    format!("http://{}{path}", server.http)
}

/// GETs `path`; its JSON body.
async fn get_json(client: &reqwest::Client, server: &crate::support::Server, path: &str) -> Value {
    client
        .get(url(server, path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// POSTs `sql` to `/api/sql`; the status and the JSON body.
async fn run_sql(
    client: &reqwest::Client,
    server: &crate::support::Server,
    sql: &str,
) -> (u16, Value) {
    let response = client
        .post(url(server, "/api/sql"))
        .json(&json!({ "sql": sql }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_api_answers_typed_rows_and_errors_with_sqlstate() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = reqwest::Client::new();

    let (status, body) = run_sql(
        &client,
        &server,
        "CREATE STREAM orders (id BIGINT, customer TEXT, amount DOUBLE PRECISION, paid BOOLEAN);
         INSERT INTO orders VALUES (1, 'ann', 9.5, true), (2, 'bob', NULL, false), (3, 'ann', 20, true);
         SELECT id, customer, amount, paid FROM orders ORDER BY id",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(
        results[0],
        json!({"kind": "command", "tag": "CREATE STREAM", "rows": null, "elapsed_ms": results[0]["elapsed_ms"]})
    );
    assert_eq!(results[1]["tag"], "INSERT");
    assert_eq!(results[1]["rows"], 3);
    let rows = &results[2];
    assert_eq!(rows["kind"], "rows");
    assert_eq!(
        rows["columns"],
        json!([
            {"name": "id", "type": "BIGINT"},
            {"name": "customer", "type": "TEXT"},
            {"name": "amount", "type": "DOUBLE PRECISION"},
            {"name": "paid", "type": "BOOLEAN"},
        ])
    );
    assert_eq!(
        rows["rows"],
        json!([
            [1, "ann", 9.5, true],
            [2, "bob", null, false],
            [3, "ann", 20.0, true]
        ])
    );
    assert_eq!(rows["row_count"], 3);
    assert_eq!(rows["truncated"], false);

    // Fewer rows asked for than there are: all counted, the first sent.
    let response = client
        .post(url(&server, "/api/sql"))
        .json(&json!({ "sql": "SELECT id FROM orders ORDER BY id", "max_rows": 2 }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["results"][0]["rows"], json!([[1], [2]]));
    assert_eq!(body["results"][0]["row_count"], 3);
    assert_eq!(body["results"][0]["truncated"], true);

    // Errors: the SQLSTATE pgwire would send, and where in the text.
    let (status, body) = run_sql(&client, &server, "SELECT * FROM missing").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["sqlstate"], "42P01", "{body}");
    let (status, body) = run_sql(&client, &server, "SELECT 1;\nSELECT * FORM orders").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["sqlstate"], "42601", "{body}");
    // FORM is read as an alias of `*`'s table-less select; `orders` is
    // where the parser gives up: line 2, column 15.
    assert_eq!(body["error"]["position"], 25, "{body}");
    // A statement after good ones: theirs are answered, then the error.
    let (status, body) = run_sql(&client, &server, "SELECT 1 AS one; SELECT 1/0").await;
    assert_eq!(status, 400);
    assert_eq!(body["results"][0]["rows"], json!([[1]]));
    assert_eq!(body["error"]["sqlstate"], "22012", "{body}");
    let (status, body) = run_sql(&client, &server, "SUBSCRIBE TO orders").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["sqlstate"], "0A000", "{body}");

    // The same stream seen from psql's side of the same engine.
    let pg = connect(&server).await;
    let count: i64 = pg
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_bodies_get_4xx_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    // No pooled connections: the server closes one after refusing a body
    // it did not read (413), as HTTP allows.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let post = |body: Vec<u8>, content_type: &'static str| {
        client
            .post(url(&server, "/api/sql"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: [(Vec<u8>, &str, u16); 5] = [
        (b"{\"sql\": ".to_vec(), "application/json", 400),
        (b"not json at all".to_vec(), "application/json", 400),
        (
            b"{\"query\": \"SELECT 1\"}".to_vec(),
            "application/json",
            422,
        ),
        (b"{\"sql\": \"SELECT 1\"}".to_vec(), "text/plain", 415),
        (
            format!("{{\"sql\": \"SELECT '{}'\"}}", "x".repeat(2 << 20)).into_bytes(),
            "application/json",
            413,
        ),
    ];
    for (body, content_type, expected) in cases {
        let response = post(body, content_type).await.unwrap();
        assert_eq!(response.status().as_u16(), expected);
        let body: Value = response.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.is_empty(), "{body}");
    }
    let health: Value = get_json(&client, &server, "/health").await;
    assert_eq!(health["status"], "ok");
    let (status, _) = run_sql(&client, &server, "SELECT 1").await;
    assert_eq!(status, 200);

    // A live tail without its statement: a JSON error too.
    let response = client
        .get(url(&server, "/api/subscribe"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("sql"),
        "{body}"
    );

    // A request addressed to another host name (a page whose name was
    // rebound to this address) is refused; the console is not framed.
    let response = client
        .post(url(&server, "/api/sql"))
        .header("host", "attacker.example")
        .json(&json!({ "sql": "DROP STREAM IF EXISTS anything" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let page = client.get(url(&server, "/")).send().await.unwrap();
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_jobs_and_a_live_tail_over_server_sent_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = reqwest::Client::new();
    let (status, body) = run_sql(
        &client,
        &server,
        "CREATE STREAM clicks (page TEXT, ms BIGINT) WITH (partitions = 2, retention = '1 day');
         INSERT INTO clicks VALUES ('home', 5), ('cart', 7);
         CREATE MATERIALIZED VIEW slow AS SELECT page, ms FROM clicks WHERE ms > 6;
         CREATE SINK slow_copy INTO slow_pages AS SELECT page FROM clicks WHERE ms > 6",
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let catalog: Value = get_json(&client, &server, "/api/catalog").await;
    let clicks = catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "clicks")
        .unwrap_or_else(|| panic!("no clicks in {catalog}"));
    assert_eq!(clicks["partitions"], 2);
    assert_eq!(clicks["records"], 2);
    assert_eq!(clicks["retention"], "1 day");
    let columns: Vec<String> = clicks["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["column"].as_str().unwrap(),
                c["type"].as_str().unwrap()
            )
        })
        .collect();
    assert!(columns.contains(&"page TEXT".to_string()), "{columns:?}");
    assert!(columns.contains(&"ms BIGINT".to_string()), "{columns:?}");
    assert_eq!(catalog["views"][0]["name"], "slow");
    assert!(catalog["views"][0]["columns"].as_array().unwrap().len() >= 2);
    assert_eq!(catalog["sinks"][0]["name"], "slow_copy");
    assert_eq!(catalog["sinks"][0]["stream"], "slow_pages");

    let jobs: Value = get_json(&client, &server, "/api/jobs").await;
    let names: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"slow") && names.contains(&"slow_copy"),
        "{jobs}"
    );
    assert!(jobs["at_ms"].as_u64().unwrap() > 0);

    // A live tail of the view: its history, then a row inserted over pgwire.
    let response = client
        .get(url(&server, "/api/subscribe"))
        .query(&[("sql", "SUBSCRIBE TO slow")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = EventReader::new(response);
    let (kind, data) = events.next().await;
    assert_eq!(kind, "columns");
    let names: Vec<&str> = data
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["op", "page", "ms"]);
    assert_eq!(events.next_rows().await, json!([["+", "cart", 7]]));
    let pg = connect(&server).await;
    pg.batch_execute("INSERT INTO clicks VALUES ('faq', 1), ('checkout', 30)")
        .await
        .unwrap();
    assert_eq!(events.next_rows().await, json!([["+", "checkout", 30]]));

    // A statement that is not a subscription is refused before streaming.
    let response = client
        .get(url(&server, "/api/subscribe"))
        .query(&[("sql", "SELECT 1")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = client
        .get(url(&server, "/api/subscribe"))
        .query(&[("sql", "SUBSCRIBE TO nothing_here")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["sqlstate"], "42P01", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_move_with_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = reqwest::Client::new();
    let (status, _) = run_sql(
        &client,
        &server,
        "CREATE STREAM events (n BIGINT) WITH (partitions = 2);
         INSERT INTO events VALUES (1), (2), (3);
         CREATE MATERIALIZED VIEW big AS SELECT n FROM events WHERE n > 1",
    )
    .await;
    assert_eq!(status, 200);
    let pg = connect(&server).await;
    pg.query("SELECT count(*) FROM events", &[]).await.unwrap();
    wait_for_view_rows(&pg, "big", 2).await;

    let before = scrape(&client, &server).await;
    let records_in = sum(
        &before,
        "tributary_stream_records_in_total",
        &[("stream", "events")],
    );
    assert_eq!(records_in, 3.0);
    let high_watermarks = sum(
        &before,
        "tributary_partition_high_watermark",
        &[("stream", "events")],
    );
    assert_eq!(high_watermarks, 3.0);
    assert!(
        sum(
            &before,
            "tributary_stream_records_out_total",
            &[("stream", "events")]
        ) >= 3.0
    );
    assert!(
        sum(
            &before,
            "tributary_pgwire_message_duration_seconds_count",
            &[]
        ) >= 1.0
    );
    assert!(
        sum(
            &before,
            "tributary_http_request_duration_seconds_count",
            &[("route", "/api/sql")]
        ) >= 1.0
    );
    assert_eq!(
        sum(&before, "tributary_job_rows_in_total", &[("job", "big")]),
        3.0
    );
    assert_eq!(sum(&before, "tributary_job_lag", &[("job", "big")]), 0.0);

    // More traffic: the counters move.
    pg.batch_execute("INSERT INTO events VALUES (4), (5)")
        .await
        .unwrap();
    wait_for_view_rows(&pg, "big", 4).await;
    let after = scrape(&client, &server).await;
    assert_eq!(
        sum(
            &after,
            "tributary_stream_records_in_total",
            &[("stream", "events")]
        ),
        5.0
    );
    assert_eq!(
        sum(
            &after,
            "tributary_partition_high_watermark",
            &[("stream", "events")]
        ),
        5.0
    );
    assert_eq!(
        sum(&after, "tributary_job_rows_in_total", &[("job", "big")]),
        5.0
    );
    assert!(
        sum(
            &after,
            "tributary_pgwire_message_duration_seconds_count",
            &[]
        ) > sum(
            &before,
            "tributary_pgwire_message_duration_seconds_count",
            &[]
        )
    );
    assert!(
        sum(
            &after,
            "tributary_stream_bytes_in_total",
            &[("stream", "big")]
        ) > sum(
            &before,
            "tributary_stream_bytes_in_total",
            &[("stream", "big")]
        )
    );
}

/// A row behind the watermark, for a window already closed, is dropped
/// and counted: in SHOW JOBS and in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_rows_are_counted_in_show_jobs_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let pg = connect(&server).await;
    pg.batch_execute(
        "CREATE STREAM ticks (k TEXT, ts TIMESTAMP, WATERMARK FOR ts AS ts);
         CREATE MATERIALIZED VIEW per_window AS SELECT window_start, count(*) AS n \
         FROM TUMBLE(ticks, ts, INTERVAL '10 seconds') GROUP BY window_start EMIT ON WINDOW CLOSE;
         INSERT INTO ticks VALUES ('a', '2026-01-01 10:00:01'), ('a', '2026-01-01 10:00:16')",
    )
    .await
    .unwrap();
    // The watermark (10:00:16) has closed the window of 10:00:00.
    wait_for_view_rows(&pg, "per_window", 1).await;
    pg.batch_execute("INSERT INTO ticks VALUES ('a', '2026-01-01 10:00:03')")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let jobs = pg.query("SHOW JOBS", &[]).await.unwrap();
        let job = jobs
            .iter()
            .find(|row| row.get::<_, String>("name") == "per_window")
            .unwrap();
        let late: i64 = job.get("late_rows");
        if late == 1 {
            break;
        }
        assert_eq!(late, 0);
        assert!(
            std::time::Instant::now() < deadline,
            "the late row was not counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = scrape(&reqwest::Client::new(), &server).await;
    assert_eq!(
        sum(
            &metrics,
            "tributary_job_late_rows_total",
            &[("job", "per_window")]
        ),
        1.0
    );
    // The closed window keeps the count it was emitted with.
    let counts = pg
        .query("SELECT n FROM per_window", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<_, i64>(0))
        .collect::<Vec<_>>();
    assert_eq!(counts, [1]);
}

async fn wait_for_view_rows(pg: &tokio_postgres::Client, view: &str, rows: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let count: i64 = pg
            .query_one(&format!("SELECT count(*) FROM {view}"), &[])
            .await
            .unwrap()
            .get(0);
        if count == rows {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{view} has {count} rows, not {rows}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/metrics`, parsed by a Prometheus text-format parser.
pub(crate) async fn scrape(
    client: &reqwest::Client,
    server: &crate::support::Server,
) -> prometheus_parse::Scrape {
    let response = client.get(url(server, "/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The sum of every sample of `metric` whose labels include `labels`.
pub(crate) fn sum(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// Reads server-sent events off a streaming response.
struct EventReader {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl EventReader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event's name and JSON data, within ten seconds (keep-alive
    /// comments are skipped).
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut kind = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(rest) = line.strip_prefix("event:") {
                        kind = rest.trim().to_string();
                    } else if let Some(rest) = line.strip_prefix("data:") {
                        data.push_str(rest.trim_start());
                    }
                }
                if kind.is_empty() && data.is_empty() {
                    continue;
                }
                return (
                    kind,
                    serde_json::from_str(&data).unwrap_or(Value::String(data)),
                );
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("no event within 10 s")
                .expect("the event stream ended")
                .unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next `rows` event's rows.
    async fn next_rows(&mut self) -> Value {
        let (kind, data) = self.next().await;
        assert_eq!(kind, "rows", "{data}");
        data
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_creates_live_streams_views_and_a_sink_once() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_tributary"));
    let client = reqwest::Client::new();
    {
        let server =
            crate::support::Server::start_with_args(binary, &data_dir, &["--demo"]).unwrap();
        let pg = connect(&server).await;
        // The generator writes bids; the GROUP BY view follows them.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let bids: i64 = pg
                .query_one(
                    "SELECT coalesce(sum(bids), 0)::BIGINT FROM bids_per_channel",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if bids > 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the demo view stays empty"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let catalog: Value = get_json(&client, &server, "/api/catalog").await;
        let names = |kind: &str| -> Vec<String> {
            catalog[kind]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert!(names("streams").contains(&"bids".to_string()), "{catalog}");
        let mut views = names("views");
        views.sort();
        assert_eq!(views, ["bids_per_channel", "busy_auctions", "top_bid_10s"]);
        assert_eq!(names("sinks"), ["big_bids"]);
    }
    // Started again with --demo: what is there is kept, nothing fails.
    let server = crate::support::Server::start_with_args(binary, &data_dir, &["--demo"]).unwrap();
    let (status, body) = run_sql(&client, &server, "SHOW MATERIALIZED VIEWS").await;
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["row_count"], 3);
}
