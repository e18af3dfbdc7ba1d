//! SQL over the Postgres wire with a real client (tokio-postgres) against a
//! real server process: simple and extended protocol, parameters, errors
//! with SQLSTATE on a connection that stays usable, restart persistence.

use crate::support::{connect, sqlstate_and_message, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_over_pgwire() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;

    client
        .batch_execute(
            "CREATE STREAM orders (order_id BIGINT, customer TEXT, amount DOUBLE PRECISION, ts TIMESTAMP, \
             WATERMARK FOR ts AS ts - INTERVAL '5 seconds') WITH (partitions = 3, key = 'customer'); \
             INSERT INTO orders VALUES (1, 'ann', 12.5, '2026-01-01 10:00:00'), (2, 'bob', 7.25, '2026-01-01 10:00:01')",
        )
        .await
        .unwrap();

    // Simple protocol: text rows.
    let rows = client
        .simple_query("SELECT order_id, customer FROM orders ORDER BY order_id")
        .await
        .unwrap();
    let values: Vec<(String, String)> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((r.get(0).unwrap().to_string(), r.get(1).unwrap().to_string()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        values,
        [("1".into(), "ann".into()), ("2".into(), "bob".into())]
    );

    // Extended protocol with parameters, binary results.
    let inserted = client
        .execute(
            "INSERT INTO orders VALUES ($1, $2, $3, $4)",
            &[&3i64, &"cy", &99.5f64, &chrono_like_timestamp()],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    let row = client
        .query_one(
            "SELECT customer, amount FROM orders WHERE order_id = $1",
            &[&3i64],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "cy");
    assert_eq!(row.get::<_, f64>(1), 99.5);

    // A prepared statement reused many times.
    let statement = client
        .prepare("SELECT count(*) FROM orders WHERE amount > $1")
        .await
        .unwrap();
    for i in 0..1000 {
        let threshold = f64::from(i % 3) * 10.0;
        let count: i64 = client
            .query_one(&statement, &[&threshold])
            .await
            .unwrap()
            .get(0);
        let expected = [3, 2, 1][(i % 3) as usize];
        assert_eq!(count, expected, "threshold {threshold}");
    }

    // Errors carry SQLSTATEs and leave the session usable.
    for (sql, code) in [
        ("SELECT * FROM ordrs", "42P01"),
        ("SELECT nope FROM orders", "42703"),
        ("SELEC 1", "42601"),
        ("CREATE STREAM orders (x INT)", "42P07"),
        (
            "INSERT INTO orders VALUES ('x', 'y', 1, '2026-01-01')",
            "22P02",
        ),
    ] {
        let error = client.simple_query(sql).await.unwrap_err();
        let (sqlstate, message) = sqlstate_and_message(&error);
        assert_eq!(sqlstate, code, "{sql}: {message}");
    }
    let error = client
        .query("SELECT * FROM ordrs WHERE order_id = $1", &[&1i64])
        .await
        .unwrap_err();
    let (sqlstate, message) = sqlstate_and_message(&error);
    assert_eq!(sqlstate, "42P01");
    assert!(message.contains("ordrs"), "{message}");

    // Session parameters drivers send, and no-op transactions.
    client
        .batch_execute("SET application_name = 'tests'; SET extra_float_digits = 3")
        .await
        .unwrap();
    let name = client
        .query_one("SHOW application_name", &[])
        .await
        .unwrap();
    assert_eq!(name.get::<_, String>(0), "tests");
    client
        .batch_execute(
            "BEGIN; INSERT INTO orders VALUES (4, 'dee', 1.0, '2026-01-01 10:00:03'); COMMIT",
        )
        .await
        .unwrap();

    let streams = client.simple_query("SHOW STREAMS").await.unwrap();
    assert!(streams.iter().any(
        |m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("orders"))
    ));
    let described = client.query("DESCRIBE orders", &[]).await.unwrap();
    assert_eq!(described.len(), 8);

    // Restart: the same answers.
    drop(client);
    drop(server);
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    let count: i64 = client
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 4);
}

