//! Jobs with state against a real server process killed with SIGKILL: a
//! windowed aggregate with EMIT ON WINDOW CLOSE as a view and as a sink,
//! a GROUP BY view that updates its rows, and a GROUP BY over that view's
//! changing rows, over a Nexmark stream fed continuously. Each restart
//! restores checkpoints. After the kills, once the feed has ended, each
//! equals its query run as a batch SELECT: no window lost, none emitted
//! twice, no group counted twice.

use std::time::{Duration, Instant};

use tributary_sqllogictest::Server;

use crate::support::{connect, rows};

/// This build's server, checkpointing stateful jobs every 200 ms, so that
/// each restart restores a checkpoint and replays only after it.
fn start(data_dir: &std::path::Path) -> Server {
    Server::start_with_args(
        std::path::Path::new(env!("CARGO_BIN_EXE_tributary")),
        data_dir,
        &["--checkpoint-interval-ms", "200"],
    )
    .unwrap()
}

/// A small deterministic generator of kill moments (xorshift).
fn next_pause(seed: &mut u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    Duration::from_millis(300 + *seed % 1200)
}

const WINDOWED: &str = "SELECT auction, window_start, window_end, count(*) AS bids, \
     sum(price) AS volume FROM TUMBLE(bids, date_time, INTERVAL '200 milliseconds') \
     GROUP BY auction, window_start, window_end";

const BY_AUCTION: &str = "SELECT auction, count(*) AS bids, max(price) AS top, \
     count(DISTINCT bidder) AS bidders FROM bids GROUP BY auction";

/// An aggregation over `by_auction`'s rows, which are updated as bids
/// come: each update takes a row back from its old group.
const BY_BIDS: &str = "SELECT bids, count(*) AS auctions, max(top) AS top, min(top) AS bottom, \
     sum(top) AS volume, count(DISTINCT bidders) AS bidder_counts FROM by_auction GROUP BY bids";

