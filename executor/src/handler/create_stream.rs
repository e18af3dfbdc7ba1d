//! `CREATE STREAM`.

use tributary_planner::CreateStream;
use tributary_storage::StreamConfig;

use crate::engine::{Engine, Output};
use crate::error::{ExecError, Result};

pub(crate) async fn execute(engine: &Engine, create: CreateStream) -> Result<Output> {
    if engine.log().stream(&create.name).is_ok() {
        if create.if_not_exists {
            return Ok(Output::command("CREATE STREAM"));
        }
        return Err(ExecError::StreamExists(create.name));
    }
    let config = StreamConfig {
        partitions: create.options.partitions.unwrap_or(1),
        retention_ms: create.options.retention_ms,
        retention_bytes: create.options.retention_bytes,
        segment_bytes: create.options.segment_bytes,
        definition: Some(create.definition.to_json()),
        ..Default::default()
    };
    match engine.log().create_stream(&create.name, config).await {
        Ok(_) => Ok(Output::command("CREATE STREAM")),
        Err(tributary_storage::Error::StreamExists(_)) if create.if_not_exists => {
            Ok(Output::command("CREATE STREAM"))
        }
        Err(tributary_storage::Error::StreamExists(name)) => Err(ExecError::StreamExists(name)),
        Err(e) => Err(e.into()),
    }
}
