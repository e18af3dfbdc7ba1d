//! `ALTER STREAM name SET (retention = ..., retention_bytes = ..., segment_bytes = ...)`.

use tributary_planner::StreamOptions;

use crate::engine::{Engine, Output};
use crate::error::{ExecError, Result};

pub(crate) async fn execute(
    engine: &Engine,
    name: &str,
    options: &StreamOptions,
) -> Result<Output> {
    let record = engine
        .log()
        .stream(name)
        .map_err(|_| ExecError::UnknownStream(name.to_string()))?;
    engine.check_admin(name, crate::AdminChange::Retention)?;
    let mut config = record.config;
    if let Some(ms) = options.retention_ms {
        config.retention_ms = Some(ms);
    }
    if let Some(bytes) = options.retention_bytes {
        config.retention_bytes = Some(bytes);
    }
    if let Some(bytes) = options.segment_bytes {
        config.segment_bytes = Some(bytes);
    }
    engine.log().alter_stream(name, config).await?;
    Ok(Output::command("ALTER STREAM"))
}
