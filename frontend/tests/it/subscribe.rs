//! `SUBSCRIBE` against a real server process: rows arrive while the
//! statement runs (a driver reading the simple protocol's rows, psql
//! printing `COPY (SUBSCRIBE ...) TO STDOUT`, the REPL), updates of a
//! GROUP BY come as a row taken back and a row added, and a cancel or
//! Ctrl-C ends it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures::{StreamExt, pin_mut};
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::support::{connect, psql_args, start};

/// The next row of a subscription, as `op|col|...`, within ten seconds.
async fn next_row(
    rows: &mut (impl futures::Stream<Item = Result<SimpleQueryMessage, tokio_postgres::Error>> + Unpin),
) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), rows.next())
            .await
            .expect("no row within 10 s")
            .expect("the subscription ended")
            .unwrap();
        if let SimpleQueryMessage::Row(row) = message {
            return (0..row.len())
                .map(|i| row.get(i).unwrap_or("NULL"))
                .collect::<Vec<_>>()
                .join("|");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_stream_changes_until_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let writer = connect(&server).await;
    writer
        .batch_execute(
            "CREATE STREAM clicks (page TEXT, ms BIGINT) WITH (partitions = 2, key = 'page');
             INSERT INTO clicks VALUES ('home', 5), ('cart', 7);
             CREATE MATERIALIZED VIEW slow AS SELECT page, ms FROM clicks WHERE ms > 6",
        )
        .await
        .unwrap();

    // A view: its rows so far, then each new one as it arrives.
    let reader = connect(&server).await;
    let rows = reader.simple_query_raw("SUBSCRIBE TO slow").await.unwrap();
    pin_mut!(rows);
    assert_eq!(next_row(&mut rows).await, "+|cart|7");
    let inserted = std::time::Instant::now();
    writer
        .batch_execute("INSERT INTO clicks VALUES ('home', 9), ('faq', 1)")
        .await
        .unwrap();
    assert_eq!(next_row(&mut rows).await, "+|home|9");
    // A figure, not an assertion: the issue asks for well under a second.
    eprintln!(
        "SUBSCRIBE: the view's new row arrived {} ms after its INSERT was sent",
        inserted.elapsed().as_millis()
    );

    // A cancel ends it with 57014, and the connection goes on.
    reader.cancel_token().cancel_query(NoTls).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rows.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return e.code().map(|c| c.code().to_string()),
                None => return None,
            }
        }
    })
    .await
    .expect("the cancel did not end the subscription");
    assert_eq!(ended.as_deref(), Some("57014"));
    let count = reader
        .simple_query("SELECT count(*) FROM slow")
        .await
        .unwrap();
    assert!(matches!(&count[1], SimpleQueryMessage::Row(r) if r.get(0) == Some("2")));

    // A query with GROUP BY: its answer over the history as it builds up,
    // then each update as the old row taken back and the new one added.
    let rows = reader
        .simple_query_raw(
            "SUBSCRIBE (SELECT page, count(*) AS clicks FROM clicks WHERE page = 'home' GROUP BY page)",
        )
        .await
        .unwrap();
    pin_mut!(rows);
    let mut history = Vec::new();
    while history.last().map(String::as_str) != Some("+|home|2") {
        history.push(next_row(&mut rows).await);
        assert!(history.len() <= 3, "history: {history:?}");
    }
    writer
        .batch_execute("INSERT INTO clicks VALUES ('home', 3)")
        .await
        .unwrap();
    assert_eq!(next_row(&mut rows).await, "-|home|2");
    assert_eq!(next_row(&mut rows).await, "+|home|3");
    reader.cancel_token().cancel_query(NoTls).await.unwrap();

    // A stream: the rows appended from now on.
    let tail = connect(&server).await;
    let rows = tail.simple_query_raw("SUBSCRIBE clicks").await.unwrap();
    pin_mut!(rows);
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer
        .batch_execute("INSERT INTO clicks VALUES ('new', 42)")
        .await
        .unwrap();
    assert_eq!(next_row(&mut rows).await, "+|new|42");

    // Errors are the statement's, before any row.
    let error = writer.simple_query("SUBSCRIBE TO nope").await.unwrap_err();
    assert_eq!(error.code().unwrap().code(), "42P01");
    let error = writer
        .simple_query("SUBSCRIBE (SELECT page FROM clicks ORDER BY page)")
        .await
        .unwrap_err();
    assert_eq!(error.code().unwrap().code(), "0A000");
}

/// Reads `reader`'s lines on a thread, so a test can wait for one with a
/// timeout.
fn lines_of(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

/// Waits for a line containing `wanted`.
fn wait_for_line(lines: &mpsc::Receiver<String>, wanted: &str) -> String {
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no line with {wanted:?} within 10 s"));
        if line.contains(wanted) {
            return line;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_and_the_repl_print_a_subscription_live() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let writer = connect(&server).await;
    writer
        .batch_execute(
            "CREATE STREAM temps (city TEXT, celsius DOUBLE PRECISION);
             INSERT INTO temps VALUES ('oslo', -3.5)",
        )
        .await
        .unwrap();
    let (host, port) = server.pg.rsplit_once(':').unwrap();

    // psql prints COPY data as it arrives (its output line-buffered, as
    // on a terminal).
    if Command::new("psql").arg("--version").output().is_ok() {
        let mut psql = Command::new("stdbuf")
            .args(["-oL", "psql"])
            .args(psql_args(&server))
            .args([
                "-c",
                "COPY (SUBSCRIBE (SELECT city, celsius FROM temps)) TO STDOUT",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = lines_of(psql.stdout.take().unwrap());
        assert_eq!(wait_for_line(&lines, "oslo"), "+\toslo\t-3.5");
        writer
            .batch_execute("INSERT INTO temps VALUES ('lima', 19.25)")
            .await
            .unwrap();
        assert_eq!(wait_for_line(&lines, "lima"), "+\tlima\t19.25");
        psql.kill().unwrap();
        psql.wait().unwrap();
    } else {
        eprintln!("SKIPPED the psql part: psql is not installed (.ci/run installs it)");
    }

    // The REPL follows a subscription until Ctrl-C, then takes the next
    // statement.
    let mut repl = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args([
            "sql",
            &format!("postgres://tributary@{host}:{port}/tributary"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = repl.stdin.take().unwrap();
    let lines = lines_of(repl.stdout.take().unwrap());
    writeln!(stdin, "SUBSCRIBE TO temps;").unwrap();
    wait_for_line(&lines, "following");
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer
        .batch_execute("INSERT INTO temps VALUES ('rome', 12)")
        .await
        .unwrap();
    assert_eq!(wait_for_line(&lines, "rome"), "+ | rome | 12");
    let interrupted = Command::new("kill")
        .args(["-INT", &repl.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    wait_for_line(&lines, "stopped");
    writeln!(stdin, "SELECT count(*) AS n FROM temps;").unwrap();
    drop(stdin);
    wait_for_line(&lines, "3");
    assert!(repl.wait().unwrap().success());
}
