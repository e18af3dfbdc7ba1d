//! `DROP MATERIALIZED VIEW [IF EXISTS]`, `DROP STREAM [IF EXISTS]` and
//! `DROP SINK [IF EXISTS]`: a view is dropped as a view and a stream as a
//! stream (else 42809, as Postgres answers `DROP TABLE` of a view), and
//! neither while a view or sink reads it, nor a sink's stream while the
//! sink writes it (2BP01). Dropping a sink stops its job and leaves its
//! stream, with what the sink wrote, to its readers.

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
        Err(_) if kind == DropKind::View => return Err(ExecError::UnknownView(name.to_string())),
        Err(_) => return Err(ExecError::UnknownStream(name.to_string())),
    };
    let definition = StreamDefinition::from_json(name, record.config.definition.as_ref())?;
    match (kind, definition.is_view()) {
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

/// Refuses to drop `name` while a view or sink reads it, or a sink writes
/// it (2BP01, as Postgres).
pub(crate) fn check_no_dependents(engine: &Engine, name: &str) -> Result<()> {
    let dependents: Vec<String> = engine
        .log()
        .streams()
        .into_iter()
        .filter_map(|stream| {
            let definition =
                StreamDefinition::from_json(&stream.name, stream.config.definition.as_ref())
                    .ok()?;
            let view = definition.view.as_ref()?;
            // A sink's stream depends on its sink, as its input does, and
            // a `LATE DATA TO` stream on the job that writes late rows to it.
            let writes = (stream.name == name && definition.sink().is_some())
                || view.late_data_to.as_deref() == Some(name);
            if !writes && !view.inputs.iter().any(|input| input == name) {
                return None;
            }
            Some(match definition.sink() {
                Some(sink) => format!("sink {sink}"),
                None => format!("materialized view {}", stream.name),
            })
        })
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

/// The stream the sink `sink` writes, if there is such a sink.
pub(crate) fn sink_target(engine: &Engine, sink: &str) -> Option<(String, StreamDefinition)> {
    engine.log().streams().into_iter().find_map(|stream| {
        let definition =
            StreamDefinition::from_json(&stream.name, stream.config.definition.as_ref()).ok()?;
        (definition.sink() == Some(sink)).then_some((stream.name, definition))
    })
}

/// `DROP SINK`: stops the sink's job; its stream becomes a plain stream.
pub(crate) async fn drop_sink(engine: &Engine, name: &str, if_exists: bool) -> Result<Output> {
    let tag = "DROP SINK";
    let Some((target, mut definition)) = sink_target(engine, name) else {
        return if if_exists {
            Ok(Output::command(tag))
        } else {
            Err(ExecError::UnknownSink(name.to_string()))
        };
    };
    engine.stop_writer(&target).await;
    definition.view = None;
    let mut config = engine.log().stream(&target)?.config;
    config.definition = Some(definition.to_json());
    engine.log().alter_stream(&target, config).await?;
    Ok(Output::command(tag))
}
