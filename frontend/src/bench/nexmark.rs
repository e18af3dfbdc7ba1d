//! `tributary bench nexmark`: Nexmark bids loaded into a stream by the
//! built-in generator, then, per query, a materialized view's job timed
//! from CREATE until it has processed every event, next to the same query
//! run once as a batch SELECT over the same stream. Both decode the same
//! stored records; the ratio is what running the query incrementally
//! costs. One partition, so each side has one core's worth of work; the CPU
//! every thread of the process used during each run (Linux `/proc`) is
//! printed too, as cores and events/s per core, with the share of the
//! machine's time its host took meanwhile (on a virtual machine the
//! per-core figures move with it). The
//! windowed queries' views emit on window close, with the watermark at the
//! event time itself.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use futures::TryStreamExt;
use tributary_executor::{Engine, Output, Session};

use super::host_steal::MachineTicks;
use super::log::open_server_log;
use super::thread_cpu::ThreadTimes;

/// Arguments of `tributary bench nexmark`.
#[derive(Debug, Args)]
pub(crate) struct NexmarkBenchArgs {
    /// Bid events loaded and processed per query.
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// Scratch directory (created and removed) [default: ./.tributary-bench-nexmark].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Run only the queries named (`q0`, `q5`, ...; repeatable), in the
    /// order given, and `read` for the reads of a GROUP BY view [default:
    /// all, in order, then `read`].
    #[arg(long = "query")]
    queries: Vec<String>,
}

/// The name that asks for the reads of a GROUP BY view.
const READ: &str = "read";

/// The view whose reads are timed: a row per bidder, updated by each of
/// the bidder's bids, so its changes far outnumber its rows.
const READ_VIEW: &str =
    "SELECT bidder, count(*) AS bids, max(price) AS top FROM bid GROUP BY bidder";

/// The queries, as Nexmark numbers them, over a stream of bids, and
/// whether the view emits on window close (the batch SELECT runs the query
/// as it is). The events are loaded at 10M a second of event time, so 2M
/// events span 200 ms: the windows are in milliseconds where Nexmark's
/// are in seconds, so that they close during the run.
const QUERIES: &[(&str, &str, bool)] = &[
    (
        "q0 (passthrough)",
        "SELECT auction, bidder, price, date_time, extra FROM bid",
        false,
    ),
    (
        "q1 (projection with arithmetic)",
        "SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid",
        false,
    ),
    (
        "q2 (filter)",
        "SELECT auction, price FROM bid WHERE auction % 123 = 0",
        false,
    ),
    (
        "q5-style (hopping-window count per auction)",
        "SELECT auction, window_start, count(*) AS bids FROM HOP(bid, date_time, \
         INTERVAL '2 milliseconds', INTERVAL '10 milliseconds') GROUP BY auction, window_start",
        true,
    ),
    (
        "q7-style (tumbling-window max price)",
        "SELECT window_start, max(price) AS top FROM TUMBLE(bid, date_time, \
         INTERVAL '10 milliseconds') GROUP BY window_start",
        true,
    ),
];

