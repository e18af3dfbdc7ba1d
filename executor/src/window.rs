//! Window table functions: `TUMBLE(stream, time_column, size)` and
//! `HOP(stream, time_column, slide, size)` give the stream's rows with
//! `window_start` and `window_end` added, as Flink and RisingWave do. A
//! tumbling window holds each row once; a hopping window of size `size`
//! every `slide` holds it `size / slide` times, once per window. Rows with
//! a NULL time are in no window.
//!
//! As a table (a batch SELECT) the windows are added to the stream's scan;
//! in a materialized view the job lowers the function into its source plus
//! [`assign_windows`] on each chunk, so both give the same rows.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, AsArray, RecordBatch, RecordBatchOptions, TimestampMicrosecondArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::ScalarValue;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::StreamExt;

use crate::catalog::StreamSchema;
use crate::error::{ExecError, Result};
use crate::stream_table::StreamTable;

/// The column holding the start of a row's window (inclusive).
pub const WINDOW_START: &str = "window_start";
/// The column holding the end of a row's window (exclusive).
pub const WINDOW_END: &str = "window_end";

/// How rows are put into windows, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Windows of `size` one after another.
    Tumble {
        /// The window length.
        size: i64,
    },
    /// Windows of `size` starting every `slide` (a multiple of it).
    Hop {
        /// How far apart windows start.
        slide: i64,
        /// The window length.
        size: i64,
    },
}

/// The most windows a row may be in: `HOP(..., slide, size)` with
/// `size / slide` above it is refused, as each row is copied once per
/// window it is in.
pub const MAX_WINDOWS_PER_ROW: i64 = 10_000;

/// The longest window or slide: 3,652,425 days, 10,000 years, so window
/// bounds computed from any storable time stay far inside an `i64` of
/// microseconds.
const MAX_WINDOW_MICROS: i64 = 3_652_425 * 86_400_000_000;

/// About how many rows a batch of windowed rows holds at most: input
/// batches are cut so that each row's copies for its windows stay within
/// it.
const WINDOWED_BATCH_ROWS: usize = 65_536;

impl WindowKind {
    /// The window length in microseconds.
    pub fn size(&self) -> i64 {
        match self {
            Self::Tumble { size } | Self::Hop { size, .. } => *size,
        }
    }

    /// How many windows each row is in.
    pub fn windows_per_row(&self) -> usize {
        match self {
            Self::Tumble { .. } => 1,
            Self::Hop { slide, size } => (size / slide) as usize,
        }
    }

    /// How many input rows to put into windows at once, so the result
    /// holds about [`WINDOWED_BATCH_ROWS`] rows or fewer (at least one).
    pub(crate) fn input_rows_per_batch(&self) -> usize {
        (WINDOWED_BATCH_ROWS / self.windows_per_row()).max(1)
    }
}

/// A window function applied to a stream.
#[derive(Debug, Clone)]
pub struct WindowSpec {
    /// The kind and sizes.
    pub kind: WindowKind,
    /// The stream's time column.
    pub time_column: String,
}

/// Which columns of a window table a scan gives, and how they come from
/// the stream's columns plus the two window columns.
#[derive(Debug, Clone)]
pub(crate) struct WindowColumns {
    /// The stream's columns to read: those asked for and the time column.
    pub(crate) stream_projection: Vec<usize>,
    /// Where the time column is among them.
    pub(crate) time_position: usize,
    /// For each column asked for, its place among the stream's projected
    /// columns followed by `window_start` and `window_end`.
    pub(crate) output_positions: Vec<usize>,
}

impl WindowColumns {
    /// The columns for `projection` (indices into the window table's
    /// schema: the stream's `stream_width` columns, then the two windows').
    pub(crate) fn new(projection: &[usize], stream_width: usize, time_index: usize) -> Self {
        let mut stream_projection: Vec<usize> = projection
            .iter()
            .copied()
            .filter(|&i| i < stream_width)
            .chain([time_index])
            .collect();
        stream_projection.sort_unstable();
        stream_projection.dedup();
        let position = |i: usize| stream_projection.binary_search(&i).unwrap_or_default();
        let output_positions = projection
            .iter()
            .map(|&i| {
                if i < stream_width {
                    position(i)
                } else {
                    stream_projection.len() + (i - stream_width)
                }
            })
            .collect();
        Self {
            time_position: position(time_index),
            stream_projection,
            output_positions,
        }
    }
}

