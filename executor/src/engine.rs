//! [`Engine`]: the one door. Every front end (pgwire, Kafka, HTTP) turns
//! its protocol into calls here.

use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::dataframe::DataFrame;
use datafusion::prelude::{SessionConfig, SessionContext};
use tributary_planner::{CopyFrom, Statement};
use tributary_storage::Log;

use crate::background::StreamTasks;
use crate::catalog::StreamSchema;
use crate::copy_in::CopyIn;
use crate::error::Result;
use crate::handler;
pub use crate::handler::query::{PlannedQuery, QueryKind};
use crate::job::registry::JobRegistry;
use crate::session::Session;

/// The catalog name clients see (`current_database()`).
pub const CATALOG: &str = "tributary";
/// The schema streams live in.
pub const SCHEMA: &str = "public";

/// What a statement produced.
#[derive(Debug)]
pub enum Output {
    /// Rows, produced lazily as the caller reads them.
    Rows(DataFrame),
    /// A command's completion: its tag (`CREATE STREAM`, `INSERT`) and the
    /// rows it affected, if that applies.
    Command {
        /// The command tag.
        tag: String,
        /// Rows affected.
        rows: Option<u64>,
        /// Something the client should be told beside the completion
        /// (pgwire sends it as a NOTICE first).
        notice: Option<String>,
    },
}

impl Output {
    pub(crate) fn command(tag: &str) -> Self {
        Self::Command {
            tag: tag.to_string(),
            rows: None,
            notice: None,
        }
    }

    /// This output with `notice` for the client, if it is a command's.
    pub(crate) fn with_notice(mut self, text: String) -> Self {
        if let Self::Command { notice, .. } = &mut self {
            *notice = Some(text);
        }
        self
    }
}

