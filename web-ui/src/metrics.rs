//! `/metrics` in Prometheus text format. Two halves: what the server's
//! crates record as things happen (requests, appends, reads, object-store
//! calls, checkpoints) through the `metrics` facade, rendered by the
//! recorder [`install`] sets up (a dropped stream's series stay until
//! the server restarts, as counters do); and the state read when scraped
//! (partitions, jobs, consumer lag), which lists only what exists now. A
//! part of the state that cannot be read is left out with a warning
//! rather than failing the whole scrape.

use std::fmt::Write as _;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{Map, Value};
use tracing::warn;
use tributary_executor::Session;

use crate::AppState;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{cast, col};

use crate::catalog::{frame_objects, objects, rows_of};
use crate::error::ApiError;

/// Latency buckets, in seconds, for every `*_duration_seconds` histogram.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Renders what the process's `metrics` recorder has collected.
#[derive(Debug, Clone)]
pub struct MetricsHandle(PrometheusHandle);

/// Installs the process-wide recorder that `metrics::counter!` and
/// friends report to, and starts its upkeep. Call once, before serving.
pub fn install() -> Result<MetricsHandle, metrics_exporter_prometheus::BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)?
        .install_recorder()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(MetricsHandle(handle))
}

/// `GET /metrics`.
pub async fn get(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state
        .metrics
        .as_ref()
        .map(|handle| handle.0.render())
        .unwrap_or_default();
    state_section(&state, &mut text).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// Appends the gauges read from the engine now.
async fn state_section(state: &AppState, text: &mut String) {
    let log = state.engine.log();
    let mut high_watermarks = Family::new(
        "tributary_partition_high_watermark",
        "gauge",
        "Next offset to be written in the partition.",
    );
    let mut log_starts = Family::new(
        "tributary_partition_log_start_offset",
        "gauge",
        "First offset still retained in the partition.",
    );
    let mut sizes = Family::new(
        "tributary_partition_size_bytes",
        "gauge",
        "Bytes the partition's retained segments hold.",
    );
    for stream in log.streams() {
        for id in 0..stream.config.partitions {
            let Ok(partition) = log.partition(&stream.name, id) else {
                continue;
            };
            let labels = [
                ("stream", stream.name.as_str()),
                ("partition", &id.to_string()),
            ];
            high_watermarks.sample(&labels, partition.high_watermark() as f64);
            log_starts.sample(&labels, partition.log_start_offset() as f64);
            sizes.sample(&labels, partition.size_bytes() as f64);
        }
    }

    let session = state.engine.session();
    let jobs = job_rows(&session).await.unwrap_or_else(|error| {
        warn!(%error, "/metrics: leaving out the jobs");
        Vec::new()
    });
    let mut job_families = [
        (
            "lag",
            "gauge",
            "Records the job's inputs hold that it has not read.",
        ),
        (
            "rows_in",
            "counter",
            "Rows the job has read since the server started.",
        ),
        (
            "rows_out",
            "counter",
            "Rows the job has written since the server started.",
        ),
        (
            "late_rows",
            "counter",
            "Rows that arrived behind the watermark for a closed window.",
        ),
    ]
    .map(|(column, kind, help)| {
        let suffix = if kind == "counter" { "_total" } else { "" };
        (
            column,
            Family::new(&format!("tributary_job_{column}{suffix}"), kind, help),
        )
    });
    let mut watermarks = Family::new(
        "tributary_job_watermark_seconds",
        "gauge",
        "The job's event-time watermark, seconds since the epoch.",
    );
    for job in &jobs {
        let name = text_of(job, "name");
        let labels = [("job", name.as_str()), ("kind", &text_of(job, "kind"))];
        for (column, family) in &mut job_families {
            if let Some(value) = job.get(*column).and_then(Value::as_f64) {
                family.sample(&labels, value);
            }
        }
        if let Some(micros) = job.get("watermark").and_then(Value::as_f64) {
            watermarks.sample(&labels, micros / 1e6);
        }
    }

    let mut group_lag = Family::new(
        "tributary_consumer_group_lag",
        "gauge",
        "Records between a consumer group's committed offset and the high watermark.",
    );
    let lags = objects(&session, "SELECT * FROM tributary.consumer_lag")
        .await
        .unwrap_or_else(|error| {
            warn!(%error, "/metrics: leaving out consumer lag");
            Vec::new()
        });
    for row in lags {
        if let Some(lag) = row.get("lag").and_then(Value::as_f64) {
            let labels = [
                ("group", text_of(&row, "group_id")),
                ("stream", text_of(&row, "stream")),
                ("partition", text_of(&row, "partition")),
            ];
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            group_lag.sample(&labels, lag);
        }
    }

    for family in [high_watermarks, log_starts, sizes, watermarks, group_lag]
        .into_iter()
        .chain(job_families.into_iter().map(|(_, family)| family))
    {
        family.write(text);
    }
}

/// `SHOW JOBS`, with the watermark as microseconds since the epoch.
async fn job_rows(session: &Session) -> Result<Vec<Map<String, Value>>, ApiError> {
    let jobs = rows_of(session, "SHOW JOBS")
        .await?
        .with_column("watermark", cast(col("watermark"), DataType::Int64))
        .map_err(|e| ApiError::Internal(format!("SHOW JOBS: {e}")))?;
    frame_objects(jobs, "SHOW JOBS").await
}

/// One metric family in text format: HELP and TYPE, then its samples.
struct Family {
    header: String,
    samples: String,
    name: String,
}

impl Family {
    fn new(name: &str, kind: &str, help: &str) -> Self {
        Self {
            header: format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"),
            samples: String::new(),
            name: name.to_string(),
        }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(key, value)| format!("{key}=\"{}\"", escape_label(value)))
            .collect();
        let _ = writeln!(
            self.samples,
            "{}{{{}}} {value}",
            self.name,
            labels.join(",")
        );
    }

    fn write(self, text: &mut String) {
        if !self.samples.is_empty() {
            text.push_str(&self.header);
            text.push_str(&self.samples);
        }
    }
}

/// A label value escaped as the text format asks: `\`, `"` and newlines.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn text_of(row: &Map<String, Value>, column: &str) -> String {
    match row.get(column) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut family = Family::new("m", "gauge", "help");
        family.sample(&[("stream", "a\"b\\c\nd")], 1.0);
        assert_eq!(family.samples, "m{stream=\"a\\\"b\\\\c\\nd\"} 1\n");
    }
}