/// Adds each row's windows to `batch` (whose time column is at
/// `time_position`), then keeps the columns at `output_positions` of the
/// result, whose schema is `output`.
pub(crate) fn assign_windows(
    batch: &RecordBatch,
    kind: WindowKind,
    columns: &WindowColumns,
    output: &SchemaRef,
) -> Result<RecordBatch> {
    let time = cast(
        batch.column(columns.time_position),
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )?;
    let time = time.as_primitive::<TimestampMicrosecondType>();
    let (slide, size) = match kind {
        WindowKind::Tumble { size } => (size, size),
        WindowKind::Hop { slide, size } => (slide, size),
    };
    let per_row = kind.windows_per_row();
    let mut rows = Vec::with_capacity(batch.num_rows() * per_row);
    let mut starts = Vec::with_capacity(batch.num_rows() * per_row);
    for (row, value) in time.iter().enumerate() {
        let Some(value) = value else { continue };
        let last_start = value - value.rem_euclid(slide);
        for n in (0..per_row as i64).rev() {
            rows.push(row as u32);
            starts.push(last_start - n * slide);
        }
    }
    let rows = UInt32Array::from(rows);
    let mut all: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &rows, None))
        .collect::<Result<_, _>>()?;
    let window_type = output
        .field_with_name(WINDOW_START)
        .map(|f| f.data_type().clone())
        .unwrap_or(DataType::Timestamp(TimeUnit::Microsecond, None));
    let ends: Vec<i64> = starts.iter().map(|s| s + size).collect();
    for bounds in [starts, ends] {
        let array: ArrayRef = Arc::new(TimestampMicrosecondArray::from(bounds));
        all.push(cast(&array, &window_type)?);
    }
    let picked = columns
        .output_positions
        .iter()
        .map(|&i| all[i].clone())
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    Ok(RecordBatch::try_new_with_options(
        output.clone(),
        picked,
        &options,
    )?)
}

/// `TUMBLE` or `HOP` as a DataFusion table function over the streams.
#[derive(Debug)]
pub struct WindowFunction {
    hop: bool,
    streams: Arc<StreamSchema>,
}

impl WindowFunction {
    /// `TUMBLE` (or with `hop`, `HOP`) over the streams of `streams`.
    pub(crate) fn new(hop: bool, streams: Arc<StreamSchema>) -> Self {
        Self { hop, streams }
    }

    fn name(&self) -> &'static str {
        if self.hop { "HOP" } else { "TUMBLE" }
    }

    fn table(&self, args: &[Expr]) -> Result<WindowTable> {
        let usage = if self.hop {
            "HOP(stream, time_column, slide, size)"
        } else {
            "TUMBLE(stream, time_column, size)"
        };
        let wrong = |what: &str| ExecError::InvalidArgument(format!("{usage}: {what}"));
        let expected = if self.hop { 4 } else { 3 };
        if args.len() != expected {
            return Err(wrong(&format!(
                "takes {expected} arguments, got {}",
                args.len()
            )));
        }
        let name = |e: &Expr| match e {
            Expr::Column(c) if c.relation.is_none() => Ok(c.name.clone()),
            other => Err(wrong(&format!("expected a name, got {other}"))),
        };
        let stream = name(&args[0])?;
        let time_column = name(&args[1])?;
        let interval = |e: &Expr| -> Result<i64> {
            let micros = match e {
                Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) if v.months == 0 => {
                    Some(i64::from(v.days) * 86_400_000_000 + v.nanoseconds / 1_000)
                }
                Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => {
                    Some(i64::from(v.days) * 86_400_000_000 + i64::from(v.milliseconds) * 1_000)
                }
                _ => None,
            };
            match micros {
                Some(m) if m > MAX_WINDOW_MICROS => Err(wrong(&format!(
                    "{e} is longer than the longest window, {} days",
                    MAX_WINDOW_MICROS / 86_400_000_000
                ))),
                Some(m) if m > 0 => Ok(m),
                _ => Err(wrong(&format!(
                    "expected a positive INTERVAL of days or less, got {e}"
                ))),
            }
        };
        let kind = if self.hop {
            let (slide, size) = (interval(&args[2])?, interval(&args[3])?);
            if size % slide != 0 {
                return Err(wrong("the size must be a multiple of the slide"));
            }
            if size / slide > MAX_WINDOWS_PER_ROW {
                return Err(wrong(&format!(
                    "each row would be in {} windows (size / slide); at most \
                     {MAX_WINDOWS_PER_ROW} are allowed: make the slide longer or the size shorter",
                    size / slide
                )));
            }
            WindowKind::Hop { slide, size }
        } else {
            WindowKind::Tumble {
                size: interval(&args[2])?,
            }
        };
        let table = self
            .streams
            .stream_table(&stream)
            .map_err(|_| ExecError::UnknownStream(stream.clone()))?;
        WindowTable::new(
            Arc::new(table),
            WindowSpec { kind, time_column },
            self.name(),
        )
    }
}

