//! `tributary bench log`: append throughput with group commit, next to
//! the disk's raw write+fsync bandwidth, and sequential reads from the cache
//! and the object store.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use tributary_storage::batch::{Compression, NewRecord, encode_batch};
use tributary_storage::{Log, LogConfig, MetadataStore, StreamConfig, open_object_store};

use super::Figure;

#[derive(Debug, Args)]
pub(crate) struct LogBenchArgs {
    /// MiB appended per configuration.
    #[arg(long, default_value_t = 256)]
    mib: u64,
    /// Bytes per record.
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    /// Records per appended batch (what a producer's linger collects).
    #[arg(long, default_value_t = 16)]
    records_per_batch: usize,
    /// MiB at which write-ahead segments seal (and upload) during the
    /// append runs.
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    /// Appends each writer keeps in flight: 1 waits for each append before
    /// sending the next (the strictest case); 5 is a Kafka producer's
    /// default (`max.in.flight.requests.per.connection`).
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Times each append configuration runs; the median ratio is printed
    /// after the runs.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Append configurations to run, as partitions x writers.
    #[arg(long, value_delimiter = ',', default_value = "1x1,1x64,8x1,8x64", value_parser = parse_configuration)]
    configurations: Vec<(u32, usize)>,
    /// Scratch directory (created and removed) [default: ./.tributary-bench].
    #[arg(long)]
    dir: Option<PathBuf>,
}

impl Figure {
    fn print(&self, baseline_mib_per_s: f64) {
        println!(
            "{:<44} {:>10.1} MiB/s {:>12.0} records/s {:>7.0}% of raw write+fsync",
            self.name,
            self.mib_per_s(),
            self.records_per_s(),
            100.0 * self.mib_per_s() / baseline_mib_per_s
        );
    }
}