/// 2026-01-01 10:00:02 UTC.
fn chrono_like_timestamp() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_261_602)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_of_every_type_round_trip() {
    use std::time::{Duration, UNIX_EPOCH};
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    client
        .batch_execute(
            "CREATE STREAM p (b BOOLEAN, s SMALLINT, i INT, l BIGINT, r REAL, d DOUBLE PRECISION, \
             x TEXT, v VARCHAR(10), y BYTEA, ts TIMESTAMP, tz TIMESTAMPTZ)",
        )
        .await
        .unwrap();
    let ts = UNIX_EPOCH + Duration::from_micros(1_767_261_602_123_456);
    let bytes: Vec<u8> = vec![0, 1, 2, 255];
    let inserted = client
        .execute(
            "INSERT INTO p VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &true,
                &-7i16,
                &42i32,
                &9_000_000_000i64,
                &1.5f32,
                &-2.25f64,
                &"héllo",
                &"abc",
                &bytes,
                &ts,
                &ts,
            ],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    let row = client
        .query_one(
            "SELECT b, s, i, l, r, d, x, v, y, ts, tz FROM p WHERE l = $1 AND b = $2",
            &[&9_000_000_000i64, &true],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i16>(1), -7);
    assert_eq!(row.get::<_, i32>(2), 42);
    assert_eq!(row.get::<_, i64>(3), 9_000_000_000);
    assert_eq!(row.get::<_, f32>(4), 1.5);
    assert_eq!(row.get::<_, f64>(5), -2.25);
    assert_eq!(row.get::<_, String>(6), "héllo");
    assert_eq!(row.get::<_, String>(7), "abc");
    assert_eq!(row.get::<_, Vec<u8>>(8), bytes);
    assert_eq!(row.get::<_, std::time::SystemTime>(9), ts);
    assert_eq!(row.get::<_, std::time::SystemTime>(10), ts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_query_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = std::sync::Arc::new(connect(&server).await);
    client
        .batch_execute(
            "CREATE STREAM n (x BIGINT); \
             INSERT INTO n SELECT value FROM generate_series(1, 20000)",
        )
        .await
        .unwrap();
    // 400 million pairs: seconds of work, far longer than the wait below.
    let running = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .query_one(
                    "SELECT count(*) FROM n a CROSS JOIN n b WHERE a.x + b.x < 0",
                    &[],
                )
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    client
        .cancel_token()
        .cancel_query(tokio_postgres::NoTls)
        .await
        .unwrap();
    let error = running.await.unwrap().unwrap_err();
    assert_eq!(sqlstate_and_message(&error).0, "57014", "{error}");
    // The connection goes on.
    let count: i64 = client
        .query_one("SELECT count(*) FROM n", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portals_return_rows_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let mut client = connect(&server).await;
    client
        .batch_execute(
            "CREATE STREAM n (x BIGINT); \
             INSERT INTO n SELECT value FROM generate_series(1, 25)",
        )
        .await
        .unwrap();
    let transaction = client.transaction().await.unwrap();
    let statement = transaction
        .prepare("SELECT x FROM n WHERE x > $1 ORDER BY x")
        .await
        .unwrap();
    let portal = transaction.bind(&statement, &[&0i64]).await.unwrap();
    let mut pieces = Vec::new();
    loop {
        let rows = transaction.query_portal(&portal, 10).await.unwrap();
        if rows.is_empty() {
            break;
        }
        pieces.push(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>());
    }
    let sizes: Vec<usize> = pieces.iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(pieces.concat(), (1..=25).collect::<Vec<i64>>());
    transaction.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_date_time_and_interval_parameters_round_trip() {
    use chrono::{NaiveDate, NaiveTime};
    use rust_decimal::Decimal;
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    client
        .batch_execute("CREATE STREAM q (n NUMERIC(10,2), d DATE, t TIME, iv INTERVAL, j JSONB)")
        .await
        .unwrap();
    let amount = Decimal::new(-1_234_567, 2);
    let day = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();
    let time = NaiveTime::from_hms_micro_opt(23, 59, 58, 123_456).unwrap();
    let inserted = client
        .execute(
            "INSERT INTO q VALUES ($1, $2, $3, INTERVAL '1 day 2 hours', $4)",
            &[&amount, &day, &time, &r#"{"a": [1, 2]}"#],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    let row = client
        .query_one(
            "SELECT n, d, t, j FROM q WHERE d = $1 AND n = $2",
            &[&day, &amount],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Decimal>(0), amount);
    assert_eq!(row.get::<_, NaiveDate>(1), day);
    assert_eq!(row.get::<_, NaiveTime>(2), time);
    assert_eq!(row.get::<_, String>(3), r#"{"a": [1, 2]}"#);
    let text = client
        .simple_query("SELECT n, d, t, iv FROM q")
        .await
        .unwrap();
    let row = text
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .unwrap();
    let values: Vec<&str> = (0..4).map(|i| row.get(i).unwrap()).collect();
    assert_eq!(
        values,
        [
            "-12345.67",
            "2026-02-28",
            "23:59:58.123456",
            "1 day 02:00:00"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datafusion_settings_belong_to_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let setter = connect(&server).await;
    let other = connect(&server).await;

    let default = batch_size(&other).await;
    assert_ne!(default, "7");
    setter
        .batch_execute("SET datafusion.execution.batch_size = 7")
        .await
        .unwrap();
    assert_eq!(batch_size(&setter).await, "7");
    assert_eq!(batch_size(&other).await, default, "another connection");
    let later = connect(&server).await;
    assert_eq!(batch_size(&later).await, default, "a later connection");
}

/// `datafusion.execution.batch_size` as the connection sees it.
async fn batch_size(client: &tokio_postgres::Client) -> String {
    client
        .query_one(
            "SELECT value FROM information_schema.df_settings \
             WHERE name = 'datafusion.execution.batch_size'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}
