//! The operators of a streaming job: each takes a batch of rows and gives
//! the rows it makes of them. Stateless ones (filters, projections) are
//! DataFusion physical expressions evaluated on Arrow batches; stateful
//! ones (aggregations, windows) keep their state behind the same trait.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::kernels::boolean::not;
use datafusion::arrow::compute::{cast, filter, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMicrosecondType};
use datafusion::physical_expr::PhysicalExpr;

use crate::error::{ExecError, Result};
use crate::window::{WindowColumns, WindowKind, assign_windows};

/// Rows going through a dataflow, each one a change: a row added, or,
/// after an aggregation, a row taken back (the old value of a group that
/// changed) and identified by its group's key.
#[derive(Debug, Clone)]
pub(crate) struct Changes {
    /// The rows.
    pub(crate) rows: RecordBatch,
    /// For each row, whether it is taken back; `None` when every row is
    /// added (the input of a stream).
    pub(crate) retract: Option<BooleanArray>,
    /// For each row, the values of the key that identifies it in the
    /// view (its group); `None` before an aggregation.
    pub(crate) keys: Option<RecordBatch>,
}

impl Changes {
    /// Rows that are all added and have no key: a stream's records.
    pub(crate) fn added(rows: RecordBatch) -> Self {
        Self {
            rows,
            retract: None,
            keys: None,
        }
    }

    /// The rows where `keep` is true, with their flags and keys.
    fn filter(self, keep: &BooleanArray) -> Result<Self> {
        Ok(Self {
            rows: filter_record_batch(&self.rows, keep)?,
            retract: self
                .retract
                .map(|r| filter(&r, keep).map(|a| a.as_boolean().clone()))
                .transpose()?,
            keys: self
                .keys
                .map(|k| filter_record_batch(&k, keep))
                .transpose()?,
        })
    }
}

/// One step of a job's dataflow.
pub(crate) trait Operator: Send + std::fmt::Debug {
    /// The changes `changes` turn into.
    fn process(&mut self, changes: Changes) -> Result<Changes>;

    /// The input's event time has reached `watermark` (microseconds): what
    /// that completes (the rows of closed windows), if anything.
    fn advance(&mut self, _watermark: i64) -> Result<Option<Changes>> {
        Ok(None)
    }

    /// Rows dropped as late since the operator started.
    fn late_rows(&self) -> u64 {
        0
    }

    /// The late rows kept since the last call (with `LATE DATA TO`).
    fn take_late(&mut self) -> Vec<RecordBatch> {
        Vec::new()
    }

    /// Whether the operator keeps state from one chunk to the next (all
    /// of it in [`Operator::snapshot`]).
    fn keeps_state(&self) -> bool {
        false
    }

    /// The operator's state, for a checkpoint; `None` if it keeps none.
    fn snapshot(&mut self) -> Result<Option<RecordBatch>> {
        Ok(None)
    }

    /// Takes back the state of a checkpoint ([`Self::snapshot`]).
    fn restore(&mut self, _state: &RecordBatch) -> Result<()> {
        Ok(())
    }
}

/// Keeps the rows for which a predicate is true (`WHERE`).
#[derive(Debug)]
pub(crate) struct FilterOperator {
    predicate: Arc<dyn PhysicalExpr>,
}

impl FilterOperator {
    pub(crate) fn new(predicate: Arc<dyn PhysicalExpr>) -> Self {
        Self { predicate }
    }
}

impl Operator for FilterOperator {
    /// A row taken back goes through the filter as its addition did, so
    /// a group that stops (or starts) passing `HAVING` is taken back (or
    /// added).
    fn process(&mut self, changes: Changes) -> Result<Changes> {
        let keep = self
            .predicate
            .evaluate(&changes.rows)?
            .into_array(changes.rows.num_rows())?;
        let keep = keep
            .as_boolean_opt()
            .ok_or_else(|| ExecError::Internal("a filter predicate is not boolean".into()))?;
        changes.filter(keep)
    }
}

/// Computes the output columns from the input's (`SELECT` expressions).
#[derive(Debug)]
pub(crate) struct ProjectOperator {
    expressions: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl ProjectOperator {
    pub(crate) fn new(expressions: Vec<Arc<dyn PhysicalExpr>>, schema: SchemaRef) -> Self {
        Self {
            expressions,
            schema,
        }
    }
}

impl Operator for ProjectOperator {
    fn process(&mut self, changes: Changes) -> Result<Changes> {
        let batch = &changes.rows;
        let columns = self
            .expressions
            .iter()
            .map(|e| e.evaluate(batch)?.into_array(batch.num_rows()))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let options = datafusion::arrow::array::RecordBatchOptions::new()
            .with_row_count(Some(batch.num_rows()));
        let rows = RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)?;
        Ok(Changes { rows, ..changes })
    }
}

/// Puts each row into its windows (`TUMBLE` or `HOP`), adding
/// `window_start` and `window_end`. With `LATE DATA TO` it also takes out
/// the rows whose window the watermark has closed, and keeps them whole.
#[derive(Debug)]
pub(crate) struct WindowOperator {
    kind: WindowKind,
    columns: WindowColumns,
    schema: SchemaRef,
    late: Option<LateRows>,
}

/// The late rows a window operator takes out.
#[derive(Debug)]
struct LateRows {
    /// The columns kept of a late row (its values and windows).
    kept_columns: Vec<usize>,
    watermark: Option<i64>,
    rows: Vec<RecordBatch>,
    count: u64,
}

impl WindowOperator {
    pub(crate) fn new(kind: WindowKind, columns: WindowColumns, schema: SchemaRef) -> Self {
        Self {
            kind,
            columns,
            schema,
            late: None,
        }
    }

    /// Takes out late rows (its output has `window_end` last), keeping
    /// `kept_columns` of each.
    pub(crate) fn keep_late_rows(mut self, kept_columns: Vec<usize>) -> Self {
        self.late = Some(LateRows {
            kept_columns,
            watermark: None,
            rows: Vec::new(),
            count: 0,
        });
        self
    }
}

impl Operator for WindowOperator {
    fn process(&mut self, changes: Changes) -> Result<Changes> {
        if changes.retract.is_some() {
            return Err(ExecError::Internal(
                "windows over rows taken back; only a stream's rows get windows".into(),
            ));
        }
        let rows = assign_windows(&changes.rows, self.kind, &self.columns, &self.schema)?;
        let Some(late) = &mut self.late else {
            return Ok(Changes::added(rows));
        };
        let Some(watermark) = late.watermark else {
            return Ok(Changes::added(rows));
        };
        let ends = cast(
            rows.column(rows.num_columns() - 1),
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let is_late: BooleanArray = ends
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|end| Some(end.is_some_and(|end| end <= watermark)))
            .collect();
        let late_count = is_late.true_count();
        if late_count == 0 {
            return Ok(Changes::added(rows));
        }
        late.count += late_count as u64;
        late.rows
            .push(filter_record_batch(&rows, &is_late)?.project(&late.kept_columns)?);
        Ok(Changes::added(filter_record_batch(&rows, &not(&is_late)?)?))
    }

    fn advance(&mut self, watermark: i64) -> Result<Option<Changes>> {
        if let Some(late) = &mut self.late {
            late.watermark = Some(late.watermark.map_or(watermark, |w| w.max(watermark)));
        }
        Ok(None)
    }

    fn late_rows(&self) -> u64 {
        self.late.as_ref().map_or(0, |l| l.count)
    }

    fn take_late(&mut self) -> Vec<RecordBatch> {
        self.late
            .as_mut()
            .map(|l| std::mem::take(&mut l.rows))
            .unwrap_or_default()
    }
}
