//! Streaming jobs: a materialized view's query, run for ever over its
//! input as it grows. The query is planned by DataFusion and lowered into
//! a dataflow ([`lower`]); the job reads the input's partitions from where
//! its output says it stopped ([`progress`]), first the history that was
//! there when the view was created (the backfill), then whatever arrives,
//! with no seam between the two: both are the same offsets read in order.
//! Each chunk of input rows goes through the operators, and what comes out
//! is appended to the view's stream as JSON change records (`op` `+`).

pub(crate) mod aggregate;
pub(crate) mod changing_functions;
pub(crate) mod checkpoint;
pub(crate) mod lower;
pub(crate) mod multiset;
pub(crate) mod operator;
pub(crate) mod output;
pub(crate) mod progress;
pub(crate) mod registry;
pub(crate) mod subscribe;
pub(crate) mod throughput;
pub(crate) mod watermark;
pub(crate) mod window_groups;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use datafusion::arrow::array::{BinaryArray, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};
use tributary_planner::StreamDefinition;
use tributary_storage::Log;
use tributary_storage::batch::{Compression, NewRecord, encode_batch};
use tributary_storage::records::BatchRecords;

use crate::error::{ExecError, Result};
use crate::format::{self, Origin};
use crate::read_ahead::{ReadAhead, read_at};
use crate::stream_table::StreamTable;
use checkpoint::{Checkpoint, Checkpointer, Manifest};
use lower::StreamingPlan;
use operator::Changes;
use output::{ChangeEncoder, Encoding, PendingOutput};
use progress::{InputOffsets, Progress};
use registry::{CatchUp, JobRegistry, JobState};
use watermark::Watermarks;

/// Input rows processed at once: their output is one record batch, which
/// the log keeps whole or not at all.
pub(crate) const CHUNK_ROWS: usize = 4096;

/// Bytes read from an input partition at a time.
pub(crate) const READ_BYTES: usize = 4 << 20;

/// About how many bytes of output batches are appended at once (each
/// batch carries its own progress, so any split is safe).
const APPEND_BYTES: usize = 4 << 20;

/// Blobs of output waiting to be appended while the job computes on.
const APPENDS_IN_FLIGHT: usize = 2;

/// Blobs of output handed to the log and not yet durable: they share
/// fdatasyncs instead of each waiting for its own.
const APPENDS_SUBMITTED: usize = 4;

/// How long an idle job waits for new input before looking again (it is
/// woken at once by an append; this catches partitions added meanwhile).
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// How long a job waits after a failure before starting again from its
/// output's last batch.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// The name of the column that says what a change record does.
pub(crate) const OP_COLUMN: &str = "op";

/// How the value of a change record taking a row back starts: `op` is the
/// first field the encoder writes, so reading a view tells additions from
/// retractions without parsing each value.
const RETRACTION_PREFIX: &[u8] = br#"{"op":"-""#;

/// The key column of changes read from a view with GROUP BY: the record
/// keys as they were stored.
const RECORD_KEY_COLUMN: &str = "__record_key";

/// Whether a change record's value takes a row back.
pub(crate) fn is_retraction(value: Option<&[u8]>) -> bool {
    value.is_some_and(|v| v.starts_with(RETRACTION_PREFIX))
}

/// The optimizer rule that turns `AGG(DISTINCT x)` into an aggregation
/// over a `GROUP BY x`: fine for a query run once, but a job would then
/// aggregate the changes of an aggregation. Its accumulators count
/// distinct values themselves.
const DISTINCT_TO_GROUP_BY: &str = "single_distinct_aggregation_to_group_by";

