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

use crate::support::{connect, connect_with_socket, psql_args, start};
use crate::web::{scrape, sum};

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

    // A stream, a sink's too: the rows appended from now on.
    writer
        .batch_execute(
            "INSERT INTO clicks VALUES ('old', 50);
             CREATE SINK heavy INTO heavy_out AS SELECT page, ms FROM clicks WHERE ms > 40",
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while crate::support::rows(&writer, "SELECT count(*) FROM heavy_out").await != ["1"] {
        assert!(
            std::time::Instant::now() < deadline,
            "the sink wrote nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tail = connect(&server).await;
    let rows = tail.simple_query_raw("SUBSCRIBE clicks").await.unwrap();
    pin_mut!(rows);
    let sink_tail = connect(&server).await;
    let sink_rows = sink_tail
        .simple_query_raw("SUBSCRIBE heavy_out")
        .await
        .unwrap();
    pin_mut!(sink_rows);
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer
        .batch_execute("INSERT INTO clicks VALUES ('new', 42)")
        .await
        .unwrap();
    assert_eq!(next_row(&mut rows).await, "+|new|42");
    assert_eq!(next_row(&mut sink_rows).await, "+|new|42");

    // Errors are the statement's, before any row.
    let error = writer.simple_query("SUBSCRIBE TO nope").await.unwrap_err();
    assert_eq!(error.code().unwrap().code(), "42P01");
    let error = writer
        .simple_query("SUBSCRIBE (SELECT page FROM clicks ORDER BY page)")
        .await
        .unwrap_err();
    assert_eq!(error.code().unwrap().code(), "0A000");
}

/// A subscription with nothing to send still notices its client going
/// away, and ends: the open subscriptions in `/metrics` go back to 0. The
/// writes that find that out pass a client that stays unnoticed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_subscription_ends_when_its_client_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let http = reqwest::Client::new();
    let writer = connect(&server).await;
    writer
        .batch_execute("CREATE STREAM quiet (n BIGINT)")
        .await
        .unwrap();
    let (reader, socket) = connect_with_socket(&server).await;
    let rows = reader.simple_query_raw("SUBSCRIBE quiet").await.unwrap();
    pin_mut!(rows);
    let open = async || {
        let metrics = scrape(&http, &server).await;
        sum(&metrics, "tributary_pgwire_subscriptions", &[])
    };
    let wait_for_open = async |wanted: f64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while open().await != wanted {
            assert!(
                std::time::Instant::now() < deadline,
                "open subscriptions: {}, not {wanted}",
                open().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    wait_for_open(1.0).await;
    // Quiet for longer than the server waits before it writes anyway:
    // the client takes those writes in and still gets the next row.
    tokio::time::sleep(Duration::from_secs(5)).await;
    writer
        .batch_execute("INSERT INTO quiet VALUES (7)")
        .await
        .unwrap();
    assert_eq!(next_row(&mut rows).await, "+|7");

    // The client goes away without a word (its socket closed).
    socket.abort();
    let _ = socket.await;
    wait_for_open(0.0).await;
    drop(reader);
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

/// Drivers that only speak the extended protocol (tokio-postgres's
/// `query_raw`, `copy_out`) get a subscription's rows as they happen, in
/// the binary format they ask for; a prepared SUBSCRIBE describes its
/// columns; a portal fetched a few rows at a time (JDBC's fetch size) is
/// suspended after each few.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extended_protocol_streams_a_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let writer = connect(&server).await;
    writer
        .batch_execute(
            "CREATE STREAM orders (item TEXT, qty BIGINT);
             INSERT INTO orders VALUES ('tea', 2), ('jam', 1);
             CREATE MATERIALIZED VIEW per_item AS
               SELECT item, sum(qty) AS total FROM orders GROUP BY item",
        )
        .await
        .unwrap();

    let reader = connect(&server).await;
    let statement = reader
        .prepare("SUBSCRIBE (SELECT item, qty * 10 AS tenfold FROM orders)")
        .await
        .unwrap();
    let described: Vec<_> = statement
        .columns()
        .iter()
        .map(|c| format!("{} {}", c.name(), c.type_()))
        .collect();
    assert_eq!(described, ["op text", "item text", "tenfold int8"]);
    let rows = reader
        .query_raw(&statement, std::iter::empty::<i64>())
        .await
        .unwrap();
    pin_mut!(rows);
    let mut next = async || {
        let row = tokio::time::timeout(Duration::from_secs(10), rows.next())
            .await
            .expect("no row within 10 s")
            .expect("the subscription ended")
            .unwrap();
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, i64>(2),
        )
    };
    let mut history = vec![next().await, next().await];
    history.sort();
    assert_eq!(
        history,
        [
            ("+".into(), "jam".into(), 10),
            ("+".into(), "tea".into(), 20)
        ]
    );
    let inserted = std::time::Instant::now();
    writer
        .batch_execute("INSERT INTO orders VALUES ('tea', 5)")
        .await
        .unwrap();
    assert_eq!(next().await, ("+".into(), "tea".into(), 50));
    eprintln!(
        "SUBSCRIBE over the extended protocol: the new row arrived {} ms after its INSERT was sent",
        inserted.elapsed().as_millis()
    );
    reader.cancel_token().cancel_query(NoTls).await.unwrap();

    // COPY (SUBSCRIBE ...) TO STDOUT through copy_out: the view's changes
    // as COPY text lines, as they come.
    let copier = connect(&server).await;
    let data = copier
        .copy_out("COPY (SUBSCRIBE TO per_item) TO STDOUT")
        .await
        .unwrap();
    pin_mut!(data);
    let mut text = String::new();
    copy_text_until(&mut data, &mut text, "+\ttea\t7\n").await;
    writer
        .batch_execute("INSERT INTO orders VALUES ('jam', 4)")
        .await
        .unwrap();
    copy_text_until(&mut data, &mut text, "+\tjam\t5\n").await;
    assert!(text.contains("-\tjam\t1\n"), "{text}");

    // A portal read two rows at a time, in a transaction as JDBC does with
    // a fetch size: each Execute returns at most two rows and suspends.
    let mut cursor_client = connect(&server).await;
    let fetched = tokio::spawn(async move {
        let transaction = cursor_client.transaction().await.unwrap();
        let portal = transaction.bind("SUBSCRIBE TO orders", &[]).await.unwrap();
        let first = transaction.query_portal(&portal, 2).await.unwrap();
        let second = transaction.query_portal(&portal, 2).await.unwrap();
        (first.len(), second.len(), second[1].get::<_, String>(1))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer
        .batch_execute("INSERT INTO orders VALUES ('a', 1), ('b', 1), ('c', 1), ('d', 1)")
        .await
        .unwrap();
    let (first, second, fourth) = tokio::time::timeout(Duration::from_secs(10), fetched)
        .await
        .expect("the portal's fetches did not finish")
        .unwrap();
    assert_eq!((first, second, fourth.as_str()), (2, 2, "d"));

    // A bad SUBSCRIBE is refused at Parse, with its SQLSTATE.
    let error = writer.prepare("SUBSCRIBE TO nope").await.unwrap_err();
    assert_eq!(error.code().unwrap().code(), "42P01");
}

/// Reads COPY data into `text` until it holds `wanted`, within ten
/// seconds a chunk.
async fn copy_text_until(
    data: &mut (impl futures::Stream<Item = Result<bytes::Bytes, tokio_postgres::Error>> + Unpin),
    text: &mut String,
    wanted: &str,
) {
    while !text.contains(wanted) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), data.next())
            .await
            .expect("no COPY data within 10 s")
            .expect("the COPY ended")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}
