//! The pgwire handlers: simple and extended query protocol over the Engine.

use std::fmt::Debug;
use std::sync::Arc;

use arrow_pg::datatypes::df::deserialize_parameters;
use arrow_pg::datatypes::{arrow_schema_to_pg_fields, into_pg_type};
use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::sql::sqlparser::ast;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use futures::{Sink, SinkExt};
use pgwire::api::auth::StartupHandler;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, ErrorHandler, PgWireServerHandlers, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::NoticeResponse;
use pgwire::types::format::FormatOptions;
use tributary_executor::{Engine, ExecError, Output, PlannedQuery, QueryKind, Session};
use tributary_planner::Statement;

use super::cancel::Cancel;
use super::copy::{self, CopyReceiver};
use super::errors::to_pg;
use super::responses::{error_response, to_response};
use super::session::{self, SessionResponse};
use super::timer::MessageTimer;

/// A statement prepared with the extended protocol.
#[derive(Debug, Clone)]
pub(crate) enum PgStatement {
    /// Tributary's own statements; no parameters.
    Direct(Statement),
    /// `SET`, `SHOW`, `BEGIN`, `COMMIT`: handled by the session.
    Session(Box<ast::Statement>),
    /// Planned by DataFusion; parameters bound at Execute.
    Planned(PlannedQuery),
    /// `SUBSCRIBE` (or `COPY (SUBSCRIBE ...) TO STDOUT` with `copy`), with
    /// the columns it sends, known at Parse so Describe can answer.
    Subscribe {
        statement: Statement,
        schema: datafusion::arrow::datatypes::SchemaRef,
        copy: bool,
    },
}

/// Answers queries from one server's connections.
#[derive(Debug)]
pub(crate) struct TributaryHandler {
    engine: Arc<Engine>,
    parser: Arc<TributaryParser>,
}

impl TributaryHandler {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        Self {
            parser: Arc::new(TributaryParser {
                engine: engine.clone(),
                compatibility: PostgresCompatibilityParser::new(),
            }),
            engine,
        }
    }

    /// Runs one statement of a simple query.
    async fn run_simple<C>(
        &self,
        client: &mut C,
        statement: Statement,
        cancel: &Cancel,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement = match statement {
            Statement::Sql(sql) if session::is_session_statement(&sql) => {
                return run_session(client, &sql, &Format::UnifiedText).await;
            }
            Statement::CopyFrom(copy) => return copy::start(client, &self.engine, &copy),
            statement @ (Statement::Subscribe(_) | Statement::CopySubscribe(_)) => {
                let copy = matches!(statement, Statement::CopySubscribe(_));
                let output = session_of(&self.engine, client)
                    .execute_statement(statement)
                    .await
                    .map_err(to_pg)?;
                return super::subscribe::stream(client, output, copy, &Format::UnifiedText, true)
                    .await;
            }
            other => other,
        };
        let mut output = session_of(&self.engine, client)
            .execute_statement(statement)
            .await
            .map_err(to_pg)?;
        send_output_notice(client, &mut output).await?;
        to_response(output, &Format::UnifiedText, format_options(client), cancel).await
    }
}

/// The connection's session, started with its first statement: it holds
/// the connection's DataFusion settings (`SET datafusion.*`).
fn session_of<C: ClientInfo>(engine: &Arc<Engine>, client: &C) -> Arc<Session> {
    client
        .session_extensions()
        .get_or_insert_with(|| engine.session())
}

/// Sends `text` to the client as a NOTICE.
async fn send_notice<C>(client: &mut C, text: String) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let info = ErrorInfo::new("NOTICE".into(), "00000".into(), text);
    client
        .send(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
            info,
        )))
        .await?;
    Ok(())
}

/// Sends a command's notice, if it has one, ahead of its response.
async fn send_output_notice<C>(client: &mut C, output: &mut Output) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if let Output::Command { notice, .. } = output
        && let Some(text) = notice.take()
    {
        send_notice(client, text).await?;
    }
    Ok(())
}

fn format_options<C: ClientInfo>(client: &C) -> Arc<FormatOptions> {
    Arc::new(FormatOptions::from_client_metadata(client.metadata()))
}

async fn run_session<C>(
    client: &mut C,
    statement: &ast::Statement,
    format: &Format,
) -> PgWireResult<Response>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let outcome = session::execute(client, statement);
    if let Some(notice) = outcome.notice {
        send_notice(client, notice).await?;
    }
    match outcome.response {
        SessionResponse::Done(response) => Ok(response),
        SessionResponse::Show(batch) => {
            let fields = Arc::new(arrow_schema_to_pg_fields(
                batch.schema().as_ref(),
                format,
                None,
            )?);
            let rows: Vec<_> =
                arrow_pg::datatypes::encode_recordbatch(fields.clone(), batch).collect();
            Ok(Response::Query(QueryResponse::new(
                fields,
                futures::stream::iter(rows),
            )))
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for TributaryHandler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _timer = MessageTimer::start("query");
        let statements = match self.parser.statements(query) {
            Ok(statements) => statements,
            Err(e) => return Ok(vec![error_response(e)]),
        };
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        let cancel = Cancel::new();
        for statement in statements {
            match self.run_simple(client, statement, &cancel).await {
                Ok(response) => responses.push(response),
                Err(PgWireError::UserError(info)) => {
                    // Postgres stops a multi-statement query at its first
                    // error; the connection stays usable.
                    responses.push(Response::Error(info));
                    break;
                }
                Err(other) => return Err(other),
            }
        }
        cancel.arm(client).await;
        Ok(responses)
    }
}

