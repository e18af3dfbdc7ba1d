//! Schema `tributary`: tables about the system itself, computed when they
//! are read. `tributary.consumer_lag` lists every committed offset of
//! every consumer group with the partition's high watermark and the lag
//! between them, so lag is one query away in psql.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::memory::MemorySchemaProvider;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use tributary_storage::Log;

use crate::error::ExecError;

/// The schema name.
pub const SYSTEM_SCHEMA: &str = "tributary";

/// Schema `tributary` with its tables.
pub fn system_schema(log: Arc<Log>) -> DfResult<Arc<dyn SchemaProvider>> {
    let schema = MemorySchemaProvider::new();
    schema.register_table("consumer_lag".into(), Arc::new(ConsumerLag { log }))?;
    Ok(Arc::new(schema))
}

/// `tributary.consumer_lag`: group, stream, partition, committed offset,
/// high watermark, lag (never below 0).
#[derive(Debug)]
pub struct ConsumerLag {
    log: Arc<Log>,
}

impl ConsumerLag {
    fn columns() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("group_id", DataType::Utf8, false),
            Field::new("stream", DataType::Utf8, false),
            Field::new("partition", DataType::Int32, false),
            Field::new("committed_offset", DataType::Int64, false),
            Field::new("high_watermark", DataType::Int64, true),
            Field::new("lag", DataType::Int64, true),
        ]))
    }

    async fn rows(&self) -> Result<RecordBatch, ExecError> {
        let committed = self.log.metadata().all_committed_offsets().await?;
        // A stream dropped since the commit has no high watermark.
        let high_watermarks: Vec<Option<i64>> = committed
            .iter()
            .map(|c| {
                self.log
                    .partition(&c.stream, c.partition)
                    .ok()
                    .map(|p| p.high_watermark())
            })
            .collect();
        let lag = committed
            .iter()
            .zip(&high_watermarks)
            .map(|(c, hw)| hw.map(|hw| (hw - c.offset).max(0)));
        RecordBatch::try_new(
            Self::columns(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    committed.iter().map(|c| c.group_id.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    committed.iter().map(|c| c.stream.as_str()),
                )),
                Arc::new(Int32Array::from_iter_values(
                    committed.iter().map(|c| c.partition as i32),
                )),
                Arc::new(Int64Array::from_iter_values(
                    committed.iter().map(|c| c.offset),
                )),
                Arc::new(Int64Array::from(high_watermarks.clone())),
                Arc::new(Int64Array::from_iter(lag)),
            ],
        )
        .map_err(|e| ExecError::Internal(format!("consumer_lag: {e}")))
    }
}

#[async_trait]
impl TableProvider for ConsumerLag {
    fn schema(&self) -> SchemaRef {
        Self::columns()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let rows = self.rows().await.map_err(DataFusionError::from)?;
        MemTable::try_new(Self::columns(), vec![vec![rows]])?
            .scan(state, projection, filters, limit)
            .await
    }
}
