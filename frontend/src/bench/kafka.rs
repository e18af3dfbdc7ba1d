//! `tributary bench kafka`: a real Kafka client (librdkafka, through the
//! `rdkafka` crate) against an in-process broker: produce throughput with
//! acks=all and lz4 on 1 and 8 partitions, consume throughput, and
//! end-to-end latency at a fixed rate. The raw write+fsync bandwidth of the
//! same disk for the same bytes is measured in the same run, so produce is
//! printed as a ratio. Client and broker share the machine's cores.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tributary_executor::Engine;
use tributary_kafka_compat::KafkaConfig;
use tributary_storage::StreamConfig;

use super::Figure;
use super::log::{open_server_log, raw_write_fsync};
use super::thread_cpu::{self, ThreadTimes};

/// Arguments of `tributary bench kafka`.
#[derive(Debug, Args)]
pub(crate) struct KafkaBenchArgs {
    /// Messages produced (and consumed) per throughput run.
    #[arg(long, default_value_t = 300_000)]
    messages: u64,
    /// Bytes per message value.
    #[arg(long, default_value_t = 1024)]
    message_bytes: usize,
    /// Messages per second in the latency run.
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Seconds the latency run lasts.
    #[arg(long, default_value_t = 10)]
    latency_secs: u64,
    /// Scratch directory (created and removed) [default: ./.tributary-bench-kafka].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Producer clients sending at once in the throughput runs, each with
    /// its own thread and connection (librdkafka sends all of one client's
    /// messages from one thread per broker).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    producers: u64,
    /// A librdkafka producer setting added to (or replacing one of) the
    /// defaults, as `key=value`; repeatable.
    #[arg(long = "producer-set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    producer_settings: Vec<(String, String)>,
}