/// Plans a view's query over the streams of `log` as DataFusion would run
/// it once, optimized (less the rules that only pay off for a query run
/// once); `*` leaves out the metadata columns, as in any query.
pub(crate) async fn plan_query(
    log: &Log,
    state: &SessionState,
    query: &str,
) -> Result<LogicalPlan> {
    let rules = state
        .optimizer()
        .rules
        .iter()
        .filter(|rule| rule.name() != DISTINCT_TO_GROUP_BY)
        .cloned()
        .collect();
    let state = SessionStateBuilder::new_from_existing(state.clone())
        .with_optimizer_rules(rules)
        .build();
    let dialect = state.config().options().sql_parser.dialect;
    let mut statement = state.sql_to_statement(query, &dialect)?;
    if let datafusion::sql::parser::Statement::Statement(statement) = &mut statement {
        crate::hidden_columns::hide_metadata_columns(statement, |name| {
            crate::hidden_columns::stream_columns(log, name)
        });
    }
    let plan = state.statement_to_plan(statement).await?;
    changing_functions::refuse_changing_functions(&plan)?;
    lower::refuse_unsupported_expressions(&plan)?;
    Ok(state.optimize(&plan)?)
}

/// Runs the job of the view `view` until the view is dropped; a failure
/// is logged and the job starts again from its output's last batch.
pub(crate) async fn run_view(
    log: Arc<Log>,
    state: SessionState,
    view: StreamTable,
    job: Arc<JobState>,
    checkpoint_interval: Duration,
) {
    let name = view.name().to_string();
    loop {
        match run(&log, &state, &view, &job, checkpoint_interval).await {
            Err(ExecError::Storage(tributary_storage::Error::UnknownStream(stream)))
                if stream == name =>
            {
                return;
            }
            Err(e) => {
                warn!(view = name, error = %e, "materialized view job failed; starting again");
                job.set_error(Some(e.to_string()));
                tokio::time::sleep(RETRY_DELAY).await;
            }
            Ok(()) => return,
        }
    }
}