/// Parses and plans statements for the extended protocol.
#[derive(Debug)]
pub(crate) struct TributaryParser {
    engine: Arc<Engine>,
    compatibility: PostgresCompatibilityParser,
}

impl TributaryParser {
    /// Parses a query string into statements, with what tools send
    /// rewritten into what DataFusion plans: psql's and drivers' catalog
    /// queries that DataFusion cannot run are replaced by equivalents
    /// (datafusion-pg-catalog's list), and Postgres idioms are rewritten.
    fn statements(&self, sql: &str) -> Result<Vec<Statement>, ExecError> {
        let statements = tributary_planner::parse(sql)?;
        let own_subqueries = |statement: &Statement| matches!(statement, Statement::Sql(sql) if super::rewrite::has_own_select_list_subqueries(sql));
        if statements.iter().all(|s| matches!(s, Statement::Sql(_)))
            && !statements.iter().any(own_subqueries)
            && let Ok(replaced) = self.compatibility.parse(sql)
            && replaced.len() == statements.len()
        {
            return Ok(replaced
                .into_iter()
                .map(|mut statement| {
                    super::rewrite::postgres_idioms(&mut statement);
                    Statement::Sql(Box::new(statement))
                })
                .collect());
        }
        Ok(statements
            .into_iter()
            .map(|statement| match statement {
                Statement::Sql(sql) => {
                    let mut sql = if super::rewrite::has_own_select_list_subqueries(&sql) {
                        *sql
                    } else {
                        self.compatibility.rewrite(*sql)
                    };
                    super::rewrite::postgres_idioms(&mut sql);
                    Statement::Sql(Box::new(sql))
                }
                other => other,
            })
            .collect())
    }
}

impl TributaryParser {
    /// A `SUBSCRIBE` (or with `copy`, `COPY (SUBSCRIBE ...) TO STDOUT`)
    /// prepared: planned now, so that Describe gives its columns.
    async fn prepare_subscribe<C: ClientInfo>(
        &self,
        client: &C,
        subscribe: tributary_planner::Subscribe,
        copy: bool,
    ) -> PgWireResult<PgStatement> {
        let schema = session_of(&self.engine, client)
            .subscription_schema(&subscribe)
            .await
            .map_err(to_pg)?;
        let statement = if copy {
            Statement::CopySubscribe(subscribe)
        } else {
            Statement::Subscribe(subscribe)
        };
        Ok(PgStatement::Subscribe {
            statement,
            schema,
            copy,
        })
    }
}

#[async_trait]
impl QueryParser for TributaryParser {
    type Statement = PgStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<PgStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let _timer = MessageTimer::start("parse");
        let mut statements = self.statements(sql).map_err(to_pg)?;
        if statements.len() > 1 {
            return Err(to_pg(ExecError::Plan(
                tributary_planner::PlanError::Syntax(
                    "cannot insert multiple commands into a prepared statement".into(),
                ),
            )));
        }
        let Some(statement) = statements.pop() else {
            return Ok(None);
        };
        Ok(Some(match statement {
            Statement::Sql(sql) if session::is_session_statement(&sql) => PgStatement::Session(sql),
            Statement::Sql(sql) => {
                let session = session_of(&self.engine, client);
                PgStatement::Planned(session.plan_query(*sql).await.map_err(to_pg)?)
            }
            Statement::Subscribe(subscribe) => {
                self.prepare_subscribe(client, subscribe, false).await?
            }
            Statement::CopySubscribe(subscribe) => {
                self.prepare_subscribe(client, subscribe, true).await?
            }
            Statement::CopyFrom(copy) => {
                // Check the stream and columns now, at Parse: a COPY refused
                // at Execute leaves tokio-postgres (which pipelines a Sync
                // after Execute and another after CopyFail) out of step.
                self.engine.copy_in(&copy).map_err(to_pg)?;
                PgStatement::Direct(Statement::CopyFrom(copy))
            }
            other => PgStatement::Direct(other),
        }))
    }

    fn get_parameter_types(&self, statement: &PgStatement) -> PgWireResult<Vec<Type>> {
        let PgStatement::Planned(planned) = statement else {
            return Ok(Vec::new());
        };
        parameter_types(planned)
            .into_iter()
            .map(|t| match t {
                Some(data_type) => into_pg_type(&data_type),
                None => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(
        &self,
        statement: &PgStatement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = format.cloned().unwrap_or(Format::UnifiedText);
        let schema = match statement {
            PgStatement::Planned(planned) if planned.kind == QueryKind::Rows => {
                Arc::new(planned.plan.schema().as_arrow().clone())
            }
            PgStatement::Planned(_) => return Ok(Vec::new()),
            PgStatement::Subscribe { schema, copy, .. } => {
                if *copy {
                    // Like any COPY: no row description; CopyOutResponse
                    // says the columns when it runs.
                    return Ok(Vec::new());
                }
                schema.clone()
            }
            PgStatement::Direct(direct) => match self.engine.output_schema(direct) {
                Some(schema) => schema,
                None => return Ok(Vec::new()),
            },
            PgStatement::Session(sql) => match sql.as_ref() {
                ast::Statement::ShowVariable { variable } => {
                    Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
                        datafusion::arrow::datatypes::Field::new(
                            variable
                                .iter()
                                .map(|v| v.value.to_ascii_lowercase())
                                .collect::<Vec<_>>()
                                .join("."),
                            DataType::Utf8,
                            false,
                        ),
                    ]))
                }
                _ => return Ok(Vec::new()),
            },
        };
        arrow_schema_to_pg_fields(&schema, &format, None)
    }
}

