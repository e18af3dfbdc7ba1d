//! Streams from SQL: DDL, INSERT, SELECT over history, metadata columns,
//! pruning, errors with their SQLSTATE, and persistence across restarts.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use tempfile::TempDir;
use tributary_executor::{Engine, ExecError, Output, Session};
use tributary_storage::{Log, LogConfig, MetadataStore, open_object_store};

async fn open(dir: &TempDir) -> Session {
    let url = format!("file://{}", dir.path().join("objects").display());
    let store = open_object_store(&url).unwrap();
    let metadata = MetadataStore::open_sqlite(&dir.path().join("metadata.db"))
        .await
        .unwrap();
    let config = LogConfig {
        data_dir: dir.path().join("data"),
        local_object_root: tributary_storage::objects::local_root(&url),
        ..Default::default()
    };
    let log = Log::open(config, store, metadata).await.unwrap();
    Engine::new(log).unwrap().session()
}

async fn query(session: &Session, sql: &str) -> Vec<RecordBatch> {
    let mut outputs = session
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    match outputs.pop() {
        Some(Output::Rows(frame)) => frame.collect().await.unwrap(),
        other => panic!("{sql}: expected rows, got {other:?}"),
    }
}

async fn table(session: &Session, sql: &str) -> String {
    pretty_format_batches(&query(session, sql).await)
        .unwrap()
        .to_string()
}

