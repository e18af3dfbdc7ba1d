//! `DROP STREAM [IF EXISTS]`.

use tributary_planner::StreamDefinition;

use crate::engine::{Engine, Output};
use crate::error::{ExecError, Result};
use crate::handler::drop_view::check_no_dependents;

pub(crate) async fn execute(engine: &Engine, name: &str, if_exists: bool) -> Result<Output> {
    let record = match engine.log().stream(name) {
        Ok(record) => record,
        Err(_) if if_exists => return Ok(Output::command("DROP STREAM")),
        Err(_) => return Err(ExecError::UnknownStream(name.to_string())),
    };
    let definition = StreamDefinition::from_json(name, record.config.definition.as_ref())?;
    if definition.view.is_some() {
        return Err(ExecError::WrongObjectType {
            name: name.to_string(),
            expected: "stream",
            hint: Some("use DROP MATERIALIZED VIEW"),
        });
    }
    check_no_dependents(engine, name)?;
    match engine.delete_stream(name).await {
        Ok(()) => Ok(Output::command("DROP STREAM")),
        Err(ExecError::Storage(tributary_storage::Error::UnknownStream(_))) if if_exists => {
            Ok(Output::command("DROP STREAM"))
        }
        Err(ExecError::Storage(tributary_storage::Error::UnknownStream(name))) => {
            Err(ExecError::UnknownStream(name))
        }
        Err(e) => Err(e),
    }
}
