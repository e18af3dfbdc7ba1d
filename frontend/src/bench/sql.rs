//! `tributary bench sql`: COPY ingest and a full scan, both over the
//! Postgres protocol against an in-process server, and DataFusion alone
//! running the same query on the same rows in a newline-delimited JSON file:
//! the scan decodes the same JSON, so the ratio is the cost of the log and
//! the server around it.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::{JsonReadOptions, SessionContext};
use futures::SinkExt;
use tributary_executor::Engine;

use super::Figure;
use super::log::open_server_log;

/// Arguments of `tributary bench sql`.
#[derive(Debug, Args)]
pub(crate) struct SqlBenchArgs {
    /// Rows copied in and scanned.
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    /// Partitions of the stream.
    #[arg(long, default_value_t = 2)]
    partitions: u32,
    /// Times each query runs (the best is compared).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Scratch directory (created and removed) [default: ./.tributary-bench-sql].
    #[arg(long)]
    dir: Option<PathBuf>,
}

const CREATE: &str = "CREATE STREAM bench (id BIGINT, name TEXT, amount DOUBLE PRECISION, \
                      ts TIMESTAMP, ok BOOLEAN)";
const QUERY: &str = "SELECT count(*), sum(amount) FROM bench";

/// Bytes per COPY message.
const COPY_CHUNK: usize = 1 << 20;

pub(crate) async fn bench_sql(args: SqlBenchArgs) -> anyhow::Result<()> {
    let dir = super::scratch_dir(args.dir.clone(), ".tributary-bench-sql")?;
    println!(
        "bench sql: {} rows of 5 columns, {} partitions, scratch {}",
        args.rows,
        args.partitions,
        dir.display()
    );

    let log = open_server_log(&dir).await?;
    let engine = Engine::new(log.clone())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(crate::pg::serve(engine, listener));
    let config = format!(
        "host={} port={} user=bench dbname=tributary",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!("{CREATE} WITH (partitions = {})", args.partitions))
        .await?;

    // The rows, prepared before the clock starts: csv for COPY, and the
    // same rows as JSON (what the stream stores) in a file for DataFusion.
    let json_path = dir.join("bench.ndjson");
    let chunks = write_rows(args.rows, &json_path)?;
    let csv_bytes: u64 = chunks.iter().map(|c| c.len() as u64).sum();

    let start = Instant::now();
    let sink = client.copy_in("COPY bench FROM STDIN (FORMAT csv)").await?;
    futures::pin_mut!(sink);
    for chunk in chunks {
        sink.send(chunk).await?;
    }
    let copied = sink.finish().await?;
    let copy = Figure {
        name: "COPY FROM STDIN (csv) over pgwire".into(),
        bytes: csv_bytes,
        records: copied,
        elapsed: start.elapsed(),
    };
    println!(
        "{:<44} {:>12.0} rows/s {:>8.1} MiB/s of csv",
        copy.name,
        copy.records_per_s(),
        copy.mib_per_s()
    );

    let mut ours = Vec::new();
    for _ in 0..args.repeat {
        let start = Instant::now();
        let row = client.query_one(QUERY, &[]).await?;
        let elapsed = start.elapsed();
        let count: i64 = row.get(0);
        anyhow::ensure!(count as u64 == args.rows, "scan counted {count} rows");
        ours.push(elapsed);
        print_scan("scan: stream over pgwire", args.rows, elapsed);
    }

    let ctx = SessionContext::new();
    let schema = json_schema();
    ctx.register_json(
        "bench",
        json_path.to_str().context("scratch path is not UTF-8")?,
        JsonReadOptions::default()
            .schema(&schema)
            .file_extension(".ndjson"),
    )
    .await?;
    let mut alone = Vec::new();
    for _ in 0..args.repeat {
        let start = Instant::now();
        let batches = ctx.sql(QUERY).await?.collect().await?;
        let elapsed = start.elapsed();
        anyhow::ensure!(batches.iter().map(|b| b.num_rows()).sum::<usize>() == 1);
        alone.push(elapsed);
        print_scan(
            "scan: DataFusion alone on the NDJSON file",
            args.rows,
            elapsed,
        );
    }
    let best = |runs: &[Duration]| runs.iter().min().copied().unwrap_or_default();
    println!(
        "scan time, stream / DataFusion alone (best of {}): {:.2}x",
        args.repeat,
        best(&ours).as_secs_f64() / best(&alone).as_secs_f64()
    );

    drop(client);
    server.abort();
    log.shutdown().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn print_scan(name: &str, rows: u64, elapsed: Duration) {
    println!(
        "{name:<44} {:>12.0} rows/s {:>8.2} s",
        rows as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
}

/// The stream's columns, for DataFusion reading the file.
fn json_schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("ok", DataType::Boolean, true),
    ])
}

/// Generates the rows: returns them as csv in COPY-sized chunks and writes
/// them as JSON lines to `json_path`.
fn write_rows(rows: u64, json_path: &std::path::Path) -> anyhow::Result<Vec<Bytes>> {
    let mut json = std::io::BufWriter::new(std::fs::File::create(json_path)?);
    let mut chunks = Vec::new();
    let mut csv = String::with_capacity(COPY_CHUNK + 256);
    for id in 0..rows {
        let name = format!("name-{}", id % 1000);
        let amount = (id % 10_000) as f64 / 4.0;
        let ts = format!(
            "2026-01-01T{:02}:{:02}:{:02}",
            (id / 3600) % 24,
            (id / 60) % 60,
            id % 60
        );
        let ok = id % 3 == 0;
        csv.push_str(&format!("{id},{name},{amount},{ts},{ok}\n"));
        writeln!(
            json,
            r#"{{"id":{id},"name":"{name}","amount":{amount},"ts":"{ts}","ok":{ok}}}"#
        )?;
        if csv.len() >= COPY_CHUNK {
            chunks.push(Bytes::from(std::mem::take(&mut csv)));
            csv.reserve(COPY_CHUNK + 256);
        }
    }
    if !csv.is_empty() {
        chunks.push(Bytes::from(csv));
    }
    json.flush()?;
    Ok(chunks)
}
