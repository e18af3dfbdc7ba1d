//! The catalog DataFusion binds against: every stream in the log is a
//! table of schema `public`, including streams created by Kafka clients.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;
use tributary_storage::Log;

use crate::error::Result;
use crate::job::registry::JobRegistry;
use crate::stream_table::StreamTable;
use crate::view_fold::ViewFolds;

/// Schema `public`: the streams of the log.
#[derive(Debug)]
pub struct StreamSchema {
    log: Arc<Log>,
    round_robin: Arc<AtomicU32>,
    jobs: Arc<JobRegistry>,
    /// Keyed views' rows, folded by earlier scans.
    folds: Arc<ViewFolds>,
}

impl StreamSchema {
    /// The schema over `log`; reads of views wait for their jobs in
    /// `jobs`.
    pub(crate) fn new(log: Arc<Log>, jobs: Arc<JobRegistry>) -> Self {
        Self {
            log,
            round_robin: Arc::new(AtomicU32::new(0)),
            jobs,
            folds: Arc::default(),
        }
    }

    /// The table of the stream `name`.
    pub fn stream_table(&self, name: &str) -> Result<StreamTable> {
        let record = self.log.stream(name)?;
        StreamTable::new(
            self.log.clone(),
            &record,
            self.round_robin.clone(),
            self.jobs.clone(),
            self.folds.clone(),
        )
    }
}

#[async_trait]
impl SchemaProvider for StreamSchema {
    fn table_names(&self) -> Vec<String> {
        self.log.streams().into_iter().map(|s| s.name).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if !self.table_exist(name) {
            return Ok(None);
        }
        Ok(Some(Arc::new(self.stream_table(name)?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.log.stream(name).is_ok()
    }
}
