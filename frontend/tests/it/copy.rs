//! `COPY ... FROM STDIN` with a real client (tokio-postgres) against a real
//! server process: a million rows in and back after a restart, and bad data
//! rejected with the line number and nothing appended.

use bytes::Bytes;
use futures::SinkExt;

use crate::support::{connect, sqlstate_and_message, start};

const ROWS: u64 = 1_000_000;

async fn count_and_sums(client: &tokio_postgres::Client) -> (i64, i64, f64) {
    let row = client
        .query_one("SELECT count(*), sum(id), sum(amount) FROM big", &[])
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_rows_copied_in_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data);
    let client = connect(&server).await;
    client
        .batch_execute(
            "CREATE STREAM big (id BIGINT NOT NULL, name TEXT, amount DOUBLE PRECISION, \
             ts TIMESTAMP, ok BOOLEAN) WITH (partitions = 4)",
        )
        .await
        .unwrap();

    let sink = client
        .copy_in("COPY big FROM STDIN WITH (FORMAT csv, HEADER)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    let mut chunk = String::from("id,name,amount,ts,ok\n");
    for id in 0..ROWS {
        let quoted = if id % 10 == 0 {
            "\"a, quoted\""
        } else {
            "plain"
        };
        chunk.push_str(&format!(
            "{id},{quoted},{}.5,2026-01-01 00:00:{:02},{}\n",
            id % 100,
            id % 60,
            if id % 2 == 0 { 't' } else { 'f' }
        ));
        if chunk.len() > 60_000 {
            sink.send(Bytes::from(std::mem::take(&mut chunk)))
                .await
                .unwrap();
        }
    }
    sink.send(Bytes::from(chunk)).await.unwrap();
    let copied = sink.finish().await.unwrap();
    assert_eq!(copied, ROWS);

    let expected_ids = (ROWS * (ROWS - 1) / 2) as i64;
    let expected_amount: f64 = (0..ROWS).map(|id| (id % 100) as f64 + 0.5).sum();
    let (count, ids, amount) = count_and_sums(&client).await;
    assert_eq!((count, ids), (ROWS as i64, expected_ids));
    assert!(
        (amount - expected_amount).abs() < 1e-6 * expected_amount,
        "{amount}"
    );
    let quoted: i64 = client
        .query_one(
            "SELECT count(*) FROM big WHERE name = 'a, quoted' AND ok",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(quoted, (ROWS / 10) as i64);

    // A killed and restarted server gives the same answers.
    drop(client);
    drop(server);
    let server = start(&data);
    let client = connect(&server).await;
    let (count, ids, amount_again) = count_and_sums(&client).await;
    assert_eq!((count, ids), (ROWS as i64, expected_ids));
    assert_eq!(amount_again.to_bits(), amount.to_bits());
}

async fn copy(
    client: &tokio_postgres::Client,
    statement: &str,
    data: &str,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in(statement).await?;
    futures::pin_mut!(sink);
    // Split the data in two so a line crosses CopyData messages.
    let middle = data.len() / 2;
    sink.send(Bytes::copy_from_slice(&data.as_bytes()[..middle]))
        .await?;
    sink.send(Bytes::copy_from_slice(&data.as_bytes()[middle..]))
        .await?;
    sink.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_text_and_csv_and_their_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    client
        .batch_execute("CREATE STREAM t (id INT NOT NULL, note TEXT, raw BYTEA, day DATE)")
        .await
        .unwrap();

    // Text format: tabs, \N for NULL, backslash escapes (so BYTEA's hex
    // form is written \\x...), a column list.
    let copied = copy(
        &client,
        "COPY t (id, note, raw) FROM STDIN",
        "1\tone\\ttab\t\\\\x0102\n2\t\\N\t\\N\n",
    )
    .await
    .unwrap();
    assert_eq!(copied, 2);
    let rows = client
        .query("SELECT id, note, raw, day FROM t ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(
        rows[0].get::<_, Option<String>>(1).as_deref(),
        Some("one\ttab")
    );
    assert_eq!(rows[0].get::<_, Option<Vec<u8>>>(2), Some(vec![1, 2]));
    assert_eq!(rows[1].get::<_, Option<String>>(1), None);

    // Bad data: the error names the line, and nothing of the COPY is kept.
    for (statement, data, code, needle) in [
        (
            "COPY t FROM STDIN",
            "3\ta\t\\N\t2026-01-01\n4\tb\t\\N\tnot a day\n",
            "22P02",
            "line 2",
        ),
        (
            "COPY t FROM STDIN (FORMAT csv, HEADER)",
            "id,note,raw,day\n5,c,,2026-01-02\nfive,d,,\n",
            "22P02",
            "line 3",
        ),
        (
            "COPY t FROM STDIN (FORMAT csv)",
            "6,e,,2026-01-03\n7,f\n",
            "22P04",
            "missing data for column \"raw\"",
        ),
        (
            "COPY t FROM STDIN (FORMAT csv)",
            "8,g,,,extra\n",
            "22P04",
            "extra data",
        ),
        (
            "COPY t FROM STDIN (FORMAT csv)",
            "9,h,,\n,i,,\n",
            "23502",
            "line 2",
        ),
        (
            "COPY t FROM STDIN (FORMAT csv)",
            "10,\"open quote,,\n",
            "22P04",
            "unterminated",
        ),
    ] {
        let error = copy(&client, statement, data).await.unwrap_err();
        let (sqlstate, message) = sqlstate_and_message(&error);
        assert_eq!(sqlstate, code, "{data:?}: {message}");
        assert!(message.contains(needle), "{data:?}: {message}");
    }
    for (statement, code) in [
        ("COPY t (id, nope) FROM STDIN", "42703"),
        ("COPY nowhere FROM STDIN", "42P01"),
        ("COPY t TO STDOUT", "0A000"),
        ("COPY t FROM STDIN (FORMAT xml)", "22023"),
    ] {
        let error = client
            .copy_in::<_, Bytes>(statement)
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(sqlstate_and_message(&error).0, code, "{statement}");
    }

    // The session is still usable and holds only the first two rows.
    let count: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
}

/// A COPY in progress is listed by SHOW JOBS with the lines it has read,
/// and leaves the list when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_jobs_lists_a_copy_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let client = connect(&server).await;
    let watcher = connect(&server).await;
    client
        .batch_execute("CREATE STREAM slow_copy (id BIGINT)")
        .await
        .unwrap();
    let copy_rows = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
        rows.iter()
            .filter(|r| r.get::<_, String>("kind") == "copy")
            .map(|r| {
                format!(
                    "{}|{}|{}",
                    r.get::<_, String>("name"),
                    r.get::<_, String>("status"),
                    r.get::<_, i64>("rows_in")
                )
            })
            .collect()
    };
    let sink = client
        .copy_in::<_, Bytes>("COPY slow_copy FROM STDIN")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    let lines: String = (0..1000).map(|i| format!("{i}\n")).collect();
    sink.send(Bytes::from(lines)).await.unwrap();
    sink.flush().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let listed = copy_rows(watcher.query("SHOW JOBS", &[]).await.unwrap());
        if listed == ["COPY slow_copy|reading: 1000 lines so far|1000"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SHOW JOBS: {listed:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sink.finish().await.unwrap(), 1000);
    let listed = copy_rows(watcher.query("SHOW JOBS", &[]).await.unwrap());
    assert!(listed.is_empty(), "{listed:?}");
}