/// How often stateful jobs write a checkpoint unless the server says.
pub const DEFAULT_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs statements against the log.
pub struct Engine {
    log: Arc<Log>,
    streams: Arc<StreamSchema>,
    ctx: SessionContext,
    /// The tasks that write streams: generators and view jobs.
    writers: StreamTasks,
    /// What each view's job has done.
    jobs: Arc<JobRegistry>,
    /// The `COPY ... FROM STDIN`s in progress.
    copies: Arc<crate::copy_in::progress::CopyRegistry>,
    /// How often stateful jobs write a checkpoint.
    checkpoint_interval: std::sync::Mutex<std::time::Duration>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("session", &self.ctx.session_id())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `log`, with every stream visible as a table.
    pub fn new(log: Arc<Log>) -> Result<Arc<Self>> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, SCHEMA)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        let catalog = MemoryCatalogProvider::new();
        let jobs = Arc::new(JobRegistry::default());
        let streams = Arc::new(StreamSchema::new(log.clone(), jobs.clone()));
        catalog.register_schema(SCHEMA, streams.clone())?;
        catalog.register_schema(
            crate::system_tables::SYSTEM_SCHEMA,
            crate::system_tables::system_schema(log.clone())?,
        )?;
        ctx.register_catalog(CATALOG, Arc::new(catalog));
        datafusion_functions_json::register_all(&mut *ctx.state_ref().write())?;
        crate::functions::register_all(&ctx);
        for (name, hop) in [("tumble", false), ("hop", true)] {
            let function = Arc::new(crate::window::WindowFunction::new(hop, streams.clone()));
            ctx.register_udtf(name, function.clone());
            ctx.register_udtf(&name.to_uppercase(), function);
        }
        Ok(Arc::new(Self {
            log,
            streams,
            ctx,
            writers: StreamTasks::default(),
            jobs,
            copies: Arc::default(),
            checkpoint_interval: std::sync::Mutex::new(DEFAULT_CHECKPOINT_INTERVAL),
        }))
    }

    /// Starts the tasks that write streams in the background: the
    /// generators of streams with a connector and the jobs of materialized
    /// views (the server calls it once it has opened the log). Each goes on
    /// where its stream ends.
    pub fn start_writers(&self) {
        for stream in self.log.streams() {
            self.start_writer(&stream.name);
        }
    }

    /// Stops every background writer (before the log shuts down).
    pub fn stop_writers(&self) {
        self.writers.stop_all();
    }

    /// Sets how often stateful jobs write a checkpoint (for jobs started
    /// after the call; the server sets it before starting them).
    pub fn set_checkpoint_interval(&self, interval: std::time::Duration) {
        *self
            .checkpoint_interval
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = interval;
    }

    /// Starts the background writer of `stream`, if it has one.
    pub(crate) fn start_writer(&self, stream: &str) {
        let table = match self.streams.stream_table(stream) {
            Ok(table) => table,
            Err(e) => {
                tracing::warn!(stream, error = %e, "not starting the stream's writer");
                return;
            }
        };
        let definition = table.definition().clone();
        if definition.view.is_some() {
            let job = self.jobs.job(stream);
            let interval = *self
                .checkpoint_interval
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let task =
                crate::job::run_view(self.log.clone(), self.ctx.state(), table, job, interval);
            self.writers.start(stream, task);
        } else if let Some(tributary_planner::ConnectorDefinition::Nexmark(options)) =
            definition.connector
        {
            let task = crate::generator::run_nexmark(self.log.clone(), table, options);
            self.writers.start(stream, task);
        }
    }

    /// Stops the background writer of `stream` and forgets its job.
    pub(crate) async fn stop_writer(&self, stream: &str) {
        self.writers.stop(stream).await;
        self.jobs.remove(stream);
    }

    /// What each view's job has done (`SHOW JOBS`).
    pub(crate) fn jobs(&self) -> &JobRegistry {
        &self.jobs
    }

    /// The log.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// The engine-wide DataFusion context: what every new [`Session`]
    /// starts from. Catalogs and functions registered here are shared by
    /// all sessions; settings changed here reach sessions started later.
    pub fn session_context(&self) -> &SessionContext {
        &self.ctx
    }

    /// A new session: statements run there, with DataFusion settings of
    /// its own over this engine's catalog.
    pub fn session(self: &Arc<Self>) -> Session {
        Session::new(self.clone())
    }

    /// The columns a Tributary statement returns, if it returns rows (the
    /// extended protocol describes them before running it).
    pub fn output_schema(
        &self,
        statement: &Statement,
    ) -> Option<datafusion::arrow::datatypes::SchemaRef> {
        match statement {
            Statement::ShowStreams => Some(handler::show_streams::schema()),
            Statement::ShowConsumerGroups => Some(handler::show_consumer_groups::schema()),
            Statement::Describe { .. } => Some(handler::describe::schema()),
            Statement::ShowMaterializedViews => Some(handler::show_views::schema()),
            Statement::ShowJobs => Some(handler::show_jobs::schema()),
            Statement::ShowSinks => Some(handler::show_sinks::schema()),
            _ => None,
        }
    }

    /// Creates a raw stream (`key BYTEA, value BYTEA`) with `config`'s
    /// partitions and retention, as a Kafka client's topic creation does.
    pub async fn create_raw_stream(
        &self,
        name: &str,
        config: tributary_storage::StreamConfig,
    ) -> Result<tributary_storage::metadata::StreamRecord> {
        let config = tributary_storage::StreamConfig {
            definition: None,
            ..config
        };
        Ok(self.log.create_stream(name, config).await?)
    }

    /// Refuses `change` to `stream` if it would break the stream's
    /// background writer (the Kafka admin APIs and `ALTER STREAM` ask).
    pub fn check_admin(&self, stream: &str, change: crate::AdminChange) -> Result<()> {
        let record = self.log.stream(stream)?;
        let definition = tributary_planner::StreamDefinition::from_json(
            stream,
            record.config.definition.as_ref(),
        )?;
        crate::background::check_admin(stream, &definition, change)
    }

    /// Deletes a stream and its data, as `DROP STREAM` and a Kafka client's
    /// topic deletion do; refused while a view reads it.
    pub async fn delete_stream(&self, name: &str) -> Result<()> {
        crate::handler::drop_object::check_no_dependents(self, name)?;
        self.stop_writer(name).await;
        if let Ok(job) = crate::job::checkpoint::job_key(&self.log, name) {
            crate::job::checkpoint::delete_all(&self.log, &job).await;
        }
        if let Ok(stream) = self.log.stream(name) {
            crate::view_fold::delete_snapshots(self.log.object_store(), stream.stream_id).await;
        }
        Ok(self.log.delete_stream(name).await?)
    }

    /// Appends record batches as a producer sent them (the Kafka door):
    /// for a typed stream every value must decode by its format and
    /// columns, else nothing is appended and the error names the record.
    pub async fn produce(
        &self,
        stream: &str,
        partition: u32,
        batches: bytes::Bytes,
    ) -> Result<tributary_storage::AppendOutcome> {
        crate::produce::produce(self, stream, partition, batches).await
    }

    /// Starts `COPY ... FROM STDIN`: the front end feeds the client's data
    /// to the returned [`CopyIn`] and finishes it when the data ends.
    pub fn copy_in(&self, copy: &CopyFrom) -> Result<CopyIn> {
        let table = self.streams.stream_table(&copy.stream)?;
        crate::background::check_writable(&copy.stream, table.definition())?;
        CopyIn::new(&table, copy, self.copies.register(&copy.stream))
    }

    /// The `COPY ... FROM STDIN`s in progress.
    pub(crate) fn copies(&self) -> Vec<Arc<crate::copy_in::progress::CopyProgress>> {
        self.copies.in_progress()
    }
}
