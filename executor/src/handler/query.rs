//! Every other statement: planned and run by DataFusion against the
//! catalog of streams. `INSERT INTO stream VALUES ...` without a column
//! list names the stream's value columns, so the metadata columns are not
//! asked for.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, UInt64Type};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{self, Ident, ObjectName, TableObject};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use tributary_planner::StreamDefinition;
use tributary_planner::parser::object_name;
use tributary_planner::stream_definition::METADATA_COLUMNS;

use crate::engine::{Engine, Output};
use crate::error::{ExecError, Result};
use crate::session::Session;

/// What running a planned statement yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryKind {
    /// Rows (SELECT, EXPLAIN, SHOW ...).
    Rows,
    /// `INSERT`: the count of rows appended.
    Insert,
    /// Anything else: a completion tag.
    Command(String),
}

/// A statement planned by DataFusion, possibly with `$n` parameters still
/// to bind (the extended protocol plans at Parse and runs at Execute).
#[derive(Debug, Clone)]
pub struct PlannedQuery {
    /// The logical plan.
    pub plan: LogicalPlan,
    /// What running it yields.
    pub kind: QueryKind,
}

impl PlannedQuery {
    /// Binds parameter values.
    pub fn with_params(self, params: datafusion::common::ParamValues) -> Result<Self> {
        Ok(Self {
            plan: self.plan.replace_params_with_values(&params)?,
            kind: self.kind,
        })
    }
}

pub(crate) async fn execute(session: &Session, statement: ast::Statement) -> Result<Output> {
    let planned = plan(session, statement).await?;
    run(session, planned).await
}

/// Plans a standard SQL statement against the stream catalog, with the
/// session's settings.
pub(crate) async fn plan(session: &Session, statement: ast::Statement) -> Result<PlannedQuery> {
    refuse_unsupported(&statement)?;
    let mut statement = name_insert_columns(session.engine(), statement)?;
    let log = session.engine().log();
    crate::hidden_columns::hide_metadata_columns(&mut statement, |name| {
        crate::hidden_columns::stream_columns(log, name)
    });
    let is_insert = matches!(statement, ast::Statement::Insert(_));
    let tag = command_tag(&statement);
    let state = session.context().state();
    let plan = state
        .statement_to_plan(DfStatement::Statement(Box::new(statement)))
        .await?;
    let kind = if is_insert {
        QueryKind::Insert
    } else if matches!(
        plan,
        LogicalPlan::Dml(_) | LogicalPlan::Statement(_) | LogicalPlan::Ddl(_)
    ) {
        QueryKind::Command(tag)
    } else {
        QueryKind::Rows
    };
    Ok(PlannedQuery { plan, kind })
}

/// Runs a planned statement (its parameters bound).
pub(crate) async fn run(session: &Session, planned: PlannedQuery) -> Result<Output> {
    let frame = session.context().execute_logical_plan(planned.plan).await?;
    match planned.kind {
        QueryKind::Rows => Ok(Output::Rows(frame)),
        QueryKind::Insert => {
            let batches = frame.collect().await?;
            let rows = batches
                .first()
                .filter(|b| b.num_columns() > 0)
                .and_then(|b| b.column(0).as_primitive_opt::<UInt64Type>().cloned())
                .filter(|a| !a.is_empty())
                .map_or(0, |a| a.value(0));
            Ok(Output::Command {
                tag: "INSERT".into(),
                rows: Some(rows),
                notice: None,
            })
        }
        QueryKind::Command(tag) => {
            frame.collect().await?;
            Ok(Output::command(&tag))
        }
    }
}

/// Statements that would create things outside the stream catalog.
fn refuse_unsupported(statement: &ast::Statement) -> Result<()> {
    let what = match statement {
        ast::Statement::CreateTable(_) => "CREATE TABLE (use CREATE STREAM)",
        ast::Statement::CreateView(_) => "CREATE VIEW (materialized views come with streaming SQL)",
        ast::Statement::Update(_) => "UPDATE on a stream (streams are append-only)",
        ast::Statement::Delete(_) => "DELETE on a stream (streams are append-only; use retention)",
        ast::Statement::Truncate(_) => "TRUNCATE on a stream (use retention)",
        ast::Statement::Drop { object_type, .. } if *object_type == ast::ObjectType::Table => {
            "DROP TABLE (use DROP STREAM)"
        }
        _ => return Ok(()),
    };
    Err(ExecError::NotSupported(what.into()))
}