/// One run of a job: from its output's last batch, for ever (or to the
/// first error).
async fn run(
    log: &Log,
    state: &SessionState,
    view: &StreamTable,
    job: &JobState,
    checkpoint_interval: Duration,
) -> Result<()> {
    let definition = view.definition().view.clone().ok_or_else(|| {
        ExecError::Internal(format!("{} is not a materialized view", view.name()))
    })?;
    let plan = plan_query(log, state, &definition.query).await?;
    let mut dataflow = lower::lower_view(
        state,
        log,
        &plan,
        definition.emit_on_window_close,
        definition.late_data_to.is_some(),
    )?;
    let output_end = progress::resume(log, view.name()).await?;
    job.publish(&output_end);
    let mut checkpoints = Checkpointer::new(checkpoint::job_key(log, view.name())?, view.name());
    // A job without state goes on where its output ends. One with state
    // (an aggregation) restores its newest checkpoint, or starts empty from
    // the input's start; it appends only what comes after its output's
    // end: the input up to there is replayed with its output dropped, as
    // the log holds it already. The windows its output closed stay closed.
    let mut cursor = Cursor {
        offsets: output_end.offsets.clone(),
        replay_end: InputOffsets::new(),
        watermarks: Watermarks::new(output_end.watermark),
        replayed_late_rows: 0,
        read_ahead: HashMap::new(),
    };
    if dataflow.stateful() {
        cursor.offsets = InputOffsets::new();
        cursor.replay_end = output_end.offsets.clone();
        let restored = checkpoints.restore(log).await?;
        // A checkpoint is written once the output of the input it covers
        // is in the log. It may cover more input than the output's end
        // says (input that closed no window made no output to append),
        // never input whose output is missing.
        if let Some(restored) = restored {
            if let Some(state) = &restored.state {
                dataflow.restore(state)?;
            }
            info!(view = view.name(), offsets = ?restored.manifest.input_offsets, "restored the newest checkpoint");
            cursor.offsets = restored.manifest.input_offsets;
            cursor.watermarks = Watermarks::restored(
                restored.manifest.partition_watermarks,
                restored.manifest.watermark.max(output_end.watermark),
            );
        }
    }
    if let Some(watermark) = output_end.watermark {
        dataflow.advance(watermark)?;
    }
    if let Some(probe) = &dataflow.watermark {
        cursor.watermarks.set_idle_timeout(probe.idle_timeout);
    }
    // The history to catch up on: the input as it ends now.
    let input_end: InputOffsets = (0..log.stream(&dataflow.source)?.config.partitions)
        .filter_map(|p| {
            let partition = log.partition(&dataflow.source, p).ok()?;
            Some((p, partition.high_watermark()))
        })
        .collect();
    job.start_catch_up(output_end.offsets.clone(), input_end);
    let changes = Arc::new(ChangeEncoder::new(
        view.definition().clone(),
        view.schemas().values.clone(),
    ));
    let job_kind = if changes.sink {
        "sink"
    } else {
        "materialized view"
    };
    info!(
        view = view.name(),
        input = dataflow.source,
        offsets = ?cursor.offsets,
        kind = job_kind,
        "job running"
    );
    // The output is appended by a second future in this task while the
    // next input is computed. Each step's blob is handed to the view's
    // writer in order (the writer gives offsets in that order) and becomes
    // durable while the next ones are handed over, so consecutive appends
    // share an fdatasync; a step is published (its offsets, its rows
    // counted) once its output and all before it are in the log. When
    // computing or appending fails, what was handed over still lands before
    // the job returns, so no append of an abandoned run lands after the
    // next run has read where the output ends.
    let (appends, to_append) = mpsc::channel::<Step>(APPENDS_IN_FLIGHT);
    let appending = async {
        // Owned here, so that when appending stops on an error, computing
        // finds the channel closed instead of waiting for room for ever.
        let mut to_append = to_append;
        let mut durable = FuturesOrdered::new();
        let mut outcome = Ok(());
        let publish = |appended: Result<StepDone>| appended.map(|done| done.publish(job));
        loop {
            tokio::select! {
                biased;
                Some(appended) = durable.next(), if !durable.is_empty() => {
                    if let Err(e) = publish(appended) {
                        outcome = Err(e);
                        break;
                    }
                }
                step = to_append.recv(), if durable.len() < APPENDS_SUBMITTED => {
                    let Some(step) = step else { break };
                    let checkpoint = match hand_over(log, view.name(), definition.late_data_to.as_deref(), step).await {
                        Ok((appended, checkpoint)) => {
                            durable.push_back(appended);
                            checkpoint
                        }
                        Err(e) => {
                            outcome = Err(e);
                            break;
                        }
                    };
                    // A checkpoint is written once the output it goes
                    // with is in the log.
                    if let Some(checkpoint) = checkpoint {
                        outcome = land_all(&mut durable, job, outcome).await;
                        if outcome.is_err() {
                            break;
                        }
                        if let Err(e) = checkpoints.write(log, checkpoint).await {
                            outcome = Err(e);
                            break;
                        }
                    }
                }
            }
        }
        land_all(&mut durable, job, outcome).await
    };
    let mut checkpoint_due = Instant::now() + checkpoint_interval;
    let mut last_checkpoint: Option<Manifest> = None;
    let computing = async {
        let appends = appends;
        loop {
            let (mut step, waiting, partitions) =
                compute_step(log, view, &mut dataflow, &changes, &mut cursor, &appends).await?;
            if dataflow.stateful() && !cursor.replaying() && Instant::now() >= checkpoint_due {
                checkpoint_due = Instant::now() + checkpoint_interval;
                let manifest = Manifest {
                    input_offsets: cursor.offsets.clone(),
                    partition_watermarks: cursor.watermarks.partitions().clone(),
                    watermark: cursor.watermarks.current(),
                };
                // Nothing read since the last one: nothing to keep.
                if last_checkpoint.as_ref() != Some(&manifest) {
                    let state = dataflow.snapshot()?;
                    last_checkpoint = Some(manifest.clone());
                    step.checkpoint = Some(Checkpoint {
                        manifest,
                        state: state.as_ref().map(checkpoint::encode_state).transpose()?,
                    });
                }
            }
            if appends.send(step).await.is_err() {
                return Ok(());
            }
            if waiting.len() == partitions as usize {
                wait_for_input(waiting).await;
            }
        }
    };
    let (computed, appended) = tokio::join!(computing, appending);
    computed.and(appended)
}

