//! `SHOW JOBS`: each streaming job (one per materialized view or sink) with
//! its status, the stream it reads, how far behind it is (input records
//! not yet processed), the rows it has taken in and written out since
//! the server started, its watermark (jobs that close windows), the
//! rows it dropped as late, and its throughput (input rows a second over
//! the last ten seconds). A `COPY ... FROM STDIN` in progress is
//! listed too (kind `copy`), with the lines it has read.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tributary_planner::StreamDefinition;

use crate::engine::Output;
use crate::error::Result;
use crate::session::Session;

pub(crate) fn execute(session: &Session) -> Result<Output> {
    let engine = session.engine();
    let log = engine.log();
    let mut names = Vec::new();
    let mut kinds = Vec::new();
    let mut statuses = Vec::new();
    let mut inputs = Vec::new();
    let mut lags = Vec::new();
    let mut rows_in = Vec::new();
    let mut rows_out = Vec::new();
    let mut watermarks = Vec::new();
    let mut late_rows = Vec::new();
    let mut rates = Vec::new();
    for stream in log.streams() {
        let definition =
            StreamDefinition::from_json(&stream.name, stream.config.definition.as_ref())?;
        let sink = definition.sink().map(str::to_string);
        let Some(view) = definition.view else {
            continue;
        };
        let job = engine.jobs().job(&stream.name);
        let offsets = job.offsets();
        let mut lag = 0i64;
        for input in &view.inputs {
            let partitions = log.stream(input).map_or(0, |s| s.config.partitions);
            for p in 0..partitions {
                let Ok(partition) = log.partition(input, p) else {
                    continue;
                };
                let done = offsets
                    .as_ref()
                    .and_then(|o| o.get(&p).copied())
                    .unwrap_or(0)
                    .max(partition.log_start_offset());
                lag += (partition.high_watermark() - done).max(0);
            }
        }
        let status = match (job.last_error(), &offsets, job.catch_up_progress()) {
            (Some(error), _, _) => format!("failing: {error}"),
            (None, None, _) => "starting".to_string(),
            (None, Some(_), Some((done, total))) => format!(
                "backfilling: {done} of {total} records ({:.0} %)",
                done as f64 * 100.0 / total as f64
            ),
            (None, Some(_), None) => "running".to_string(),
        };
        kinds.push(if sink.is_some() {
            "sink"
        } else {
            "materialized view"
        });
        names.push(sink.unwrap_or_else(|| stream.name.clone()));
        statuses.push(status);
        inputs.push(view.inputs.join(", "));
        lags.push(lag);
        rows_in.push(job.rows_in.load(Ordering::Relaxed) as i64);
        rows_out.push(job.rows_out.load(Ordering::Relaxed) as i64);
        watermarks.push(job.watermark());
        late_rows.push(job.late_rows.load(Ordering::Relaxed) as i64);
        rates.push(job.rows_in_per_second().round() as i64);
    }
    // Long COPYs are listed too, with how far they have come.
    for copy in engine.copies() {
        let lines = copy.lines() as i64;
        names.push(format!("COPY {}", copy.stream));
        kinds.push("copy");
        statuses.push(if copy.appending() {
            format!("appending {lines} lines")
        } else {
            format!("reading: {lines} lines so far")
        });
        inputs.push("stdin".to_string());
        lags.push(0);
        rows_in.push(lines);
        rows_out.push(0);
        watermarks.push(None);
        late_rows.push(0);
        rates.push(0);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(names)),
        Arc::new(StringArray::from(kinds)),
        Arc::new(StringArray::from(statuses)),
        Arc::new(StringArray::from(inputs)),
        Arc::new(Int64Array::from(lags)),
        Arc::new(Int64Array::from(rows_in)),
        Arc::new(Int64Array::from(rows_out)),
        Arc::new(TimestampMicrosecondArray::from(watermarks)),
        Arc::new(Int64Array::from(late_rows)),
        Arc::new(Int64Array::from(rates)),
    ];
    let batch = RecordBatch::try_new(schema(), columns)?;
    Ok(Output::Rows(session.context().read_batch(batch)?))
}

/// The columns of `SHOW JOBS`.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("inputs", DataType::Utf8, false),
        Field::new("lag", DataType::Int64, false),
        Field::new("rows_in", DataType::Int64, false),
        Field::new("rows_out", DataType::Int64, false),
        Field::new(
            "watermark",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("late_rows", DataType::Int64, false),
        Field::new("rows_in_per_second", DataType::Int64, false),
    ]))
}
