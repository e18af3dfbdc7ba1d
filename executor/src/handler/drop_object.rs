//! `DROP MATERIALIZED VIEW [IF EXISTS]` and `DROP STREAM [IF EXISTS]`: a
//! view is dropped as a view and a stream as a stream (else 42809, as
//! Postgres answers `DROP TABLE` of a view), and neither while a view
//! reads it (2BP01).

use tributary_planner::StreamDefinition;

use crate::engine::{Engine, Output};
use crate::error::{ExecError, Result};

/// What a DROP statement names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropKind {
    /// `DROP STREAM`.
    Stream,
    /// `DROP MATERIALIZED VIEW`.
    View,
}

pub(crate) async fn execute(
    engine: &Engine,
    name: &str,
    if_exists: bool,
    kind: DropKind,
) -> Result<Output> {
    let tag = match kind {
        DropKind::Stream => "DROP STREAM",
        DropKind::View => "DROP MATERIALIZED VIEW",
    };
    let record = match engine.log().stream(name) {
        Ok(record) => record,
        Err(_) if if_exists => return Ok(Output::command(tag)),
        Err(_) => return Err(ExecError::UnknownStream(name.to_string())),
    };
    let definition = StreamDefinition::from_json(name, record.config.definition.as_ref())?;
    match (kind, definition.view.is_some()) {
        (DropKind::Stream, true) => {
            return Err(ExecError::WrongObjectType {
                name: name.to_string(),
                expected: "stream",
                hint: Some("use DROP MATERIALIZED VIEW"),
            });
        }
        (DropKind::View, false) => {
            return Err(ExecError::WrongObjectType {
                name: name.to_string(),
                expected: "materialized view",
                hint: Some("use DROP STREAM"),
            });
        }
        _ => {}
    }
    match engine.delete_stream(name).await {
        Ok(()) => Ok(Output::command(tag)),
        // Dropped meanwhile by someone else.
        Err(ExecError::Storage(tributary_storage::Error::UnknownStream(_))) if if_exists => {
            Ok(Output::command(tag))
        }
        Err(ExecError::Storage(tributary_storage::Error::UnknownStream(name))) => {
            Err(ExecError::UnknownStream(name))
        }
        Err(e) => Err(e),
    }
}

/// Refuses to drop `name` while a view reads it (2BP01, as Postgres).
pub(crate) fn check_no_dependents(engine: &Engine, name: &str) -> Result<()> {
    let dependents: Vec<String> = engine
        .log()
        .streams()
        .into_iter()
        .filter(|stream| {
            StreamDefinition::from_json(&stream.name, stream.config.definition.as_ref())
                .ok()
                .and_then(|d| d.view)
                .is_some_and(|view| view.inputs.iter().any(|input| input == name))
        })
        .map(|stream| stream.name)
        .collect();
    if dependents.is_empty() {
        Ok(())
    } else {
        Err(ExecError::DependentObjects {
            name: name.to_string(),
            dependents,
        })
    }
}
