//! A stream as a DataFusion table: scans read its history up to the high
//! watermark at the moment the scan starts, one DataFusion partition per
//! stream partition; inserts append through the log.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::{StreamExt, TryStreamExt};
use tributary_planner::StreamDefinition;
use tributary_storage::metadata::StreamRecord;
use tributary_storage::records::BatchRecords;
use tributary_storage::{Log, Partition, ReadOutcome};

use crate::error::{ExecError, Result};
use crate::format::{self, Origin, ScanColumns, StreamSchemas};
use crate::job::registry::JobRegistry;
use crate::read_ahead::{ReadAhead, read_at};
use crate::scan_bounds::{ScanBounds, is_prunable};
use crate::stream_sink::StreamSink;
use crate::view_fold::ViewFolds;

/// Bytes asked of the log per read while scanning.
const SCAN_READ_BYTES: usize = 4 << 20;

/// A stream, as a table.
#[derive(Debug)]
pub struct StreamTable {
    log: Arc<Log>,
    name: String,
    /// The stream's incarnation.
    stream_id: i64,
    partitions: u32,
    definition: Arc<StreamDefinition>,
    schemas: StreamSchemas,
    round_robin: Arc<AtomicU32>,
    jobs: Arc<JobRegistry>,
    folds: Arc<ViewFolds>,
}

impl StreamTable {
    /// The table for a registered stream; a scan of a view first waits for
    /// its job in `jobs` to catch up, and a keyed view's rows are folded
    /// on from where the last scan left them in `folds`.
    pub(crate) fn new(
        log: Arc<Log>,
        record: &StreamRecord,
        round_robin: Arc<AtomicU32>,
        jobs: Arc<JobRegistry>,
        folds: Arc<ViewFolds>,
    ) -> Result<Self> {
        let definition =
            StreamDefinition::from_json(&record.name, record.config.definition.as_ref())?;
        Ok(Self {
            log,
            name: record.name.clone(),
            stream_id: record.stream_id,
            partitions: record.config.partitions,
            schemas: StreamSchemas::new(&definition)?,
            definition: Arc::new(definition),
            round_robin,
            jobs,
            folds,
        })
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many partitions the stream has.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The stream's SQL definition.
    pub fn definition(&self) -> &StreamDefinition {
        &self.definition
    }

    /// The stream's table and value schemas.
    pub fn schemas(&self) -> &StreamSchemas {
        &self.schemas
    }

    /// A sink that appends rows of the value columns to the stream.
    pub fn sink(&self) -> StreamSink {
        StreamSink::new(
            self.log.clone(),
            self.name.clone(),
            self.partitions,
            self.definition.clone(),
            self.schemas.clone(),
            self.round_robin.clone(),
        )
    }
}

#[async_trait]
impl TableProvider for StreamTable {
    fn schema(&self) -> SchemaRef {
        self.schemas.table.clone()
    }