pub(crate) async fn bench_log(args: LogBenchArgs) -> anyhow::Result<()> {
    let dir = super::scratch_dir(args.dir.clone(), ".tributary-bench")?;
    let total_bytes = args.mib * 1024 * 1024;
    println!(
        "bench log: {} MiB per run, {} B records, {} records per batch, {} append(s) in flight per writer, scratch {}",
        args.mib,
        args.record_bytes,
        args.records_per_batch,
        args.in_flight,
        dir.display()
    );

    // The disk's speed drifts (a virtual disk here), so each log figure is
    // compared with a raw measurement of the same bytes taken just before it.
    for every in [64 << 10, 1 << 20] {
        let figure = raw_fsync_every(&dir.join("raw-every"), total_bytes.min(128 << 20), every)?;
        println!("{:<44} {:>10.1} MiB/s", figure.name, figure.mib_per_s());
    }
    let mut raw_figures = Vec::new();
    let configurations = args.configurations.clone();
    let mut ratios = vec![Vec::new(); configurations.len()];
    for _ in 0..args.repeat.max(1) {
        for (n, &(partitions, writers)) in configurations.iter().enumerate() {
            // The raw bandwidth right before and right after the run,
            // averaged: the disk drifts while the run takes place.
            let before = raw_write_fsync(&dir.join("raw"), total_bytes)?;
            let run_dir = dir.join(format!("append-{partitions}p-{writers}w"));
            let figure = append_run(&run_dir, &args, partitions, writers, total_bytes).await?;
            let _ = std::fs::remove_dir_all(&run_dir);
            let after = raw_write_fsync(&dir.join("raw"), total_bytes)?;
            let raw = (before.mib_per_s() + after.mib_per_s()) / 2.0;
            println!(
                "{:<44} {:>10.1} MiB/s (before {:.1}, after {:.1})",
                before.name,
                raw,
                before.mib_per_s(),
                after.mib_per_s()
            );
            figure.print(raw);
            ratios[n].push(100.0 * figure.mib_per_s() / raw);
            raw_figures.push(before.mib_per_s());
            raw_figures.push(after.mib_per_s());
        }
    }
    if args.repeat > 1 {
        for ((partitions, writers), mut runs) in configurations.into_iter().zip(ratios) {
            runs.sort_by(f64::total_cmp);
            println!(
                "median of {} runs, {partitions} partition(s), {writers} writer(s): {:.0}% of raw write+fsync",
                runs.len(),
                runs[runs.len() / 2]
            );
        }
    }
    raw_figures.sort_by(f64::total_cmp);
    let median_raw = raw_figures[raw_figures.len() / 2];

    let (cache, object) = read_runs(&dir.join("read"), &args, total_bytes).await?;
    cache.print(median_raw);
    object.print(median_raw);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// An append configuration written `PxW`: P partitions, W writers.
fn parse_configuration(text: &str) -> Result<(u32, usize), String> {
    let invalid = || format!("expected PARTITIONSxWRITERS such as 8x64, got {text:?}");
    let (partitions, writers) = text.split_once('x').ok_or_else(invalid)?;
    let partitions: u32 = partitions.trim().parse().map_err(|_| invalid())?;
    let writers: usize = writers.trim().parse().map_err(|_| invalid())?;
    if partitions == 0 || writers == 0 {
        return Err(invalid());
    }
    Ok((partitions, writers))
}

/// Buffered writes of `bytes` then one fsync: the disk's best case.
pub(super) fn raw_write_fsync(path: &Path, bytes: u64) -> anyhow::Result<Figure> {
    let chunk = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let mut file = std::fs::File::create(path)?;
    let mut written = 0;
    while written < bytes {
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
    }
    file.sync_all()?;
    let elapsed = start.elapsed();
    std::fs::remove_file(path)?;
    Ok(Figure {
        name: "raw: buffered write + one fsync".into(),
        bytes: written,
        records: 0,
        elapsed,
    })
}

/// fdatasync after every `every` bytes.
fn raw_fsync_every(path: &Path, bytes: u64, every: usize) -> anyhow::Result<Figure> {
    let chunk = vec![0x5au8; every];
    let start = Instant::now();
    let mut file = std::fs::File::create(path)?;
    let mut written = 0;
    while written < bytes {
        file.write_all(&chunk)?;
        file.sync_data()?;
        written += chunk.len() as u64;
    }
    let elapsed = start.elapsed();
    std::fs::remove_file(path)?;
    Ok(Figure {
        name: format!("raw: fdatasync every {} KiB", every / 1024),
        bytes: written,
        records: 0,
        elapsed,
    })
}

/// A log in `dir/log` as `tributary serve` opens one: default segment
/// size, sealed segments published by hard link.
pub(super) async fn open_server_log(dir: &Path) -> anyhow::Result<Arc<Log>> {
    open_log(
        &dir.join("log"),
        LogConfig::default().segment_bytes_max,
        true,
    )
    .await
}

/// Opens a log on a local object store in `dir` (created if missing). With `link_segments`,
/// sealed segments are hard-linked into the store as `tributary serve` does;
/// without, they are uploaded with PUTs and cached like a remote store's.
pub(super) async fn open_log(
    dir: &Path,
    segment_bytes_max: u64,
    link_segments: bool,
) -> anyhow::Result<Arc<Log>> {
    std::fs::create_dir_all(dir)?;
    let url = format!("file://{}", dir.join("objects").display());
    let store = open_object_store(&url)?;
    let metadata = MetadataStore::open_sqlite(&dir.join("metadata.db")).await?;
    let config = LogConfig {
        data_dir: dir.to_path_buf(),
        local_object_root: link_segments
            .then(|| tributary_storage::objects::local_root(&url))
            .flatten(),
        segment_bytes_max,
        segment_age_max_ms: 3_600_000,
        ..Default::default()
    };
    Ok(Log::open(config, store, metadata).await?)
}

fn sample_batch(args: &LogBenchArgs) -> anyhow::Result<Bytes> {
    let records: Vec<NewRecord> = (0..args.records_per_batch)
        .map(|i| NewRecord {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'x'; args.record_bytes])),
            headers: Vec::new(),
            timestamp_ms: 1_700_000_000_000 + i as i64,
        })
        .collect();
    Ok(encode_batch(&records, Compression::None)?)
}