/// What one step of a job hands to be appended.
#[derive(Debug)]
struct Step {
    /// Record batches of changes, if the step made any, being encoded.
    blob: Option<Encoding>,
    /// What the output covers once the blob is in the log.
    covered: Progress,
    /// Input rows the step read.
    rows_in: usize,
    /// Rows it wrote.
    rows_out: usize,
    /// Rows dropped as late since the job started.
    late_rows: u64,
    /// A checkpoint to write once the blob is in the log.
    checkpoint: Option<Checkpoint>,
    /// Late rows for the `LATE DATA TO` stream, appended before the blob.
    late: Option<Bytes>,
}

/// What a step's output covers, published once it is durable.
#[derive(Debug)]
struct StepDone {
    covered: Progress,
    rows_in: usize,
    rows_out: usize,
    late_rows: u64,
}

impl StepDone {
    fn publish(self, job: &JobState) {
        job.publish(&self.covered);
        job.count(self.rows_in, self.rows_out, self.late_rows);
    }
}

/// Waits for every append still on its way to disk, publishing each
/// step, in order, while `outcome` is still a success; the first error.
async fn land_all<F>(
    durable: &mut FuturesOrdered<F>,
    job: &JobState,
    mut outcome: Result<()>,
) -> Result<()>
where
    F: std::future::Future<Output = Result<StepDone>>,
{
    while let Some(appended) = durable.next().await {
        if outcome.is_ok() {
            outcome = appended.map(|done| done.publish(job));
        }
    }
    outcome
}

/// Hands a step's output to the log once its blob is encoded: its late
/// rows first, made durable (a crash between the two appends gives them
/// again after the restart: at least once, never lost), then its blob,
/// queued behind the appends before it. Returns what resolves once the
/// blob is durable, and the step's checkpoint, if it has one.
async fn hand_over(
    log: &Log,
    view: &str,
    late_data_to: Option<&str>,
    step: Step,
) -> Result<(
    impl std::future::Future<Output = Result<StepDone>> + use<>,
    Option<Checkpoint>,
)> {
    // A blob that fails to encode fails the step before anything of it
    // is appended.
    let blob = match step.blob {
        Some(encoding) => Some(encoding.bytes().await?),
        None => None,
    };
    if let (Some(late), Some(stream)) = (step.late, late_data_to) {
        log.append(stream, 0, late).await?;
    }
    let submitted = match blob {
        Some(blob) => Some(log.submit_built(view, 0, blob).await?),
        None => None,
    };
    let done = StepDone {
        covered: step.covered,
        rows_in: step.rows_in,
        rows_out: step.rows_out,
        late_rows: step.late_rows,
    };
    let durable = async move {
        if let Some(submitted) = submitted {
            submitted.durable().await?;
        }
        Ok(done)
    };
    Ok((durable, step.checkpoint))
}

/// Where a job is in its input.
#[derive(Debug)]
struct Cursor {
    /// The next offset to read of each input partition.
    offsets: InputOffsets,
    /// Up to where input is replayed (its output is in the log already).
    replay_end: InputOffsets,
    /// Event time.
    watermarks: Watermarks,
    /// Rows the replay dropped for windows closed before the restart: they
    /// were counted (if late) by the run that closed them.
    replayed_late_rows: u64,
    /// Per input partition, the read of what follows the records last
    /// read, under way.
    read_ahead: HashMap<u32, ReadAhead>,
}

impl Cursor {
    /// Whether some input partition is still being replayed.
    fn replaying(&self) -> bool {
        self.replay_end
            .iter()
            .any(|(p, &to)| self.offsets.get(p).copied().unwrap_or(0) < to)
    }

    /// What the output covers: the input the job has read, and at least
    /// what the output held when the job started (a replay reads that
    /// again), with the watermark.
    fn covered(&self) -> Progress {
        let mut offsets = self.offsets.clone();
        for (&partition, &end) in &self.replay_end {
            let offset = offsets.entry(partition).or_insert(end);
            *offset = (*offset).max(end);
        }
        Progress {
            offsets,
            watermark: self.watermarks.current(),
        }
    }
}

