//! Engine errors as Postgres errors: the SQLSTATE the executor assigns and
//! its message.

use pgwire::error::{ErrorInfo, PgWireError};
use tributary_executor::ExecError;

/// An executor error as an `ErrorResponse`.
pub(crate) fn error_info(error: &ExecError) -> ErrorInfo {
    ErrorInfo::new("ERROR".into(), error.sqlstate().into(), error.to_string())
}

/// An executor error as a pgwire error (the connection stays usable).
pub(crate) fn to_pg(error: ExecError) -> PgWireError {
    tracing::debug!(sqlstate = error.sqlstate(), error = %error, "statement failed");
    PgWireError::UserError(Box::new(error_info(&error)))
}

/// A DataFusion error met while streaming rows out.
pub(crate) fn datafusion_to_pg(error: datafusion::error::DataFusionError) -> PgWireError {
    to_pg(ExecError::from(error))
}