async fn append_run(
    dir: &Path,
    args: &LogBenchArgs,
    partitions: u32,
    writers: usize,
    total_bytes: u64,
) -> anyhow::Result<Figure> {
    let log = open_log(dir, args.segment_mib << 20, true).await?;
    log.create_stream(
        "bench",
        StreamConfig {
            partitions,
            ..Default::default()
        },
    )
    .await?;
    let batch = sample_batch(args)?;
    let batches_total = (total_bytes / batch.len() as u64).max(1);
    let per_writer = batches_total.div_ceil(writers as u64);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = log.clone();
        let batch = batch.clone();
        let partition = (w as u32) % partitions;
        let in_flight = args.in_flight.max(1);
        tasks.push(tokio::spawn(async move {
            // With fewer writers than partitions, each writer spreads its
            // appends over the partitions round-robin. Appends are sent in
            // order and answered in order, `in_flight` at a time.
            let appends = futures::stream::iter(0..per_writer).map(|i| {
                let p = if writers < partitions as usize {
                    (i % u64::from(partitions)) as u32
                } else {
                    partition
                };
                log.append("bench", p, batch.clone())
            });
            let mut answers = appends.buffered(in_flight);
            while let Some(answer) = answers.next().await {
                answer?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed();
    log.shutdown().await;
    let batches = per_writer * writers as u64;
    Ok(Figure {
        name: format!(
            "append: {partitions} partition(s), {writers} writer(s) x {} in flight",
            args.in_flight.max(1)
        ),
        bytes: batches * batch.len() as u64,
        records: batches * args.records_per_batch as u64,
        elapsed,
    })
}

/// Fills one partition, waits for every segment to be uploaded (with PUTs,
/// as to a remote store), then reads it all from the cache, and again with
/// the cache emptied, from the object store.
async fn read_runs(
    dir: &Path,
    args: &LogBenchArgs,
    total_bytes: u64,
) -> anyhow::Result<(Figure, Figure)> {
    let log = open_log(dir, 16 << 20, false).await?;
    log.create_stream("bench", StreamConfig::default()).await?;
    let batch = sample_batch(args)?;
    let batches = (total_bytes / batch.len() as u64).max(1);
    let mut tasks = Vec::new();
    for w in 0..16u64 {
        let log = log.clone();
        let batch = batch.clone();
        tasks.push(tokio::spawn(async move {
            for _ in (w..batches).step_by(16) {
                log.append("bench", 0, batch.clone()).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let partition = log.partition("bench", 0)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while partition.segment_counts().0 > 1 {
        anyhow::ensure!(Instant::now() < deadline, "uploads did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let high_watermark = partition.high_watermark();
    let cache = read_all(&partition, high_watermark, "read: sequential, from cache").await?;
    log.clear_cache();
    let object = read_all(
        &partition,
        high_watermark,
        "read: sequential, from object store",
    )
    .await?;
    log.shutdown().await;
    Ok((cache, object))
}

async fn read_all(
    partition: &Arc<tributary_storage::Partition>,
    high_watermark: i64,
    name: &str,
) -> anyhow::Result<Figure> {
    let start = Instant::now();
    let mut offset = 0;
    let mut bytes = 0u64;
    while offset < high_watermark {
        let read = partition
            .read(offset, 4 << 20)
            .await
            .with_context(|| format!("reading at {offset}"))?;
        let last = read
            .batches
            .last()
            .context("empty read below the high watermark")?;
        let header = tributary_storage::batch::BatchHeader::parse(last)?;
        offset = header.last_offset() + 1;
        bytes += read.size_bytes() as u64;
    }
    Ok(Figure {
        name: name.into(),
        bytes,
        records: high_watermark as u64,
        elapsed: start.elapsed(),
    })
}
