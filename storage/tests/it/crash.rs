//! Crash safety with a real process: a child appends and prints each
//! acknowledged offset; it is killed with SIGKILL mid-stream; after a restart
//! every acknowledged record reads back byte-identical, offsets are dense,
//! and appending continues at the right offset. Garbage on the write-ahead
//! tail is cut off with a warning, nothing before it lost. An empty
//! write-ahead file past the durable end (the writer creates the next one
//! while the last syncs of a segment run) is dropped, and offsets stay dense.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use tributary_storage::{Log, LogConfig, MetadataStore, StreamConfig, open_object_store};

use crate::support::{read_all_values, record, single_record_batch, stored_form};

const CHILD_DIR_VAR: &str = "TRIBUTARY_CRASH_CHILD_DIR";
const CHILD_FIRST_VAR: &str = "TRIBUTARY_CRASH_CHILD_FIRST";
const RECORDS_PER_ROUND: u64 = 10_000;
const VALUE_BYTES: usize = 100;

fn config(dir: &Path) -> LogConfig {
    LogConfig {
        local_object_root: tributary_storage::objects::local_root(&objects_url(dir)),
        data_dir: dir.join("data"),
        segment_bytes_max: 32 * 1024,
        segment_age_max_ms: 3_600_000,
        retry_initial_backoff_ms: 10,
        retry_max_backoff_ms: 100,
        ..Default::default()
    }
}

fn objects_url(dir: &Path) -> String {
    format!("file://{}", dir.join("objects").display())
}

async fn open(dir: &Path) -> anyhow::Result<Arc<Log>> {
    let store = open_object_store(&objects_url(dir))?;
    let metadata = MetadataStore::open_sqlite(&dir.join("metadata.db")).await?;
    Ok(Log::open(config(dir), store, metadata).await?)
}

/// The child: appends records `first..first+10_000` from 8 concurrent
/// producers and prints `ACK <offset> <record>` once each is acknowledged.
/// It does nothing unless started by the crash test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by crash_safety_under_sigkill"]
async fn crash_child_appender() -> anyhow::Result<()> {
    let dir = PathBuf::from(std::env::var(CHILD_DIR_VAR)?);
    let first: u64 = std::env::var(CHILD_FIRST_VAR)?.parse()?;
    let log = open(&dir).await?;
    if log.stream("crash").is_err() {
        log.create_stream("crash", StreamConfig::default()).await?;
    }
    let mut tasks = Vec::new();
    for producer in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = first + producer;
            while i < first + RECORDS_PER_ROUND {
                let out = log
                    .append("crash", 0, single_record_batch(i, VALUE_BYTES))
                    .await?;
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "ACK {} {i}", out.base_offset)?;
                stdout.flush()?;
                i += 8;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Starts the child, kills it with SIGKILL after `kill_after` acks, and
/// returns every ack it printed: record number by offset.
fn run_child_and_kill(
    dir: &Path,
    first: u64,
    kill_after: usize,
) -> anyhow::Result<HashMap<i64, u64>> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "crash::crash_child_appender",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir)
        .env(CHILD_FIRST_VAR, first.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no child stdout"))?;
    let mut acks = HashMap::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let Some(rest) = line.strip_prefix("ACK ") else {
            continue;
        };
        let (offset, i) = rest
            .split_once(' ')
            .ok_or_else(|| anyhow::anyhow!("bad line {line}"))?;
        acks.insert(offset.parse()?, i.parse()?);
        if !killed && acks.len() >= kill_after {
            child.kill()?; // SIGKILL
            killed = true;
        }
    }
    child.wait()?;
    anyhow::ensure!(
        killed,
        "the child finished before it was killed ({} acks)",
        acks.len()
    );
    Ok(acks)
}

/// Checks that every acknowledged record is there, byte-identical, and that
/// offsets are dense from 0.
async fn verify(log: &Log, acked: &HashMap<i64, u64>) -> anyhow::Result<()> {
    let values = read_all_values(log, "crash", 0).await?;
    for (n, (offset, _)) in values.iter().enumerate() {
        assert_eq!(*offset, n as i64, "offsets are dense");
    }
    for (&offset, &i) in acked {
        let read = log.read("crash", 0, offset, 1).await?;
        let expected = stored_form(&single_record_batch(i, VALUE_BYTES), offset);
        assert_eq!(
            &read.batches[0][..],
            &expected[..],
            "acknowledged record {i} at offset {offset}"
        );
        assert_eq!(
            values[offset as usize].1,
            record(i, VALUE_BYTES).value.unwrap_or_default()
        );
    }
    Ok(())
}

fn append_garbage_to_newest_wal(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut wals = Vec::new();
    for stream_dir in std::fs::read_dir(dir.join("data/wal"))? {
        for entry in std::fs::read_dir(stream_dir?.path().join("0"))? {
            wals.push(entry?.path());
        }
    }
    wals.sort();
    let newest = wals
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no write-ahead file"))?;
    let mut file = std::fs::OpenOptions::new().append(true).open(&newest)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let garbage: Vec<u8> = (0..777).map(|_| rng.random()).collect();
    file.write_all(&garbage)?;
    Ok(newest)
}

/// Leaves an empty write-ahead file starting at `base`, as a crash does
/// between the writer creating the next segment and the last syncs of the
/// one before finishing.
fn create_empty_wal_at(dir: &Path, base: i64) -> anyhow::Result<PathBuf> {
    let stream_dir = std::fs::read_dir(dir.join("data/wal"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("no stream write-ahead directory"))??;
    let path = stream_dir
        .path()
        .join("0")
        .join(tributary_storage::wal::file_name(base));
    std::fs::File::create(&path)?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_safety_under_sigkill() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut acked = HashMap::new();
    for round in 0..2u64 {
        let kill_after = rng.random_range(1_000..7_000);
        let acks = run_child_and_kill(dir.path(), round * RECORDS_PER_ROUND, kill_after)?;
        assert!(acks.len() >= kill_after);
        acked.extend(acks);

        let garbage_file = append_garbage_to_newest_wal(dir.path())?;
        let past_the_end = acked.keys().max().copied().unwrap_or(0) + 100_000;
        let empty_file = create_empty_wal_at(dir.path(), past_the_end)?;
        let log = open(dir.path()).await?;
        assert!(
            !empty_file.exists(),
            "round {round}: the empty write-ahead file past the end was removed"
        );
        let torn = log.torn_tails();
        assert!(
            torn.iter()
                .any(|t| t.path == garbage_file && t.truncated_bytes >= 777),
            "round {round}: the garbage tail was cut off and reported: {torn:?}"
        );
        verify(&log, &acked).await?;
        let high_watermark = log.partition("crash", 0)?.high_watermark();
        assert!(high_watermark >= acked.len() as i64);
        let next = log
            .append(
                "crash",
                0,
                single_record_batch(1_000_000 + round, VALUE_BYTES),
            )
            .await?;
        assert_eq!(
            next.base_offset, high_watermark,
            "appends continue at the high watermark"
        );
        acked.insert(next.base_offset, 1_000_000 + round);
        log.shutdown().await;
    }
    let log = open(dir.path()).await?;
    verify(&log, &acked).await?;
    log.shutdown().await;
    Ok(())
}
