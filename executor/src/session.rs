//! [`Session`]: one client's conversation with the [`Engine`]. Statements
//! run here; the catalog of streams, the functions and the log are the
//! engine's and shared, while DataFusion's settings (`SET datafusion.*`)
//! belong to the session, as a Postgres `SET` belongs to its connection.

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use tributary_planner::Statement;

use crate::engine::{Engine, Output, PlannedQuery};
use crate::error::{ExecError, Result};
use crate::handler;
use crate::handler::drop_object::DropKind;

/// A client's session: runs statements with its own DataFusion settings.
pub struct Session {
    engine: Arc<Engine>,
    ctx: SessionContext,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.ctx.session_id())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session over `engine`: a copy of the engine's DataFusion state, so
    /// it sees the same catalog and functions, with settings of its own.
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        let state = SessionStateBuilder::new_from_existing(engine.session_context().state())
            .with_session_id(next_session_id())
            .build();
        Self {
            ctx: SessionContext::new_with_state(state),
            engine,
        }
    }

    /// The engine this session runs on.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The DataFusion context this session plans and runs queries in.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Parses one or more `;`-separated statements without running them:
    /// a front end that treats some kinds apart (`SUBSCRIBE`) looks first.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        Ok(tributary_planner::parse(sql)?)
    }

    /// Parses and runs one or more `;`-separated statements, in order. An
    /// error stops at the failing statement; earlier ones took effect.
    pub async fn execute(&self, sql: &str) -> Result<Vec<Output>> {
        let statements = self.parse(sql)?;
        let mut outputs = Vec::with_capacity(statements.len());
        for statement in statements {
            outputs.push(self.execute_statement(statement).await?);
        }
        Ok(outputs)
    }

    /// Plans a standard SQL statement (not Tributary's own DDL) without
    /// running it: the extended protocol plans at Parse, to describe
    /// parameters and result columns, and runs at Execute.
    pub async fn plan_query(
        &self,
        statement: datafusion::sql::sqlparser::ast::Statement,
    ) -> Result<PlannedQuery> {
        handler::query::plan(self, statement).await
    }

    /// The columns a `SUBSCRIBE` sends (`op` first), without starting it:
    /// the extended protocol describes a statement before it runs.
    pub async fn subscription_schema(
        &self,
        subscribe: &tributary_planner::Subscribe,
    ) -> Result<datafusion::arrow::datatypes::SchemaRef> {
        handler::subscribe::schema(self, subscribe).await
    }

    /// Runs a planned query whose parameters are bound.
    pub async fn run_planned(&self, planned: PlannedQuery) -> Result<Output> {
        handler::query::run(self, planned).await
    }

    /// Runs one parsed statement. `COPY ... FROM STDIN` needs the client's
    /// data and goes through [`Engine::copy_in`] instead.
    pub async fn execute_statement(&self, statement: Statement) -> Result<Output> {
        let engine = self.engine.as_ref();
        match statement {
            Statement::CreateStream(create) => {
                handler::create_stream::execute(engine, *create).await
            }
            Statement::DropStream { name, if_exists } => {
                handler::drop_object::execute(engine, &name, if_exists, DropKind::Stream).await
            }
            Statement::AlterStream { name, options } => {
                handler::alter_stream::execute(engine, &name, &options).await
            }
            Statement::ShowStreams => handler::show_streams::execute(self),
            Statement::ShowConsumerGroups => handler::show_consumer_groups::execute(self).await,
            Statement::Describe { name } => handler::describe::execute(self, &name),
            Statement::CreateMaterializedView(create) => {
                handler::create_view::execute(self, create).await
            }
            Statement::DropMaterializedView { name, if_exists } => {
                handler::drop_object::execute(engine, &name, if_exists, DropKind::View).await
            }
            Statement::ShowMaterializedViews => handler::show_views::execute(self),
            Statement::ShowJobs => handler::show_jobs::execute(self),
            Statement::CreateSink(create) => handler::create_sink::execute(self, create).await,
            Statement::DropSink { name, if_exists } => {
                handler::drop_object::drop_sink(engine, &name, if_exists).await
            }
            Statement::ShowSinks => handler::show_sinks::execute(self),
            Statement::Subscribe(subscribe) | Statement::CopySubscribe(subscribe) => {
                handler::subscribe::execute(self, &subscribe).await
            }
            Statement::Sql(statement) => handler::query::execute(self, *statement).await,
            Statement::CopyFrom(_) => Err(ExecError::NotSupported(
                "COPY FROM STDIN without a client to send the data".into(),
            )),
        }
    }
}

/// A session id distinct from every other in this process.
fn next_session_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("session-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