impl TableFunctionImpl for WindowFunction {
    fn call_with_args(&self, args: TableFunctionArgs<'_, '_>) -> DfResult<Arc<dyn TableProvider>> {
        Ok(Arc::new(self.table(args.exprs())?))
    }
}

/// A stream with its rows' windows: what `TUMBLE(...)` or `HOP(...)` is
/// in a query.
#[derive(Debug)]
pub struct WindowTable {
    stream: Arc<StreamTable>,
    spec: WindowSpec,
    /// The time column's index in the stream's table schema.
    time_index: usize,
    schema: SchemaRef,
}

impl WindowTable {
    fn new(stream: Arc<StreamTable>, spec: WindowSpec, function: &str) -> Result<Self> {
        let stream_schema = stream.schema();
        let (time_index, time_field) = stream_schema
            .column_with_name(&spec.time_column)
            .ok_or_else(|| {
                ExecError::InvalidArgument(format!(
                    "{function}: stream {} has no column {}",
                    stream.name(),
                    spec.time_column
                ))
            })?;
        let window_type = match time_field.data_type() {
            DataType::Timestamp(_, zone) => {
                DataType::Timestamp(TimeUnit::Microsecond, zone.clone())
            }
            other => {
                return Err(ExecError::InvalidArgument(format!(
                    "{function}: the time column {} is {other}, not a timestamp",
                    spec.time_column
                )));
            }
        };
        let mut fields: Vec<Field> = stream_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for name in [WINDOW_START, WINDOW_END] {
            if stream_schema.column_with_name(name).is_some() {
                return Err(ExecError::InvalidArgument(format!(
                    "{function}: stream {} already has a column {name}",
                    stream.name()
                )));
            }
            fields.push(Field::new(name, window_type.clone(), false));
        }
        Ok(Self {
            stream,
            spec,
            time_index,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The stream's columns, then `window_start` and `window_end`.
    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The stream the windows are over.
    pub(crate) fn stream(&self) -> &StreamTable {
        &self.stream
    }

    /// The windows.
    pub(crate) fn spec(&self) -> &WindowSpec {
        &self.spec
    }

    /// The window table behind a query's scan, if that is what it scans.
    pub(crate) fn of(provider: &dyn TableProvider) -> Option<&Self> {
        let any: &dyn Any = provider;
        any.downcast_ref::<Self>()
    }

    /// The columns a scan with `projection` reads and gives.
    pub(crate) fn columns(&self, projection: Option<&[usize]>) -> WindowColumns {
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        WindowColumns::new(
            projection.unwrap_or(&all),
            self.stream.schema().fields().len(),
            self.time_index,
        )
    }
}

#[async_trait]
impl TableProvider for WindowTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let columns = self.columns(projection.map(Vec::as_slice));
        let output = Arc::new(
            self.schema.project(
                &projection
                    .cloned()
                    .unwrap_or_else(|| (0..self.schema.fields().len()).collect()),
            )?,
        );
        let input = self
            .stream
            .scan(state, Some(&columns.stream_projection), &[], None)
            .await?;
        let partitions = (0..input.properties().partitioning.partition_count())
            .map(|partition| {
                Arc::new(WindowPartition {
                    input: input.clone(),
                    partition,
                    kind: self.spec.kind,
                    columns: columns.clone(),
                    schema: output.clone(),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        Ok(Arc::new(StreamingTableExec::try_new(
            output,
            partitions,
            None,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

/// One partition of a window table's scan: the stream's partition with
/// its rows' windows.
#[derive(Debug)]
struct WindowPartition {
    input: Arc<dyn ExecutionPlan>,
    partition: usize,
    kind: WindowKind,
    columns: WindowColumns,
    schema: SchemaRef,
}

impl PartitionStream for WindowPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (kind, columns, schema) = (self.kind, self.columns.clone(), self.schema.clone());
        let rows = match self.input.execute(self.partition, ctx) {
            Ok(rows) => rows,
            Err(e) => {
                return Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::once(async move { Err(e) }),
                ));
            }
        };
        // Each row is copied once per window: a batch is cut into slices
        // whose copies fit a batch of about `WINDOWED_BATCH_ROWS`.
        let slice_rows = kind.input_rows_per_batch();
        let windowed = rows
            .map(move |batch| {
                let slices: Vec<DfResult<RecordBatch>> = match batch {
                    Ok(batch) => (0..batch.num_rows())
                        .step_by(slice_rows)
                        .map(|at| {
                            let slice = batch.slice(at, slice_rows.min(batch.num_rows() - at));
                            assign_windows(&slice, kind, &columns, &schema)
                                .map_err(DataFusionError::from)
                        })
                        .collect(),
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(slices)
            })
            .flatten();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), windowed))
    }
}