    /// A materialized view is a view to catalog readers (psql's `\d` and
    /// `\dv`, `information_schema.tables`); everything else is a table.
    fn table_type(&self) -> TableType {
        if self.definition.is_view() {
            TableType::View
        } else {
            TableType::Base
        }
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if is_prunable(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if self.definition.view.is_some() {
            crate::job::catch_up(&self.log, &self.jobs, &self.name).await?;
        }
        let bounds = ScanBounds::from_filters(filters);
        let columns = ScanColumns::new(
            &self.definition,
            &self.schemas,
            projection.map(Vec::as_slice),
        )?;
        let partitions: Vec<Arc<dyn PartitionStream>> = (0..self.partitions)
            .filter(|p| bounds.includes_partition(*p))
            .map(|partition| {
                Arc::new(PartitionScan {
                    log: self.log.clone(),
                    stream: self.name.clone(),
                    stream_id: self.stream_id,
                    folds: self.folds.clone(),
                    partition,
                    definition: self.definition.clone(),
                    columns: columns.clone(),
                    offset_start: bounds.offset_start,
                    offset_end: bounds.offset_end,
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        // The partitions produce the projected columns themselves.
        let exec = StreamingTableExec::try_new(
            columns.schema.clone(),
            partitions,
            None,
            Vec::new(),
            false,
            limit,
        )?;
        Ok(Arc::new(exec))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        crate::background::check_writable(&self.name, &self.definition)?;
        if insert_op != InsertOp::Append {
            return Err(ExecError::NotSupported(format!(
                "{insert_op} on a stream (streams are append-only)"
            ))
            .into());
        }
        Ok(Arc::new(DataSinkExec::new(
            input,
            Arc::new(self.sink()),
            None,
        )))
    }
}

/// One partition's part of a scan.
#[derive(Debug)]
struct PartitionScan {
    log: Arc<Log>,
    stream: String,
    stream_id: i64,
    folds: Arc<ViewFolds>,
    partition: u32,
    definition: Arc<StreamDefinition>,
    columns: ScanColumns,
    offset_start: i64,
    offset_end: Option<i64>,
}

impl PartitionStream for PartitionScan {
    fn schema(&self) -> &SchemaRef {
        &self.columns.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        // A keyed view's current rows are folded from all its changes:
        // bounds on `_offset` are applied to the folded rows, above.
        let keyed = self.definition.view.as_ref().is_some_and(|v| v.keyed);
        let state = ScanState {
            log: self.log.clone(),
            stream: self.stream.clone(),
            stream_id: self.stream_id,
            folds: self.folds.clone(),
            partition: self.partition,
            definition: self.definition.clone(),
            columns: self.columns.clone(),
            next: if keyed { 0 } else { self.offset_start },
            end: if keyed { None } else { self.offset_end },
            keyed,
            folded: false,
            started: false,
            read_ahead: None,
        };
        let batches = futures::stream::try_unfold(state, |mut state| async move {
            let batch = state.next_batch().await?;
            Ok::<_, ExecError>(batch.map(|b| (b, state)))
        })
        .map_err(datafusion::error::DataFusionError::from)
        .boxed();
        Box::pin(RecordBatchStreamAdapter::new(
            self.columns.schema.clone(),
            batches,
        ))
    }
}

struct ScanState {
    log: Arc<Log>,
    stream: String,
    stream_id: i64,
    folds: Arc<ViewFolds>,
    partition: u32,
    definition: Arc<StreamDefinition>,
    columns: ScanColumns,
    next: i64,
    end: Option<i64>,
    /// The stream holds keyed changes (a view with GROUP BY): the scan
    /// gives the last row of each key, unless that row was taken back.
    keyed: bool,
    /// The keyed stream's rows have been given.
    folded: bool,
    started: bool,
    /// The read of the stretch after the one being decoded, under way.
    read_ahead: Option<ReadAhead>,
}

impl ScanState {
    /// Reads and decodes the next stretch of records, or `None` at the end.
    /// The read of the stretch after it starts before this one is decoded,
    /// so reading and decoding overlap.
    async fn next_batch(&mut self) -> Result<Option<datafusion::arrow::array::RecordBatch>> {
        let partition = self.log.partition(&self.stream, self.partition)?;
        if !self.started {
            // History up to now: the high watermark when the scan starts.
            let high_watermark = partition.high_watermark();
            self.end = Some(self.end.map_or(high_watermark, |e| e.min(high_watermark)));
            self.next = self.next.max(partition.log_start_offset());
            self.started = true;
        }
        let end = self.end.unwrap_or(0);
        if self.keyed {
            return self.folded_batch(&partition, end).await;
        }
        loop {
            if self.next >= end {
                return Ok(None);
            }
            let read = match self.read(&partition).await {
                Ok(read) => read,
                // Retention moved the log start past us: continue from it.
                Err(ExecError::Storage(tributary_storage::Error::OffsetOutOfRange {
                    log_start_offset,
                    ..
                })) if log_start_offset > self.next => {
                    self.next = log_start_offset;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if read.batches.is_empty() {
                return Ok(None);
            }
            let batches = read
                .batches
                .into_iter()
                .map(BatchRecords::new)
                .collect::<tributary_storage::Result<Vec<_>>>()?;
            let from = self.next;
            let last = batches
                .iter()
                .map(|b| b.header().last_offset())
                .fold(from - 1, i64::max);
            self.next = last + 1;
            if self.next < end {
                self.read_ahead =
                    Some(ReadAhead::start(&partition, self.next, SCAN_READ_BYTES).await);
            }
            let mut records = Vec::new();
            for batch in batches.iter().filter(|b| !b.header().is_control()) {
                for record in batch.iter() {
                    let record = record?;
                    if record.offset >= from && record.offset < end {
                        records.push(record);
                    }
                }
            }
            if records.is_empty() {
                continue;
            }
            let origin = Origin {
                stream: &self.stream,
                partition: self.partition,
            };
            return format::decode(&self.definition, &self.columns, origin, &records).map(Some);
        }
    }

    /// The rows of a keyed stream as of `end` or later, folded: the last
    /// change of each key, unless it takes the row back. One batch, then
    /// `None`.
    async fn folded_batch(
        &mut self,
        partition: &Arc<Partition>,
        end: i64,
    ) -> Result<Option<datafusion::arrow::array::RecordBatch>> {
        if self.folded {
            return Ok(None);
        }
        self.folded = true;
        let log = &self.log;
        let fold = self.folds.partition(self.stream_id, self.partition, || {
            log.streams().into_iter().map(|s| s.stream_id).collect()
        });
        let mut fold = fold.lock().await;
        let changes = fold
            .advance(self.log.object_store(), partition, end)
            .await?;
        metrics::counter!("tributary_view_changes_folded_total", "view" => self.stream.clone())
            .increment(changes);
        let rows = fold.records();
        if rows.is_empty() {
            return Ok(None);
        }
        let origin = Origin {
            stream: &self.stream,
            partition: self.partition,
        };
        format::decode(&self.definition, &self.columns, origin, &rows).map(Some)
    }

    /// The stretch at `next`: the read started ahead for it, or a new one.
    async fn read(&mut self, partition: &Arc<Partition>) -> Result<ReadOutcome> {
        read_at(&mut self.read_ahead, partition, self.next, SCAN_READ_BYTES).await
    }
}