/// `key=value`, split at the first `=`.
fn parse_setting(setting: &str) -> Result<(String, String), String> {
    setting
        .split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{setting}` is not key=value"))
}

/// The producer settings of a run: the defaults, with `overrides` replacing
/// or adding to them, in order.
fn producer_settings(overrides: &[(String, String)]) -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = PRODUCER_SETTINGS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (key, value) in overrides {
        match settings.iter_mut().find(|(k, _)| k == key) {
            Some(setting) => setting.1 = value.clone(),
            None => settings.push((key.clone(), value.clone())),
        }
    }
    settings
}

/// The producer settings of the throughput runs, printed with the figures.
const PRODUCER_SETTINGS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("compression.type", "lz4"),
    ("linger.ms", "5"),
    ("batch.size", "1000000"),
    ("queue.buffering.max.kbytes", "1048576"),
    ("max.in.flight.requests.per.connection", "5"),
];

pub(crate) async fn bench_kafka(args: KafkaBenchArgs) -> anyhow::Result<()> {
    let dir = super::scratch_dir(args.dir.clone(), ".tributary-bench-kafka")?;
    println!(
        "bench kafka: librdkafka {}, {} messages of {} B per run, scratch {}",
        rdkafka::util::get_rdkafka_version().1,
        args.messages,
        args.message_bytes,
        dir.display()
    );
    let settings = producer_settings(&args.producer_settings);
    let printed: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "producer: {} ({} client(s) in the throughput runs)",
        printed.join(" "),
        args.producers
    );

    let log = open_server_log(&dir).await?;
    let engine = Engine::new(log.clone())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = KafkaConfig {
        advertised_host: addr.ip().to_string(),
        advertised_port: addr.port(),
        ..Default::default()
    };
    let server = tokio::spawn(tributary_kafka_compat::serve(
        engine.clone(),
        listener,
        config,
    ));
    let bootstrap = addr.to_string();
    let payload_bytes = args.messages * args.message_bytes as u64;

    for partitions in [1u32, 8] {
        let topic = format!("bench-{partitions}p");
        engine
            .create_raw_stream(
                &topic,
                StreamConfig {
                    partitions,
                    ..Default::default()
                },
            )
            .await?;
        let raw = raw_write_fsync(&dir.join("raw"), payload_bytes)?;
        let (produced, cpu) = run_blocking({
            let (bootstrap, topic) = (bootstrap.clone(), topic.clone());
            let (messages, size) = (args.messages, args.message_bytes);
            let settings = settings.clone();
            let producers = args.producers;
            move || produce(&bootstrap, &settings, &topic, messages, size, producers)
        })
        .await?;
        let stored: u64 = (0..partitions)
            .map(|p| log.partition(&topic, p).map(|p| p.size_bytes()))
            .sum::<Result<u64, _>>()?;
        println!("{:<44} {:>10.1} MiB/s", raw.name, raw.mib_per_s());
        println!(
            "{:<44} {:>10.1} MiB/s {:>10.0} msgs/s {:>5.0}% of raw write+fsync ({:.1} MiB stored)",
            format!("produce: {partitions} partition(s)"),
            produced.mib_per_s(),
            produced.records_per_s(),
            100.0 * produced.mib_per_s() / raw.mib_per_s(),
            stored as f64 / (1024.0 * 1024.0)
        );
        cpu.print(&produced);
        let consumed = run_blocking({
            let (bootstrap, topic) = (bootstrap.clone(), topic.clone());
            let messages = args.messages;
            move || consume(&bootstrap, &topic, partitions, messages)
        })
        .await?;
        println!(
            "{:<44} {:>10.1} MiB/s {:>10.0} msgs/s",
            format!("consume: {partitions} partition(s)"),
            consumed.mib_per_s(),
            consumed.records_per_s()
        );
    }

    engine
        .create_raw_stream("bench-latency", StreamConfig::default())
        .await?;
    let latencies = run_blocking({
        let bootstrap = bootstrap.clone();
        let (rate, secs, size) = (args.rate, args.latency_secs, args.message_bytes);
        let settings = settings.clone();
        move || end_to_end(&bootstrap, &settings, "bench-latency", rate, secs, size)
    })
    .await?;
    println!(
        "end to end at {} msgs/s for {} s (acks=all, lz4, linger.ms=0): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms over {} messages",
        args.rate,
        args.latency_secs,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
        percentile(&latencies, 1.0),
        latencies.len()
    );

    server.abort();
    log.shutdown().await;
    remove_scratch(&dir);
    Ok(())
}

/// Runs a blocking client on a thread of its own, off the broker's runtime.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work).await?
}

fn remove_scratch(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("could not remove {}: {e}", dir.display());
    }
}

/// Counts a producer's deliveries and failures.
#[derive(Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.delivered
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn producer_config(bootstrap: &str, settings: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (key, value) in settings {
        config.set(key, value);
    }
    config
}

/// Values that lz4 cannot shrink (pseudo-random bytes), so the figure is
/// not flattered by compression; each message gets its own.
fn values(count: usize, size: usize) -> Vec<Vec<u8>> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|_| {
            (0..size)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        })
        .collect()
}

/// How long a sender whose local queue is full serves deliveries before it
/// tries again. `BaseProducer::poll` keeps polling until its deadline and
/// hands librdkafka whole milliseconds, so the part of a millisecond left
/// at the end is a busy loop: a 1 ms wait was nothing but that, and took a
/// core from the broker. 10 ms blocks for all but the last of them, and is
/// far less than the queue holds (100,000 messages).
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);

/// Sends with back-pressure: a full local queue waits for deliveries.
fn send(producer: &BaseProducer<Deliveries>, mut record: BaseRecord<'_, [u8], [u8]>) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(QUEUE_FULL_WAIT);
            }
            Err((e, _)) => {
                eprintln!("send failed: {e}");
                producer.context().failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Produces `messages` values of `size` bytes with keys spread over the
/// partitions, from `producers` clients at once (each with its own thread
/// and connection, sending its share of the keys), and waits for every
/// acknowledgement; with how the cores were shared meanwhile.
fn produce(
    bootstrap: &str,
    settings: &[(String, String)],
    topic: &str,
    messages: u64,
    size: usize,
    producers: u64,
) -> anyhow::Result<(Figure, CpuSplit)> {
    let clients = (0..producers)
        .map(|_| producer_config(bootstrap, settings).create_with_context(Deliveries::default()))
        .collect::<Result<Vec<BaseProducer<Deliveries>>, _>>()?;
    let values = values(1024, size);
    let threads_before = ThreadTimes::now();
    let start = Instant::now();
    let senders_cpu = std::thread::scope(|scope| {
        let sending = clients
            .iter()
            .enumerate()
            .map(|(n, producer)| {
                let keys = (n as u64..messages).step_by(producers as usize);
                let values = &values;
                std::thread::Builder::new()
                    .name(SENDER_THREAD.into())
                    .spawn_scoped(scope, move || {
                        let cpu_before = thread_cpu::this_thread();
                        send_all(producer, topic, keys, values)?;
                        Ok(thread_cpu::this_thread().saturating_sub(cpu_before))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        sending
            .into_iter()
            .map(|s| {
                s.join()
                    .map_err(|_| anyhow::anyhow!("a producer thread panicked"))?
            })
            .sum::<anyhow::Result<Duration>>()
    })?;
    let elapsed = start.elapsed();
    // The senders have ended and counted themselves; librdkafka's threads
    // live as long as `clients`.
    let (librdkafka_cpu, broker_cpu) =
        ThreadTimes::now().since(&threads_before, |name| name.starts_with("rdk:"));
    let figure = Figure {
        name: format!("produce to {topic}"),
        bytes: messages * size as u64,
        records: messages,
        elapsed,
    };
    let cpu = CpuSplit {
        client: senders_cpu + librdkafka_cpu,
        broker: broker_cpu,
        elapsed,
    };
    Ok((figure, cpu))
}

/// The name of the threads that hand messages to librdkafka.
const SENDER_THREAD: &str = "bench-producer";

/// CPU time of a produce run: the client's (the sending threads and
/// librdkafka's own) and everything else in the process (the broker).
struct CpuSplit {
    client: Duration,
    broker: Duration,
    elapsed: Duration,
}

impl CpuSplit {
    /// Prints each side's cores and milliseconds of CPU per MiB produced,
    /// and the rate the machine's cores would allow at those costs: the
    /// ceiling a produce run sharing them can reach.
    fn print(&self, produced: &Figure) {
        if self.client.is_zero() && self.broker.is_zero() {
            return;
        }
        let mib = produced.bytes as f64 / (1024.0 * 1024.0);
        let secs = self.elapsed.as_secs_f64();
        let ms_per_mib = |cpu: Duration| cpu.as_secs_f64() * 1000.0 / mib;
        let (client, broker) = (ms_per_mib(self.client), ms_per_mib(self.broker));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "  cpu: client {:.2} cores ({client:.2} ms/MiB), broker {:.2} cores ({broker:.2} ms/MiB); \
             {cores} cores at these costs allow at most {:.0} MiB/s",
            self.client.as_secs_f64() / secs,
            self.broker.as_secs_f64() / secs,
            cores as f64 * 1000.0 / (client + broker),
        );
    }
}

/// Sends the message of each key in `keys` (its value picked from
/// `values` by the key), then waits until each is acknowledged.
fn send_all(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    keys: impl Iterator<Item = u64>,
    values: &[Vec<u8>],
) -> anyhow::Result<()> {
    let mut sent = 0u64;
    for i in keys {
        let key = i.to_be_bytes();
        let value = &values[(i % values.len() as u64) as usize];
        send(
            producer,
            BaseRecord::to(topic).key(&key[..]).payload(&value[..]),
        );
        sent += 1;
        if sent.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let deliveries = producer.context();
    let failed = deliveries.failed.load(Ordering::Relaxed);
    let delivered = deliveries.delivered.load(Ordering::Relaxed);
    anyhow::ensure!(
        failed == 0 && delivered == sent,
        "{delivered} of {sent} delivered, {failed} failed"
    );
    Ok(())
}

fn consumer(bootstrap: &str) -> anyhow::Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench")
        .set("enable.auto.commit", "false")
        .create()?)
}

/// Reads `messages` messages from the start of every partition.
fn consume(bootstrap: &str, topic: &str, partitions: u32, messages: u64) -> anyhow::Result<Figure> {
    let consumer = consumer(bootstrap)?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p as i32, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let start = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    while count < messages {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(message)) => {
                count += 1;
                bytes += message.payload_len() as u64;
            }
            Some(Err(e)) => anyhow::bail!("consume failed: {e}"),
            None => anyhow::bail!("no message for 10 s after {count} of {messages}"),
        }
    }
    Ok(Figure {
        name: format!("consume from {topic}"),
        bytes,
        records: count,
        elapsed: start.elapsed(),
    })
}

/// Produces at `rate` messages per second for `secs` seconds, each
/// carrying the time it was sent, while a consumer reads them; returns
/// each message's latency in milliseconds, sorted.
fn end_to_end(
    bootstrap: &str,
    settings: &[(String, String)],
    topic: &str,
    rate: u64,
    secs: u64,
    size: usize,
) -> anyhow::Result<Vec<f64>> {
    let origin = Instant::now();
    let total = rate * secs;
    let consumer = consumer(bootstrap)?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::End)?;
    consumer.assign(&assignment)?;
    // The consumer's first fetch positions it at the end before timing
    // starts.
    consumer.poll(Duration::from_millis(500));
    let reader = std::thread::spawn(move || -> anyhow::Result<Vec<f64>> {
        let mut latencies = Vec::with_capacity(total as usize);
        while (latencies.len() as u64) < total {
            match consumer.poll(Duration::from_secs(10)) {
                Some(Ok(message)) => {
                    let payload = message.payload().context("message without a value")?;
                    let sent = u64::from_be_bytes(payload[..8].try_into()?);
                    if sent == WARM_UP {
                        continue;
                    }
                    let now = origin.elapsed().as_nanos() as u64;
                    latencies.push(now.saturating_sub(sent) as f64 / 1e6);
                }
                Some(Err(e)) => anyhow::bail!("consume failed: {e}"),
                None => anyhow::bail!("no message for 10 s after {}", latencies.len()),
            }
        }
        Ok(latencies)
    });

    let mut config = producer_config(bootstrap, settings);
    config.set("linger.ms", "0");
    let producer: BaseProducer<Deliveries> = config.create_with_context(Deliveries::default())?;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut value = values(1, size.max(8)).remove(0);
    // The producer's first message waits for its connections and the
    // topic's metadata (100-200 ms here): a warm-up message, not timed,
    // so the figures are the steady state's.
    value[..8].copy_from_slice(&WARM_UP.to_be_bytes());
    send(&producer, BaseRecord::to(topic).payload(&value[..]));
    producer.flush(Duration::from_secs(10))?;
    let start = Instant::now();
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        while Instant::now() < due {
            producer.poll(due.saturating_duration_since(Instant::now()));
        }
        let sent = origin.elapsed().as_nanos() as u64;
        value[..8].copy_from_slice(&sent.to_be_bytes());
        send(&producer, BaseRecord::to(topic).payload(&value[..]));
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60))?;
    let mut latencies = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the consumer thread panicked"))??;
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// The send time a warm-up message carries instead of its own.
const WARM_UP: u64 = u64::MAX;

/// The `q` quantile of sorted values (0 when empty).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}