/// One pass over the input's partitions: what each holds beyond
/// `offsets` (up to [`READ_BYTES`] each) goes through the dataflow, and
/// the changes come back as one step to append (larger ones are handed
/// to `appends` on the way). Input below `replay_end` changes the
/// dataflow's state but its output is dropped: the log holds it already.
/// Returns the step, the high watermark watches of the partitions with
/// nothing new, and how many partitions there are.
async fn compute_step(
    log: &Log,
    view: &StreamTable,
    dataflow: &mut StreamingPlan,
    changes: &Arc<ChangeEncoder>,
    cursor: &mut Cursor,
    appends: &mpsc::Sender<Step>,
) -> Result<(Step, Vec<watch::Receiver<i64>>, u32)> {
    let mut waiting = Vec::new();
    let mut caught_up = Vec::new();
    let mut blob = PendingOutput::default();
    let mut late = BytesMut::new();
    let (mut rows_in, mut rows_out) = (0, 0);
    let source = dataflow.source.clone();
    let partitions = log.stream(&source)?.config.partitions;
    // While any partition is still being replayed, none is read past its
    // replay end: output made from state that lacks the rest of the replay
    // would be wrong (a group's row missing another partition's rows, a
    // window closed early).
    let replaying = cursor.replaying();
    for p in 0..partitions {
        let partition = log.partition(&source, p)?;
        let mut high_watermark = partition.watch_high_watermark();
        let end = *high_watermark.borrow_and_update();
        let log_start = partition.log_start_offset();
        let next = match cursor.offsets.get(&p).copied() {
            // Retention deleted input the job had not read yet.
            Some(recorded) if recorded < log_start => {
                warn_input_deleted(view.name(), &source, p, recorded, log_start);
                log_start
            }
            recorded => recorded.unwrap_or(0).max(log_start),
        };
        let limit = if replaying {
            cursor.replay_end.get(&p).copied().unwrap_or(0).min(end)
        } else {
            end
        };
        if next >= limit {
            if replaying {
                // Replayed (there is nothing below its replay end left).
                let done = cursor.replay_end.get(&p).copied().unwrap_or(0).max(next);
                cursor.offsets.insert(p, done);
            } else {
                waiting.push(high_watermark);
                caught_up.push(p);
            }
            continue;
        }
        let mut ahead = cursor.read_ahead.remove(&p);
        let read = match read_at(&mut ahead, &partition, next, READ_BYTES).await {
            Ok(read) => read,
            // Retention moved the input's start past the job.
            Err(ExecError::Storage(tributary_storage::Error::OffsetOutOfRange {
                log_start_offset,
                ..
            })) => {
                warn_input_deleted(view.name(), &source, p, next, log_start_offset);
                cursor.offsets.insert(p, log_start_offset);
                continue;
            }
            Err(e) => return Err(e),
        };
        let batches = read
            .batches
            .into_iter()
            .map(BatchRecords::new)
            .collect::<tributary_storage::Result<Vec<_>>>()?;
        let (records, last) = records_in(&batches, next, limit)?;
        // What follows is read while these records are worked on.
        if last + 1 < end {
            let ahead = ReadAhead::start(&partition, last + 1, READ_BYTES).await;
            cursor.read_ahead.insert(p, ahead);
        }
        let origin = Origin {
            stream: &source,
            partition: p,
        };
        let replayed = cursor
            .replay_end
            .get(&p)
            .map_or(0, |&to| records.partition_point(|r| r.offset < to));
        let late_before = dataflow.late_rows();
        let chunk_rows = dataflow.chunk_rows();
        for chunk in records[..replayed].chunks(chunk_rows) {
            process(dataflow, origin, chunk, &mut cursor.watermarks)?;
            if let Some(watermark) = cursor.watermarks.advance(partitions, &[]) {
                dataflow.advance(watermark)?;
            }
            // Rows for windows closed before the restart, not late ones.
            dataflow.take_late();
        }
        cursor.replayed_late_rows += dataflow.late_rows() - late_before;
        for chunk in records[replayed..].chunks(chunk_rows) {
            let output = process(dataflow, origin, chunk, &mut cursor.watermarks)?;
            rows_in += chunk.len();
            if let Some(chunk_last) = chunk.last() {
                cursor.offsets.insert(p, chunk_last.offset + 1);
            }
            // The appends run in this task (see `run`): yielding lets an
            // acknowledged append be published and the next one handed to
            // the log while this step goes on computing.
            tokio::task::yield_now().await;
            let late_rows = dataflow.take_late();
            if !late_rows.is_empty() {
                late.extend_from_slice(&encode_late(&late_rows, cursor.watermarks.current())?);
            }
            let closed = match cursor.watermarks.advance(partitions, &[]) {
                Some(watermark) => dataflow.advance(watermark)?,
                None => None,
            };
            for output in std::iter::once(output).chain(closed) {
                rows_out += output.rows.num_rows();
                if output.rows.num_rows() > 0 {
                    blob.push(output, cursor.covered());
                }
            }
        }
        // Past what the read returned, records or not (control batches).
        cursor.offsets.insert(p, (last + 1).min(limit).max(next));
        if blob.bytes() >= APPEND_BYTES {
            let step = Step {
                blob: blob.encode(changes),
                covered: cursor.covered(),
                rows_in: std::mem::take(&mut rows_in),
                rows_out: std::mem::take(&mut rows_out),
                late_rows: dataflow.late_rows() - cursor.replayed_late_rows,
                checkpoint: None,
                late: (!late.is_empty()).then(|| late.split().freeze()),
            };
            if appends.send(step).await.is_err() {
                break;
            }
        }
    }
    // Partitions with nothing new may have gone idle: they no longer hold
    // the watermark back.
    if let Some(watermark) = cursor.watermarks.advance(partitions, &caught_up)
        && let Some(closed) = dataflow.advance(watermark)?
    {
        rows_out += closed.rows.num_rows();
        if closed.rows.num_rows() > 0 {
            blob.push(closed, cursor.covered());
        }
    }
    let step = Step {
        blob: blob.encode(changes),
        covered: cursor.covered(),
        rows_in,
        rows_out,
        late_rows: dataflow.late_rows() - cursor.replayed_late_rows,
        checkpoint: None,
        late: (!late.is_empty()).then(|| late.freeze()),
    };
    Ok((step, waiting, partitions))
}