/// The inferred type of each `$n` parameter, in order.
fn parameter_types(planned: &PlannedQuery) -> Vec<Option<DataType>> {
    let Ok(types) = planned.plan.get_parameter_types() else {
        return Vec::new();
    };
    let count = types
        .keys()
        .filter_map(|k| k.trim_start_matches('$').parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    (1..=count)
        .map(|i| types.get(&format!("${i}")).cloned().flatten())
        .collect()
}

#[async_trait]
impl ExtendedQueryHandler for TributaryHandler {
    type Statement = PgStatement;
    type QueryParser = TributaryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PgStatement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PgStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _timer = MessageTimer::start("execute");
        match &portal.statement.statement {
            PgStatement::Session(sql) => {
                return run_session(client, sql, &portal.result_column_format).await;
            }
            PgStatement::Direct(Statement::CopyFrom(copy)) => {
                return copy::start(client, &self.engine, copy);
            }
            // A fetch of all rows (max_rows 0) would never finish: the rows
            // are written here as they come. A fetch of some rows goes
            // through the portal, which suspends after each `max_rows`.
            PgStatement::Subscribe {
                statement, copy, ..
            } if max_rows == 0 || *copy => {
                let output = session_of(&self.engine, client)
                    .execute_statement(statement.clone())
                    .await
                    .map_err(to_pg)?;
                return super::subscribe::stream(
                    client,
                    output,
                    *copy,
                    &portal.result_column_format,
                    false,
                )
                .await;
            }
            _ => {}
        }
        let session = session_of(&self.engine, client);
        let output = match &portal.statement.statement {
            PgStatement::Direct(statement) | PgStatement::Subscribe { statement, .. } => {
                session.execute_statement(statement.clone()).await
            }
            PgStatement::Planned(planned) => {
                let types = parameter_types(planned);
                let type_refs: Vec<Option<&DataType>> = types.iter().map(Option::as_ref).collect();
                let params = deserialize_parameters(portal, &type_refs)?;
                match planned.clone().with_params(params) {
                    Ok(bound) => session.run_planned(bound).await,
                    Err(e) => Err(e),
                }
            }
            PgStatement::Session(_) => Err(ExecError::Internal(
                "session statement reached the engine".into(),
            )),
        }
        .map_err(to_pg)?;
        let mut output = output;
        send_output_notice(client, &mut output).await?;
        let cancel = Cancel::new();
        let response = to_response(
            output,
            &portal.result_column_format,
            format_options(client),
            &cancel,
        )
        .await?;
        cancel.arm(client).await;
        Ok(response)
    }
}

/// Accepts every connection without a password (the server listens on
/// loopback by default).
#[derive(Debug)]
pub(crate) struct Startup {
    connections: Arc<ConnectionManager>,
}

#[async_trait]
impl NoopStartupHandler for Startup {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.connections.clone())
    }
}

/// Logs what goes wrong on a connection.
#[derive(Debug)]
pub(crate) struct LogErrors;

impl ErrorHandler for LogErrors {
    fn on_error<C: ClientInfo>(&self, _client: &C, error: &mut PgWireError) {
        tracing::debug!(error = %error, "pgwire error");
    }
}

/// The handlers of one server.
#[derive(Debug)]
pub(crate) struct Handlers {
    handler: Arc<TributaryHandler>,
    startup: Arc<Startup>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Handlers {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        let connections = Arc::new(ConnectionManager::new());
        Self {
            handler: Arc::new(TributaryHandler::new(engine)),
            startup: Arc::new(Startup {
                connections: connections.clone(),
            }),
            cancel: Arc::new(DefaultCancelHandler::new(connections)),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.handler.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.handler.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        Arc::new(CopyReceiver)
    }
}
