//! `DROP MATERIALIZED VIEW [IF EXISTS]`, and the checks `DROP STREAM`
//! shares with it: a view is dropped as a view and a stream as a stream,
//! and neither while a view reads it.

use tributary_planner::StreamDefinition;

use crate::engine::{Engine, Output};
use crate::error::{ExecError, Result};

pub(crate) async fn execute(engine: &Engine, name: &str, if_exists: bool) -> Result<Output> {
    let record = match engine.log().stream(name) {
        Ok(record) => record,
        Err(_) if if_exists => return Ok(Output::command("DROP MATERIALIZED VIEW")),
        Err(_) => return Err(ExecError::UnknownStream(name.to_string())),
    };
    let definition = StreamDefinition::from_json(name, record.config.definition.as_ref())?;
    if definition.view.is_none() {
        return Err(ExecError::WrongObjectType {
            name: name.to_string(),
            expected: "materialized view",
            hint: Some("use DROP STREAM"),
        });
    }
    check_no_dependents(engine, name)?;
    engine.delete_stream(name).await?;
    Ok(Output::command("DROP MATERIALIZED VIEW"))
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
