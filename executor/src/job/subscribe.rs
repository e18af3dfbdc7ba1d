//! `SUBSCRIBE`: a result that never ends, its rows sent as changes happen,
//! each with `op` first (`+` added, `-` taken back). `SUBSCRIBE TO view`
//! gives the view's changes from its first (its current rows, then what
//! changes); `SUBSCRIBE TO stream` the rows appended from now on;
//! `SUBSCRIBE (query)` runs the query as a job whose changes go to the
//! client instead of the log: its answer over the history, then its
//! changes. The feed stops when the client cancels or goes away.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use tokio::sync::mpsc;
use tributary_planner::{StreamDefinition, Subscribe};
use tributary_storage::Log;
use tributary_storage::records::BatchRecords;

use crate::error::{ExecError, Result};
use crate::format::{self, Origin, ScanColumns, StreamSchemas};
use crate::job::lower::{StreamingPlan, lower_view};
use crate::job::operator::Changes;
use crate::job::watermark::Watermarks;
use crate::job::{
    CHUNK_ROWS, OP_COLUMN, READ_BYTES, is_retraction, plan_query, process, records_in,
    wait_for_input,
};

/// Batches of changes waiting for the client.
const BATCHES_IN_FLIGHT: usize = 4;

/// How a feed turns the records it reads into changes.
#[derive(Debug)]
enum Rows {
    /// Through a query's dataflow.
    Query(Box<StreamingPlan>),
    /// As they are, each record a row; `keyed` records (a GROUP BY view's)
    /// say themselves whether they take a row back.
    Records {
        definition: Box<StreamDefinition>,
        columns: ScanColumns,
        keyed: bool,
    },
}

/// One subscription: the stream it reads and how.
#[derive(Debug)]
pub(crate) struct Feed {
    log: Arc<Log>,
    stream: String,
    /// Start at the stream's end rather than its start.
    from_now: bool,
    schema: SchemaRef,
    /// Taken by the one execution of the feed.
    rows: Mutex<Option<Rows>>,
}

impl Feed {
    /// A feed for `subscribe`, checked and planned.
    pub(crate) async fn new(
        log: Arc<Log>,
        state: &SessionState,
        subscribe: &Subscribe,
    ) -> Result<Self> {
        let (stream, from_now, rows, columns) = match subscribe {
            Subscribe::Query(query) => {
                let plan = plan_query(&log, state, query).await?;
                let dataflow = lower_view(state, &log, &plan, false, false)?;
                let fields = dataflow.output.fields().clone();
                (
                    dataflow.source.clone(),
                    false,
                    Rows::Query(Box::new(dataflow)),
                    fields,
                )
            }
            Subscribe::Object(name) => {
                let record = log.stream(name)?;
                let definition =
                    StreamDefinition::from_json(name, record.config.definition.as_ref())?;
                let schemas = StreamSchemas::new(&definition)?;
                let columns = ScanColumns::values(&definition, &schemas)?;
                let keyed = definition.view.as_ref().is_some_and(|v| v.keyed);
                let fields = columns.schema.fields().clone();
                (
                    name.clone(),
                    // A view's rows first; a stream's (a sink's too) from now.
                    !definition.is_view(),
                    Rows::Records {
                        definition: Box::new(definition),
                        columns,
                        keyed,
                    },
                    fields,
                )
            }
        };
        let mut fields = vec![Arc::new(Field::new(OP_COLUMN, DataType::Utf8, false))];
        fields.extend(columns.iter().cloned());
        Ok(Self {
            log,
            stream,
            from_now,
            schema: Arc::new(Schema::new(fields)),
            rows: Mutex::new(Some(rows)),
        })
    }
}

impl PartitionStream for Feed {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (sender, receiver) = mpsc::channel(BATCHES_IN_FLIGHT);
        let rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let (log, stream, from_now, schema) = (
            self.log.clone(),
            self.stream.clone(),
            self.from_now,
            self.schema.clone(),
        );
        tokio::spawn(async move {
            let Some(rows) = rows else {
                let _ = sender
                    .send(Err(ExecError::Internal("a subscription runs once".into())))
                    .await;
                return;
            };
            if let Err(e) = follow(&log, &stream, from_now, rows, &schema, &sender).await {
                let _ = sender.send(Err(e)).await;
            }
        });
        let batches = futures::stream::unfold(receiver, |mut receiver| async move {
            let next = receiver.recv().await?;
            Some((next.map_err(DataFusionError::from), receiver))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

/// Reads `stream` from its start (or end) for ever, sending each chunk's
/// changes, until the receiver is gone.
async fn follow(
    log: &Log,
    stream: &str,
    from_now: bool,
    mut rows: Rows,
    schema: &SchemaRef,
    sender: &mpsc::Sender<Result<RecordBatch>>,
) -> Result<()> {
    let mut offsets: BTreeMap<u32, i64> = BTreeMap::new();
    if from_now {
        for p in 0..log.stream(stream)?.config.partitions {
            offsets.insert(p, log.partition(stream, p)?.high_watermark());
        }
    }
    let mut watermarks = Watermarks::new(None);
    loop {
        if sender.is_closed() {
            return Ok(());
        }
        let partitions = log.stream(stream)?.config.partitions;
        let mut waiting = Vec::new();
        for p in 0..partitions {
            let partition = log.partition(stream, p)?;
            let mut high_watermark = partition.watch_high_watermark();
            let end = *high_watermark.borrow_and_update();
            let next = offsets
                .get(&p)
                .copied()
                .unwrap_or(0)
                .max(partition.log_start_offset());
            if next >= end {
                waiting.push(high_watermark);
                continue;
            }
            let batches = partition
                .read(next, READ_BYTES)
                .await?
                .batches
                .into_iter()
                .map(BatchRecords::new)
                .collect::<tributary_storage::Result<Vec<_>>>()?;
            let (records, last) = records_in(&batches, next, end)?;
            let origin = Origin {
                stream,
                partition: p,
            };
            let chunk_rows = match &rows {
                Rows::Query(dataflow) => dataflow.chunk_rows(),
                Rows::Records { .. } => CHUNK_ROWS,
            };
            for chunk in records.chunks(chunk_rows) {
                let changes = match &mut rows {
                    Rows::Query(dataflow) => process(dataflow, origin, chunk, &mut watermarks)?,
                    Rows::Records {
                        definition,
                        columns,
                        keyed,
                    } => {
                        let values = format::decode(definition, columns, origin, chunk)?;
                        let retract = keyed
                            .then(|| chunk.iter().map(|r| Some(is_retraction(r.value))).collect());
                        Changes {
                            rows: values,
                            retract,
                            keys: None,
                        }
                    }
                };
                if changes.rows.num_rows() > 0
                    && sender.send(Ok(with_op(schema, &changes)?)).await.is_err()
                {
                    return Ok(());
                }
            }
            offsets.insert(p, (last + 1).min(end).max(next));
        }
        if waiting.len() == partitions as usize {
            wait_for_input(waiting).await;
        }
    }
}

/// The changes as rows of `schema`: `op`, then the columns.
fn with_op(schema: &SchemaRef, changes: &Changes) -> Result<RecordBatch> {
    let taken_back = |i: usize| changes.retract.as_ref().is_some_and(|r| r.value(i));
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        (0..changes.rows.num_rows()).map(|i| if taken_back(i) { "-" } else { "+" }),
    ))];
    columns.extend(changes.rows.columns().iter().cloned());
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