pub(crate) async fn bench_nexmark(args: NexmarkBenchArgs) -> anyhow::Result<()> {
    let dir = super::scratch_dir(args.dir.clone(), ".tributary-bench-nexmark")?;
    println!(
        "bench nexmark: {} bids, 1 partition, scratch {}",
        args.events,
        dir.display()
    );
    let log = open_server_log(&dir).await?;
    let engine = Engine::new(log.clone())?;
    let session = engine.session();

    let start = Instant::now();
    session
        .execute(&format!(
            "CREATE STREAM bid (WATERMARK FOR date_time AS date_time) WITH (connector = \
             'nexmark', kind = 'bid', rate = 10000000, events = {})",
            args.events
        ))
        .await?;
    let partition = log.partition("bid", 0)?;
    while (partition.high_watermark() as u64) < args.events {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let loaded = start.elapsed();
    println!(
        "load: {} events in {:.2} s, {:.0} events/s (the generator, JSON encoding and the log)",
        args.events,
        loaded.as_secs_f64(),
        args.events as f64 / loaded.as_secs_f64()
    );

    let queries: Vec<String> = args
        .queries
        .iter()
        .filter(|q| *q != READ)
        .cloned()
        .collect();
    let only_reads = queries.is_empty() && !args.queries.is_empty();
    let chosen = if only_reads {
        Vec::new()
    } else {
        chosen_queries(&queries)?
    };
    for i in chosen {
        let (name, query, on_window_close) = QUERIES[i];
        let batch_cpu = Cpu::start();
        let batch_start = Instant::now();
        let rows = run_batch(&session, query).await?;
        let batch = batch_start.elapsed();
        let batch_cpu = Cpu::since(&batch_cpu);

        let view = format!("nexmark_q{i}");
        let view_cpu = Cpu::start();
        let view_start = Instant::now();
        session
            .execute(&format!(
                "CREATE MATERIALIZED VIEW {view} AS {query}{}",
                if on_window_close {
                    " EMIT ON WINDOW CLOSE"
                } else {
                    ""
                }
            ))
            .await?;
        wait_for_job(&session, &view, args.events).await?;
        let streaming = view_start.elapsed();
        let view_cpu = Cpu::since(&view_cpu);
        let per_s = args.events as f64 / streaming.as_secs_f64();
        println!(
            "{name}: view {per_s:>10.0} events/s ({:.2} s{}, {rows} rows out); batch SELECT {:>10.0} events/s ({:.2} s{}); view/batch time {:.2}x",
            streaming.as_secs_f64(),
            per_core(args.events, view_cpu, streaming),
            args.events as f64 / batch.as_secs_f64(),
            batch.as_secs_f64(),
            per_core(args.events, batch_cpu, batch),
            streaming.as_secs_f64() / batch.as_secs_f64(),
        );
        session
            .execute(&format!("DROP MATERIALIZED VIEW {view}"))
            .await?;
    }
    if args.queries.is_empty() || args.queries.iter().any(|q| q == READ) {
        bench_view_reads(&session, args.events).await?;
    }
    engine.stop_writers();
    log.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Times `SELECT *` of a GROUP BY view three times once its job has read
/// every event: the first folds all the changes the job wrote, the next
/// ones start from the rows the first kept (no change came since).
async fn bench_view_reads(session: &Session, events: u64) -> anyhow::Result<()> {
    let view = "nexmark_read";
    session
        .execute(&format!("CREATE MATERIALIZED VIEW {view} AS {READ_VIEW}"))
        .await?;
    wait_for_job(session, view, events).await?;
    let changes = job_rows_out(session, view).await?;
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..3 {
        let started = Instant::now();
        rows = run_batch(session, &format!("SELECT * FROM {view}")).await?;
        times.push(started.elapsed().as_secs_f64());
    }
    println!(
        "read (SELECT * of a GROUP BY view, {rows} rows from {changes} changes): first {:.3} s \
         (folds every change), then {:.3} s and {:.3} s (from the rows kept)",
        times[0], times[1], times[2]
    );
    session
        .execute(&format!("DROP MATERIALIZED VIEW {view}"))
        .await?;
    Ok(())
}

/// The rows the job of `view` has written (`SHOW JOBS`' `rows_out`).
async fn job_rows_out(session: &Session, view: &str) -> anyhow::Result<i64> {
    for batch in collect(session, "SHOW JOBS").await? {
        let names = batch.column(0).as_string::<i32>();
        let rows_out = batch.column(6).as_primitive::<Int64Type>();
        if let Some(row) = (0..batch.num_rows()).find(|&row| names.value(row) == view) {
            return Ok(rows_out.value(row));
        }
    }
    anyhow::bail!("SHOW JOBS does not list {view}")
}

/// The indexes in [`QUERIES`] of the queries `names` names (`q0`, `q5`,
/// ...), in that order; all of them, in order, when it is empty.
fn chosen_queries(names: &[String]) -> anyhow::Result<Vec<usize>> {
    let numbers: Vec<&str> = QUERIES
        .iter()
        .map(|(name, _, _)| name.split(['-', ' ']).next().unwrap_or(name))
        .collect();
    if names.is_empty() {
        return Ok((0..QUERIES.len()).collect());
    }
    names
        .iter()
        .map(|wanted| {
            numbers.iter().position(|n| n == wanted).with_context(|| {
                format!("no query {wanted}: the queries are {}", numbers.join(", "))
            })
        })
        .collect()
}

/// Where the CPU time stood when a run started.
struct CpuStart {
    threads: ThreadTimes,
    machine: Option<MachineTicks>,
}

/// CPU time every thread of the process used during a run: the query's
/// own, and what it made the log and the rest of the server do.
struct Cpu {
    all: Duration,
    /// Of `all`, in the kernel (on this machine mostly new page-cache
    /// pages for the view's output).
    kernel: Duration,
    /// The percentage of the machine's time its host took meanwhile.
    stolen: Option<f64>,
}

impl Cpu {
    fn start() -> CpuStart {
        CpuStart {
            threads: ThreadTimes::now(),
            machine: MachineTicks::now(),
        }
    }

    fn since(start: &CpuStart) -> Self {
        let now = ThreadTimes::now();
        let stolen = MachineTicks::now()
            .zip(start.machine)
            .and_then(|(now, before)| now.stolen_since(&before));
        Self {
            all: now.since(&start.threads, |_| true).0,
            kernel: now.kernel_since(&start.threads),
            stolen,
        }
    }
}

/// `, N cores (K % in the kernel), M events/s per core[, S % stolen by
/// the host]` for a run that used `cpu` over `elapsed`; empty where thread
/// times cannot be read.
fn per_core(events: u64, cpu: Cpu, elapsed: Duration) -> String {
    if cpu.all.is_zero() {
        return String::new();
    }
    let stolen = cpu
        .stolen
        .map_or(String::new(), |s| format!(", {s:.0} % stolen by the host"));
    format!(
        ", {:.2} cores ({:.0} % in the kernel), {:.0} events/s per core{stolen}",
        cpu.all.as_secs_f64() / elapsed.as_secs_f64(),
        100.0 * cpu.kernel.as_secs_f64() / cpu.all.as_secs_f64(),
        events as f64 / cpu.all.as_secs_f64()
    )
}

/// Runs `query` as a batch and reads every row; returns how many.
async fn run_batch(session: &Session, query: &str) -> anyhow::Result<u64> {
    let mut rows = 0u64;
    for output in session.execute(query).await? {
        if let Output::Rows(frame) = output {
            let mut stream = frame.execute_stream().await?;
            while let Some(batch) = stream.try_next().await? {
                rows += batch.num_rows() as u64;
            }
        }
    }
    Ok(rows)
}

/// How often the bench asks `SHOW JOBS` whether a view has caught up:
/// each ask is a query planned and run on the cores the job uses (every
/// 5 ms took 3-5 % of them), and 20 ms is under 1 % of a run.
const JOB_POLL: Duration = Duration::from_millis(20);

/// Waits until the job of `view` has read `events` input rows with no lag.
async fn wait_for_job(session: &Session, view: &str, events: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let jobs = collect(session, "SHOW JOBS").await?;
        for batch in &jobs {
            let names = batch.column(0).as_string::<i32>();
            let lags = batch.column(4).as_primitive::<Int64Type>();
            let rows_in = batch.column(5).as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                if names.value(row) == view
                    && lags.value(row) == 0
                    && rows_in.value(row) as u64 >= events
                {
                    return Ok(());
                }
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the job of {view} did not finish"
        );
        tokio::time::sleep(JOB_POLL).await;
    }
}

async fn collect(session: &Session, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    for output in session.execute(sql).await? {
        if let Output::Rows(frame) = output {
            batches.extend(frame.collect().await.context(sql.to_string())?);
        }
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_run_in_the_order_named() {
        let named = |names: &[&str]| {
            chosen_queries(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(named(&[]).unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(named(&["q7", "q0"]).unwrap(), vec![4, 0]);
        assert!(
            named(&["q3"])
                .unwrap_err()
                .to_string()
                .contains("no query q3")
        );
    }
}
