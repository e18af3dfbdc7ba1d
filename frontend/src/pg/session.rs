//! Per-connection settings (`SET`/`SHOW` of what drivers send) and
//! transaction statements, which Tributary accepts as no-ops: every
//! statement takes effect on its own.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{self, Expr, Set, Value, ValueWithSpan};
use pgwire::api::ClientInfo;
use pgwire::api::results::{Response, Tag};

/// Parameters clients set and show, with the values a fresh session has.
const PARAMETERS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("bytea_output", "hex"),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_isolation", "read committed"),
    ("extra_float_digits", "1"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("is_superuser", "on"),
    ("lc_messages", "C"),
    ("max_identifier_length", "63"),
    ("search_path", "public"),
    ("server_encoding", "UTF8"),
    ("server_version", "16.0"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
];

/// What a session statement produced: a response, and maybe a notice to
/// send before it.
#[derive(Debug)]
pub(crate) struct SessionOutcome {
    pub(crate) response: SessionResponse,
    pub(crate) notice: Option<String>,
}

/// The response of a session statement.
#[derive(Debug)]
pub(crate) enum SessionResponse {
    /// A completed command.
    Done(Response),
    /// One row: `SHOW name`.
    Show(RecordBatch),
}

/// Whether this statement is handled by the session rather than the engine.
pub(crate) fn is_session_statement(statement: &ast::Statement) -> bool {
    match statement {
        ast::Statement::StartTransaction { .. }
        | ast::Statement::Commit { .. }
        | ast::Statement::Rollback { .. } => true,
        ast::Statement::ShowVariable { variable } => known(&name_of(variable)).is_some(),
        ast::Statement::Set(Set::SingleAssignment { variable, .. }) => {
            known(&variable.to_string().to_ascii_lowercase()).is_some()
        }
        ast::Statement::Set(
            Set::SetTimeZone { .. } | Set::SetNames { .. } | Set::SetTransaction { .. },
        ) => true,
        _ => false,
    }
}

fn known(name: &str) -> Option<&'static str> {
    PARAMETERS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn name_of(parts: &[ast::Ident]) -> String {
    parts
        .iter()
        .map(|p| p.value.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(".")
}

fn text_of(values: &[Expr]) -> String {
    values
        .iter()
        .map(|v| match v {
            Expr::Value(ValueWithSpan {
                value: Value::SingleQuotedString(s) | Value::DoubleQuotedString(s),
                ..
            }) => s.clone(),
            Expr::Identifier(ident) => ident.value.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs a session statement (see [`is_session_statement`]).
pub(crate) fn execute<C: ClientInfo>(client: &mut C, statement: &ast::Statement) -> SessionOutcome {
    let done = |response| SessionOutcome {
        response: SessionResponse::Done(response),
        notice: None,
    };
    match statement {
        ast::Statement::StartTransaction { .. } => SessionOutcome {
            response: SessionResponse::Done(Response::TransactionStart(Tag::new("BEGIN"))),
            notice: Some(
                "Tributary has no multi-statement transactions: each statement takes effect on its own"
                    .into(),
            ),
        },
        ast::Statement::Commit { .. } => done(Response::TransactionEnd(Tag::new("COMMIT"))),
        ast::Statement::Rollback { .. } => SessionOutcome {
            response: SessionResponse::Done(Response::TransactionEnd(Tag::new("ROLLBACK"))),
            notice: Some("statements since BEGIN have already taken effect; nothing was rolled back".into()),
        },
        ast::Statement::ShowVariable { variable } => {
            let name = name_of(variable);
            let value = client
                .metadata()
                .get(&name)
                .cloned()
                .or_else(|| known(&name).map(str::to_string))
                .unwrap_or_default();
            let schema = Arc::new(Schema::new(vec![Field::new(&name, DataType::Utf8, false)]));
            match RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![value]))]) {
                Ok(batch) => SessionOutcome {
                    response: SessionResponse::Show(batch),
                    notice: None,
                },
                Err(e) => done(Response::Error(Box::new(pgwire::error::ErrorInfo::new(
                    "ERROR".into(),
                    "XX000".into(),
                    e.to_string(),
                )))),
            }
        }
        ast::Statement::Set(Set::SingleAssignment { variable, values, .. }) => {
            let name = variable.to_string().to_ascii_lowercase();
            client.metadata_mut().insert(name, text_of(values));
            done(Response::Execution(Tag::new("SET")))
        }
        ast::Statement::Set(Set::SetTimeZone { value, .. }) => {
            client
                .metadata_mut()
                .insert("timezone".into(), text_of(std::slice::from_ref(value)));
            done(Response::Execution(Tag::new("SET")))
        }
        _ => done(Response::Execution(Tag::new("SET"))),
    }
}
