//! `tributary bench`: measured figures, printed as a table. Nothing here is
//! asserted; docs/benchmarks.md records the results.

mod host_steal;
mod kafka;
mod log;
mod nexmark;
mod sql;
mod thread_cpu;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

/// Arguments of `tributary bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    what: BenchTarget,
}

#[derive(Debug, Subcommand)]
enum BenchTarget {
    /// Append and read throughput of the partition log, next to the raw
    /// write+fsync bandwidth of the same disk.
    Log(log::LogBenchArgs),
    /// COPY ingest and full-scan speed over the Postgres protocol, next to
    /// DataFusion alone on the same rows in a newline-delimited JSON file.
    Sql(sql::SqlBenchArgs),
    /// Produce and consume throughput and end-to-end latency of a Kafka
    /// client (librdkafka) against an in-process broker, next to the raw
    /// write+fsync bandwidth of the same disk.
    Kafka(kafka::KafkaBenchArgs),
    /// Nexmark queries run as materialized views over generated bids,
    /// next to the same queries run once as batch SELECTs.
    Nexmark(nexmark::NexmarkBenchArgs),
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchTarget::Log(args) => log::bench_log(args).await,
        BenchTarget::Sql(args) => sql::bench_sql(args).await,
        BenchTarget::Kafka(args) => kafka::bench_kafka(args).await,
        BenchTarget::Nexmark(args) => nexmark::bench_nexmark(args).await,
    }
}

/// One measured run: how much moved in how long.
struct Figure {
    name: String,
    bytes: u64,
    records: u64,
    elapsed: Duration,
}

impl Figure {
    fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.elapsed.as_secs_f64()
    }

    fn records_per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

/// An empty scratch directory: `dir`, or `default` in the working
/// directory; whatever was there is removed first.
fn scratch_dir(dir: Option<PathBuf>, default: &str) -> anyhow::Result<PathBuf> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(default));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(std::fs::canonicalize(&dir)?)
}