/// The data records of `batches` at offsets `from..to`, and the last
/// offset the batches hold (`from - 1` if none).
pub(crate) fn records_in(
    batches: &[BatchRecords],
    from: i64,
    to: i64,
) -> Result<(Vec<tributary_storage::records::RecordRef<'_>>, i64)> {
    let mut records = Vec::new();
    let mut last = from - 1;
    for batch in batches {
        last = last.max(batch.header().last_offset());
        if batch.header().is_control() {
            continue;
        }
        for record in batch.iter() {
            let record = record?;
            if record.offset >= from && record.offset < to {
                records.push(record);
            }
        }
    }
    Ok((records, last))
}

/// Late rows as one record batch of JSON objects: the rows' columns, the
/// reason, and the watermark they were late for.
fn encode_late(rows: &[RecordBatch], watermark: Option<i64>) -> Result<Bytes> {
    let reason = "late: its window had closed (window end at or before the watermark)";
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut records = Vec::new();
    for batch in rows {
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("reason", DataType::Utf8, false));
        fields.push(Field::new(
            "watermark",
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
            true,
        ));
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(StringArray::from(vec![reason; batch.num_rows()])));
        columns.push(Arc::new(
            datafusion::arrow::array::TimestampMicrosecondArray::from(vec![
                watermark;
                batch.num_rows()
            ]),
        ));
        let with_reason = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        for value in format::encode_json(&with_reason)? {
            records.push(NewRecord {
                key: None,
                value: Some(value),
                headers: Vec::new(),
                timestamp_ms: now_ms,
            });
        }
    }
    Ok(encode_batch(&records, Compression::None)?)
}

