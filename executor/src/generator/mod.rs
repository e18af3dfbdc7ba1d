//! Built-in generators: streams whose records a connector writes, such as
//! `CREATE STREAM bids WITH (connector = 'nexmark', kind = 'bid', rate =
//! 10000)`. Each such stream has one task that appends events at its rate
//! (each partition its own share, in order) until `events` have been
//! written, if that was given. The task starts with the stream, starts
//! again with the server, and goes on where the log ends: partition `p`
//! holding `k` records makes its `k`-th event next, so a crash loses and
//! repeats nothing. Clients cannot write into such a stream
//! ([`crate::background::check_writable`]).

pub(crate) mod nexmark;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};
use tributary_planner::NexmarkOptions;
use tributary_storage::Log;

use self::nexmark::NexmarkPartition;
use crate::error::{ExecError, Result};
use crate::stream_table::StreamTable;

/// How often a generator appends what its rate has made due.
const TICK: Duration = Duration::from_millis(20);

/// Events a generator encodes between two appends at most, across its
/// partitions, so one catching up (or running at millions a second) works
/// in bounded memory.
const EVENTS_PER_APPEND_MAX: u64 = 65_536;

/// How long a generator waits after a failed append (a full disk, say)
/// before trying again.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Appends Nexmark events to `table`'s stream until it has `events_max`,
/// or for ever; restarts from the log's end after a failed append.
pub(crate) async fn run_nexmark(log: Arc<Log>, table: StreamTable, options: NexmarkOptions) {
    let stream = table.name().to_string();
    loop {
        match generate(&log, &table, &options).await {
            Ok(()) => {
                info!(stream, "nexmark generator wrote all its events");
                return;
            }
            Err(ExecError::Storage(tributary_storage::Error::UnknownStream(_))) => return,
            Err(e) => {
                warn!(stream, error = %e, "nexmark generator failed; trying again");
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}

/// One run of a generator: from each partition's end, at the rate, to the
/// end (`Ok`) or the first error.
async fn generate(log: &Log, table: &StreamTable, options: &NexmarkOptions) -> Result<()> {
    let partitions = table.partitions();
    let base_time_ms = options.base_time_ms.unwrap_or(0);
    let mut generators = Vec::with_capacity(partitions as usize);
    for partition in 0..partitions {
        let records = log.partition(table.name(), partition)?.high_watermark();
        generators.push(NexmarkPartition::new(
            options,
            base_time_ms,
            partition,
            partitions,
            u64::try_from(records).unwrap_or(0),
            table.schemas().values.clone(),
        ));
    }
    let events_max = options.events_max.unwrap_or(u64::MAX);
    // Events are due at the rate from where the slowest partition is: a
    // restart neither bursts to make up for the time it was down nor
    // waits for it.
    let first_due = generators
        .iter()
        .map(NexmarkPartition::next_event)
        .min()
        .unwrap_or(0);
    info!(
        stream = table.name(),
        next_event = first_due,
        rate = options.rate_per_sec,
        "nexmark generator running"
    );
    let started = Instant::now();
    let sink = table.sink();
    let per_partition_max = (EVENTS_PER_APPEND_MAX / u64::from(partitions)).max(1);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let due = first_due
            .saturating_add(elapsed_us.saturating_mul(options.rate_per_sec) / 1_000_000)
            .min(events_max);
        let mut encoded = sink.encoded_rows();
        let mut behind = false;
        for (partition, generator) in (0..partitions).zip(generators.iter_mut()) {
            let next = generator.next_event();
            if next >= due {
                continue;
            }
            // Events p, p + n, ... below `due`.
            let owed = (due - next).div_ceil(u64::from(partitions));
            let count = owed.min(per_partition_max);
            behind |= count < owed;
            let rows = generator.next_rows(count as usize)?;
            sink.encode_to_partition(&[rows], partition, &mut encoded)?;
        }
        sink.append(encoded).await?;
        if due >= events_max && generators.iter().all(|g| g.next_event() >= events_max) {
            return Ok(());
        }
        if !behind {
            tick.tick().await;
        }
    }
}
