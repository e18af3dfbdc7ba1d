//! `CREATE STREAM`.

use std::time::{SystemTime, UNIX_EPOCH};

use tributary_planner::{ConnectorDefinition, CreateStream};
use tributary_storage::StreamConfig;

use crate::engine::{Engine, Output};
use crate::error::{ExecError, Result};

pub(crate) async fn execute(engine: &Engine, mut create: CreateStream) -> Result<Output> {
    if let Some(done) = exists_already(engine, &create.name, create.if_not_exists, "CREATE STREAM")?
    {
        return Ok(done);
    }
    // A generator's first event is stamped with the time the stream was
    // created, and that time is kept so a restart goes on with the same
    // events.
    if let Some(ConnectorDefinition::Nexmark(nexmark)) = &mut create.definition.connector {
        nexmark.base_time_ms.get_or_insert_with(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        });
    }
    let config = StreamConfig {
        partitions: create.options.partitions.unwrap_or(1),
        retention_ms: create.options.retention_ms,
        retention_bytes: create.options.retention_bytes,
        segment_bytes: create.options.segment_bytes,
        definition: Some(create.definition.to_json()),
        ..Default::default()
    };
    create_in_log(
        engine,
        &create.name,
        config,
        create.if_not_exists,
        "CREATE STREAM",
    )
    .await
}

/// What a CREATE of `name` answers when a stream or view of that name
/// exists: done with `IF NOT EXISTS`, else 42P07; `None` when it does not.
pub(crate) fn exists_already(
    engine: &Engine,
    name: &str,
    if_not_exists: bool,
    tag: &str,
) -> Result<Option<Output>> {
    match engine.log().stream(name) {
        Err(_) => Ok(None),
        Ok(_) if if_not_exists => Ok(Some(Output::command(tag))),
        Ok(_) => Err(ExecError::StreamExists(name.to_string())),
    }
}

/// Creates the stream `name` in the log and starts its background writer,
/// if it has one; `tag` is the statement's. With `if_not_exists`, a stream
/// created meanwhile by someone else is no error.
pub(crate) async fn create_in_log(
    engine: &Engine,
    name: &str,
    config: StreamConfig,
    if_not_exists: bool,
    tag: &str,
) -> Result<Output> {
    match engine.log().create_stream(name, config).await {
        Ok(_) => {
            engine.start_writer(name);
            Ok(Output::command(tag))
        }
        Err(tributary_storage::Error::StreamExists(_)) if if_not_exists => Ok(Output::command(tag)),
        Err(tributary_storage::Error::StreamExists(name)) => Err(ExecError::StreamExists(name)),
        Err(e) => Err(e.into()),
    }
}