/// Logs that retention deleted input records `from..to` of `partition`
/// before the view's job read them: the view never sees them.
fn warn_input_deleted(view: &str, input: &str, partition: u32, from: i64, to: i64) {
    warn!(
        view,
        input,
        partition,
        from,
        to,
        "input records were deleted by retention before the view read them"
    );
}

/// Waits until the view `view` (and each view it reads, first) has caught
/// up with what its input held now, or gives up after
/// [`registry::CATCH_UP_WAIT`] and lets the query read what the view holds.
/// A view whose job fails while it is behind is an error: what it holds
/// is stale, and waiting would not change that.
pub(crate) async fn catch_up(log: &Log, jobs: &JobRegistry, view: &str) -> Result<()> {
    let record = log.stream(view)?;
    let definition = StreamDefinition::from_json(view, record.config.definition.as_ref())?;
    let Some(definition) = definition.view else {
        return Ok(());
    };
    for input in &definition.inputs {
        Box::pin(catch_up(log, jobs, input)).await?;
        let partitions = log.stream(input)?.config.partitions;
        let mut targets = InputOffsets::new();
        for p in 0..partitions {
            targets.insert(p, log.partition(input, p)?.high_watermark());
        }
        match jobs.job(view).wait_for(&targets).await {
            CatchUp::CaughtUp => {}
            CatchUp::TimedOut => warn!(
                view,
                input, "the view has not caught up with its input; reading what it holds"
            ),
            CatchUp::Failing(error) => {
                let object = match &definition.sink {
                    Some(sink) => format!("sink \"{sink}\" (into stream \"{view}\")"),
                    None => format!("materialized view \"{view}\""),
                };
                return Err(ExecError::ViewFailing {
                    view: object,
                    error,
                });
            }
        }
    }
    Ok(())
}

/// Decodes a chunk of input records, notes the watermark its rows give,
/// and runs it through the operators.
pub(crate) fn process(
    dataflow: &mut StreamingPlan,
    origin: Origin<'_>,
    records: &[tributary_storage::records::RecordRef<'_>],
    watermarks: &mut Watermarks,
) -> Result<Changes> {
    let rows = format::decode(
        &dataflow.source_definition,
        &dataflow.source_columns,
        origin,
        records,
    )?;
    if let Some(probe) = &dataflow.watermark {
        watermarks.observe(origin.partition, probe.highest(&rows)?);
    }
    let mut changes = if dataflow.source_keyed {
        keyed_changes(rows, records)?
    } else {
        Changes::added(rows)
    };
    for operator in &mut dataflow.operators {
        changes = operator.process(changes)?;
    }
    Ok(changes)
}

/// The changes a view with GROUP BY recorded, as they were: each row with
/// its `op` and its record key (the group, as JSON), which the rows keep
/// through the operators and the output writes again unchanged.
fn keyed_changes(
    rows: RecordBatch,
    records: &[tributary_storage::records::RecordRef<'_>],
) -> Result<Changes> {
    if rows.num_rows() != records.len() {
        return Err(ExecError::Internal(format!(
            "{} changes decoded from {} records",
            rows.num_rows(),
            records.len()
        )));
    }
    let retract: BooleanArray = records
        .iter()
        .map(|r| Some(is_retraction(r.value)))
        .collect();
    let keys: BinaryArray = records
        .iter()
        .map(|r| Some(r.key.unwrap_or_default()))
        .collect();
    let keys = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            RECORD_KEY_COLUMN,
            DataType::Binary,
            false,
        )])),
        vec![Arc::new(keys)],
    )?;
    Ok(Changes {
        rows,
        retract: Some(retract),
        keys: Some(keys),
    })
}

/// Waits until an input partition grows, or [`IDLE_WAIT`] passes.
pub(crate) async fn wait_for_input(mut waiting: Vec<watch::Receiver<i64>>) {
    let changes = waiting
        .iter_mut()
        .map(|rx| Box::pin(rx.changed()))
        .collect::<Vec<_>>();
    if changes.is_empty() {
        tokio::time::sleep(IDLE_WAIT).await;
        return;
    }
    let _ = tokio::time::timeout(IDLE_WAIT, futures::future::select_all(changes)).await;
}
