//! Postgres functions DataFusion lacks that stream queries need.

mod convert_from;

use datafusion::prelude::SessionContext;

/// Registers every function here with a session.
pub fn register_all(ctx: &SessionContext) {
    ctx.register_udf(convert_from::udf());
}