/// Two aggregations in one query, the second over the first's changing
/// rows: how many auctions have each number of bids.
const TWO_LEVEL: &str = "SELECT bids, count(*) AS auctions FROM \
     (SELECT auction, count(*) AS bids FROM bids GROUP BY auction) GROUP BY bids";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_views_are_exact_across_sigkills() {
    const EVENTS: usize = 50_000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data);
    let mut client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE STREAM bids WITH (connector = 'nexmark', kind = 'bid', rate = 5000, \
             events = {EVENTS}, partitions = 3)"
        ))
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "CREATE MATERIALIZED VIEW closed_windows AS {WINDOWED} EMIT ON WINDOW CLOSE"
        ))
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "CREATE SINK window_sink INTO sunk_windows AS {WINDOWED} EMIT ON WINDOW CLOSE"
        ))
        .await
        .unwrap();
    // Created while the feed runs: its backfill meets the live rows.
    tokio::time::sleep(Duration::from_millis(700)).await;
    client
        .batch_execute(&format!(
            "CREATE MATERIALIZED VIEW by_auction AS {BY_AUCTION}; \
             CREATE MATERIALIZED VIEW by_bids AS {BY_BIDS}; \
             CREATE MATERIALIZED VIEW two_level AS {TWO_LEVEL}"
        ))
        .await
        .unwrap();

    // The kills come once windows have started to close, so that each
    // restart finds windows both emitted and open.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rows(&client, "SELECT count(*) FROM closed_windows").await == ["0"] {
        assert!(Instant::now() < deadline, "no window closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..3 {
        tokio::time::sleep(next_pause(&mut seed)).await;
        drop(client);
        drop(server); // SIGKILL
        server = start(&data);
        // The windowed view and the aggregation over changing rows start
        // from their newest checkpoints, not from the input's start.
        wait_for_restores(&mut server, &["closed_windows", "by_bids", "two_level"]);
        client = connect(&server).await;
    }

    let deadline = Instant::now() + Duration::from_secs(90);
    while rows(&client, "SELECT count(*) FROM bids").await != [EVENTS.to_string()] {
        assert!(Instant::now() < deadline, "the generator did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The job's watermark once the feed has ended: the lowest, over the
    // partitions, of each one's highest `date_time - 4 seconds`.
    let watermark = rows(
        &client,
        "SELECT min(w) FROM (SELECT max(date_time) - INTERVAL '4 seconds' AS w FROM bids GROUP BY _partition)",
    )
    .await
    .remove(0);
    let expected_windows = format!(
        "{WINDOWED} HAVING window_end <= TIMESTAMP '{watermark}' ORDER BY window_start, auction"
    );
    // Each view (and the sink) with its batch query.
    let compared = [
        (
            "windows in the view",
            "SELECT auction, window_start, window_end, bids, volume FROM closed_windows \
             ORDER BY window_start, auction",
            expected_windows.clone(),
        ),
        (
            "windows in the sink",
            "SELECT auction, window_start, window_end, bids, volume FROM sunk_windows \
             ORDER BY window_start, auction",
            expected_windows.clone(),
        ),
        (
            "auctions",
            "SELECT auction, bids, top, bidders FROM by_auction ORDER BY auction",
            format!("{BY_AUCTION} ORDER BY auction"),
        ),
        (
            "by bids",
            "SELECT bids, auctions, top, bottom, volume, bidder_counts FROM by_bids ORDER BY bids",
            format!(
                "SELECT bids, count(*), max(top), min(top), sum(top), count(DISTINCT bidders) \
                 FROM ({BY_AUCTION}) GROUP BY bids ORDER BY bids"
            ),
        ),
        (
            "two levels",
            "SELECT bids, auctions FROM two_level ORDER BY bids",
            format!("{TWO_LEVEL} ORDER BY bids"),
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut differing = Vec::new();
        for (name, view, batch) in &compared {
            let (got, wanted) = (rows(&client, view).await, rows(&client, batch).await);
            if got != wanted {
                differing.push(format!(
                    "{name}: {} in the view, {} in the batch; first differing: {:?}",
                    got.len(),
                    wanted.len(),
                    got.iter().zip(&wanted).find(|(a, b)| a != b),
                ));
            }
        }
        if differing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after a minute the views still differ from the batch answers:\n{}",
            differing.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let closed_windows = rows(&client, &expected_windows).await.len();
    assert!(
        closed_windows > 100,
        "too few closed windows to mean anything: {closed_windows}"
    );

    // Old checkpoints are deleted: each job keeps its newest two (a third
    // lives from its write to the deletion it makes).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kept = checkpoint_files(&data);
        assert!(!kept.is_empty(), "no checkpoint on disk");
        if kept.iter().all(|(_, files)| (1..=2).contains(files)) {
            break;
        }
        assert!(Instant::now() < deadline, "checkpoints kept: {kept:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SHOW JOBS reports the windowed job's watermark and no late rows.
    let jobs = rows(&client, "SHOW JOBS").await;
    let closed = jobs
        .iter()
        .find(|row| row.starts_with("closed_windows|"))
        .unwrap();
    let (closed_without_rate, _) = closed.rsplit_once('|').unwrap();
    assert!(
        closed_without_rate.ends_with(&format!("|{watermark}|0")),
        "SHOW JOBS row: {closed}; watermark {watermark}"
    );
}

/// Waits until the restarted `server` says it restored the newest
/// checkpoint of the job of each of `views`.
fn wait_for_restores(server: &mut Server, views: &[&str]) {
    let mut waiting: Vec<&str> = views.to_vec();
    while !waiting.is_empty() {
        let seen = server
            .wait_for_line("restored the newest checkpoint")
            .unwrap();
        let line = seen.last().unwrap();
        waiting.retain(|view| !line.contains(&format!("\"{view}\"")));
    }
}

/// The checkpoint files on disk under `dir`, counted per job
/// (`checkpoints/job-<id>/<epoch>.arrow`).
fn checkpoint_files(dir: &std::path::Path) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|name| name == "checkpoints") {
            for job in std::fs::read_dir(&path).unwrap().map(Result::unwrap) {
                let files = std::fs::read_dir(job.path())
                    .unwrap()
                    .filter(|f| {
                        f.as_ref()
                            .unwrap()
                            .path()
                            .extension()
                            .is_some_and(|e| e == "arrow")
                    })
                    .count();
                found.push((job.file_name().to_string_lossy().into_owned(), files));
            }
        } else {
            found.extend(checkpoint_files(&path));
        }
    }
    found
}
