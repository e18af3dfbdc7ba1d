//! `DROP STREAM [IF EXISTS]`.

use crate::engine::{Engine, Output};
use crate::error::{ExecError, Result};

pub(crate) async fn execute(engine: &Engine, name: &str, if_exists: bool) -> Result<Output> {
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