async fn error(session: &Session, sql: &str) -> ExecError {
    match session.execute(sql).await {
        Err(e) => e,
        Ok(outputs) => {
            for output in outputs {
                if let Output::Rows(frame) = output
                    && let Err(e) = frame.collect().await
                {
                    return e.into();
                }
            }
            panic!("{sql}: expected an error")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_insert_select_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let session = open(&dir).await;
    session
        .execute(
            "CREATE STREAM orders (
               order_id BIGINT, customer TEXT, amount DOUBLE PRECISION, ts TIMESTAMP,
               WATERMARK FOR ts AS ts - INTERVAL '5 seconds'
             ) WITH (partitions = 3, format = 'json', key = 'customer', retention = '7 days')",
        )
        .await
        .unwrap();
    let inserted = session
        .execute(
            "INSERT INTO orders VALUES (1, 'ann', 12.5, '2026-01-01 10:00:00'), \
             (2, 'bob', 7.25, '2026-01-01 10:00:01'), (3, 'ann', 1000.0, '2026-01-01 10:00:02')",
        )
        .await
        .unwrap();
    assert!(
        matches!(inserted.as_slice(), [Output::Command { tag, rows: Some(3), .. }] if tag == "INSERT")
    );

    let expected = "\
+----------+----------+--------+---------------------+
| order_id | customer | amount | ts                  |
+----------+----------+--------+---------------------+
| 1        | ann      | 12.5   | 2026-01-01T10:00:00 |
| 3        | ann      | 1000.0 | 2026-01-01T10:00:02 |
+----------+----------+--------+---------------------+";
    let sql =
        "SELECT order_id, customer, amount, ts FROM orders WHERE amount > 10 ORDER BY order_id";
    assert_eq!(table(&session, sql).await, expected);

    // Keys pick partitions the way Kafka's default partitioner does: both
    // of ann's orders are in one partition, in order.
    let partitions = table(
        &session,
        "SELECT customer, count(DISTINCT _partition) AS p, min(_offset) AS first FROM orders GROUP BY customer ORDER BY customer",
    )
    .await;
    assert!(
        partitions.contains("| ann      | 1 | 0     |"),
        "{partitions}"
    );
    let keys = table(
        &session,
        "SELECT DISTINCT convert_from(_key, 'UTF8') AS k FROM orders ORDER BY k",
    )
    .await;
    assert!(
        keys.contains("| ann |") && keys.contains("| bob |"),
        "{keys}"
    );

    // Aggregates, CTEs and joins come from DataFusion.
    let totals = table(
        &session,
        "WITH t AS (SELECT customer, sum(amount) AS total FROM orders GROUP BY customer) \
         SELECT t.customer, t.total, count(*) AS n FROM t JOIN orders o ON o.customer = t.customer \
         GROUP BY t.customer, t.total ORDER BY t.customer",
    )
    .await;
    assert!(totals.contains("| ann      | 1012.5 | 2 |"), "{totals}");

    let streams = table(&session, "SHOW STREAMS").await;
    assert!(
        streams.contains("| orders | 3          | json   | customer | 7 days    | 3       |"),
        "{streams}"
    );
    let described = table(&session, "DESCRIBE orders").await;
    assert!(
        described.contains("watermark ts - INTERVAL '5 seconds'"),
        "{described}"
    );
    assert!(
        described.contains("| customer   | TEXT             | true     | key"),
        "{described}"
    );

    drop(session);
    let session = open(&dir).await;
    assert_eq!(
        table(&session, sql).await,
        expected,
        "history survives a restart"
    );
    session.engine().log().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let session = open(&dir).await;
    session
        .execute(
            "CREATE STREAM t (b BOOLEAN, s SMALLINT, i INT, l BIGINT, r REAL, d DOUBLE PRECISION, \
             n NUMERIC(10,2), x TEXT, v VARCHAR(5), dt DATE, tm TIME, ts TIMESTAMP, tz TIMESTAMPTZ, j JSONB)",
        )
        .await
        .unwrap();
    session
        .execute(
            "INSERT INTO t VALUES (true, 1, 2, 3, 1.5, 2.25, 12.34, 'hé \"quoted\"\nline', 'abc', \
             '2026-02-03', '04:05:06', '2026-02-03 04:05:06.789', '2026-02-03 04:05:06+00', '{\"a\": [1, 2]}'), \
             (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        )
        .await
        .unwrap();
    let out = table(
        &session,
        "SELECT b, s, i, l, r, d, n, x, v, dt, tm, ts, tz, j FROM t ORDER BY l NULLS LAST",
    )
    .await;
    for expected in [
        "| true | 1 | 2 | 3 | 1.5 | 2.25 | 12.34 |",
        "2026-02-03 | 04:05:06 | 2026-02-03T04:05:06.789 | 2026-02-03T04:05:06Z",
        "{\"a\": [1, 2]}",
    ] {
        assert!(out.contains(expected), "{expected} not in\n{out}");
    }
    let text = table(&session, "SELECT x FROM t WHERE x IS NOT NULL").await;
    assert!(text.contains("hé \"quoted\""), "{text}");
    let json = table(
        &session,
        "SELECT json_get_int(j, 'a', 1) AS second FROM t WHERE j IS NOT NULL",
    )
    .await;
    assert!(json.contains("| 2      |"), "{json}");
    session.engine().log().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_streams_and_metadata_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let session = open(&dir).await;
    session
        .execute("CREATE STREAM raw WITH (partitions = 2)")
        .await
        .unwrap();
    session
        .execute("INSERT INTO raw VALUES (NULL, '{\"n\": 1}'::bytea), ('k', '{\"n\": 2}'::bytea), (NULL, 'x'::bytea)")
        .await
        .unwrap();
    let values = table(
        &session,
        "SELECT convert_from(value, 'UTF8') AS v FROM raw ORDER BY v",
    )
    .await;
    assert!(values.contains("{\"n\": 2}"), "{values}");
    let counted = table(
        &session,
        "SELECT count(*) AS n FROM raw WHERE _partition = 0",
    )
    .await;
    let in_zero: i64 = counted
        .lines()
        .nth(3)
        .unwrap()
        .trim_matches(|c| c == '|' || c == ' ')
        .parse()
        .unwrap();
    assert!((1..=2).contains(&in_zero), "{counted}");

    session
        .execute("CREATE STREAM many (n BIGINT)")
        .await
        .unwrap();
    let values: Vec<String> = (0..1000).map(|n| format!("({n})")).collect();
    session
        .execute(&format!("INSERT INTO many VALUES {}", values.join(",")))
        .await
        .unwrap();
    let window = table(&session, "SELECT min(n) AS lo, max(n) AS hi, count(*) AS c FROM many WHERE _offset >= 100 AND _offset < 200").await;
    assert!(window.contains("| 100 | 199 | 100 |"), "{window}");
    let explained = table(
        &session,
        "EXPLAIN SELECT n FROM many WHERE _partition = 0 AND _offset > 5",
    )
    .await;
    assert!(explained.contains("StreamingTableExec"), "{explained}");
    session.engine().log().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_sqlstates_and_append_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let session = open(&dir).await;
    session
        .execute("CREATE STREAM e (id BIGINT NOT NULL, name TEXT)")
        .await
        .unwrap();
    let cases = [
        ("SELEC 1", "42601"),
        ("SELECT * FROM ordrs", "42P01"),
        ("SELECT nope FROM e", "42703"),
        ("CREATE STREAM e (x INT)", "42P07"),
        ("CREATE STREAM z (x GEOMETRY)", "42704"),
        ("INSERT INTO e VALUES ('abc', 'x')", "22P02"),
        ("INSERT INTO e VALUES (1, 'ok'), (NULL, 'bad')", "23502"),
        ("CREATE TABLE t (x INT)", "0A000"),
        ("DELETE FROM e", "0A000"),
        ("DROP STREAM nope", "42P01"),
        ("INSERT INTO e (_offset, id) VALUES (1, 1)", "0A000"),
    ];
    for (sql, sqlstate) in cases {
        let e = error(&session, sql).await;
        assert_eq!(e.sqlstate(), sqlstate, "{sql}: {e}");
    }
    let e = error(&session, "INSERT INTO e VALUES (1, 'ok'), (NULL, 'bad')").await;
    assert!(
        e.to_string().contains("row 2") && e.to_string().contains("\"id\""),
        "{e}"
    );
    let e = error(&session, "SELECT * FROM ordrs").await;
    assert!(e.to_string().contains("ordrs"), "{e}");
    let count = table(&session, "SELECT count(*) AS n FROM e").await;
    assert!(
        count.contains("| 0 |"),
        "nothing of a failed insert was appended: {count}"
    );
    session
        .execute("DROP STREAM IF EXISTS nope; DROP STREAM e")
        .await
        .unwrap();
    assert_eq!(error(&session, "SELECT * FROM e").await.sqlstate(), "42P01");
    session.engine().log().shutdown().await;
}
