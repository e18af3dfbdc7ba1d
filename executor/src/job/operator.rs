//! The operators of a streaming job: each takes a batch of rows and gives
//! the rows it makes of them. Stateless ones (filters, projections) are
//! DataFusion physical expressions evaluated on Arrow batches; stateful
//! ones (aggregations, windows) keep their state behind the same trait.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::PhysicalExpr;

use crate::error::{ExecError, Result};

/// One step of a job's dataflow.
pub(crate) trait Operator: Send + std::fmt::Debug {
    /// The rows `batch` turns into.
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch>;
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
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let keep = self
            .predicate
            .evaluate(&batch)?
            .into_array(batch.num_rows())?;
        let keep = keep
            .as_boolean_opt()
            .ok_or_else(|| ExecError::Internal("a filter predicate is not boolean".into()))?;
        Ok(filter_record_batch(&batch, keep)?)
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
    fn process(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let columns = self
            .expressions
            .iter()
            .map(|e| e.evaluate(&batch)?.into_array(batch.num_rows()))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let options = datafusion::arrow::array::RecordBatchOptions::new()
            .with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &options,
        )?)
    }
}