/// The completion tag of a statement that returns no rows.
fn command_tag(statement: &ast::Statement) -> String {
    match statement {
        ast::Statement::Set(_) => "SET".into(),
        ast::Statement::StartTransaction { .. } => "BEGIN".into(),
        ast::Statement::Commit { .. } => "COMMIT".into(),
        ast::Statement::Rollback { .. } => "ROLLBACK".into(),
        other => other
            .to_string()
            .split_whitespace()
            .next()
            .unwrap_or("OK")
            .to_ascii_uppercase(),
    }
}

/// Fills in the value columns of `INSERT INTO stream VALUES ...`, and
/// refuses writes to metadata columns.
fn name_insert_columns(engine: &Engine, mut statement: ast::Statement) -> Result<ast::Statement> {
    let ast::Statement::Insert(insert) = &mut statement else {
        return Ok(statement);
    };
    let TableObject::TableName(table) = &insert.table else {
        return Ok(statement);
    };
    let name = object_name(table)?;
    let Ok(record) = engine.log().stream(&name) else {
        return Ok(statement);
    };
    for column in &insert.columns {
        let column = column.to_string().to_ascii_lowercase();
        if METADATA_COLUMNS.contains(&column.as_str()) {
            return Err(ExecError::NotSupported(format!(
                "writing metadata column {column} (the log assigns it)"
            )));
        }
    }
    let definition = StreamDefinition::from_json(&name, record.config.definition.as_ref())?;
    let fields = definition.value_fields()?;
    if insert.columns.is_empty() {
        insert.columns = fields
            .iter()
            .map(|f| ObjectName::from(vec![Ident::with_quote('"', f.name())]))
            .collect();
    }
    // The BYTEA columns among those written, by position.
    let bytea: Vec<Option<String>> = insert
        .columns
        .iter()
        .map(|column| {
            let column = object_name(column).unwrap_or_default();
            fields
                .iter()
                .any(|f| f.name() == &column && f.data_type() == &DataType::Binary)
                .then_some(column)
        })
        .collect();
    // And the NUMERIC ones.
    let decimal: Vec<bool> = insert
        .columns
        .iter()
        .map(|column| {
            let column = object_name(column).unwrap_or_default();
            fields.iter().any(|f| {
                f.name() == &column
                    && matches!(
                        f.data_type(),
                        DataType::Decimal128(..) | DataType::Decimal256(..)
                    )
            })
        })
        .collect();
    if let Some(source) = &mut insert.source
        && let ast::SetExpr::Values(values) = source.body.as_mut()
    {
        for (row, values) in values.rows.iter_mut().enumerate() {
            for ((value, column), decimal) in values.iter_mut().zip(&bytea).zip(&decimal) {
                if let Some(column) = column
                    && let Some(decoded) = bytea_hex_literal(value, row + 1, column)?
                {
                    *value = decoded;
                }
                if *decimal && let Some(exact) = exact_number_literal(value) {
                    *value = exact;
                }
            }
        }
    }
    Ok(statement)
}

/// A number literal written to a NUMERIC column (`12345678901234567.89`,
/// `-0.1`), as its text: DataFusion reads a literal with a fraction as a
/// float, which keeps about 16 digits, and the cast from text to NUMERIC
/// keeps them all.
fn exact_number_literal(value: &ast::Expr) -> Option<ast::Expr> {
    let (negative, number) = match value {
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => (true, expr.as_ref()),
        other => (false, other),
    };
    let ast::Expr::Value(ast::ValueWithSpan {
        value: ast::Value::Number(text, _),
        ..
    }) = number
    else {
        return None;
    };
    // Plain digits and a point; an exponent stays a float.
    if !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let text = if negative {
        format!("-{text}")
    } else {
        text.clone()
    };
    Some(ast::Expr::value(ast::Value::SingleQuotedString(text)))
}

/// `'\x01ff'` written to a BYTEA column is Postgres's hex form of the bytes
/// 01 ff (DataFusion would store the text): it becomes `decode('01ff', 'hex')`.
fn bytea_hex_literal(value: &ast::Expr, row: usize, column: &str) -> Result<Option<ast::Expr>> {
    let ast::Expr::Value(ast::ValueWithSpan {
        value: ast::Value::SingleQuotedString(text),
        ..
    }) = value
    else {
        return Ok(None);
    };
    let Some(hex) = text.strip_prefix("\\x") else {
        return Ok(None);
    };
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ExecError::InvalidValue {
            row,
            column: column.to_string(),
            reason: format!("invalid hexadecimal data in \"{text}\""),
        });
    }
    let expression = format!("decode('{hex}', 'hex')");
    let parsed = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&expression)
        .and_then(|mut parser| parser.parse_expr())
        .map_err(|e| ExecError::Internal(format!("bytea literal rewrite: {e}")))?;
    Ok(Some(parsed))
}
