//! `SUBSCRIBE`: a query result that goes on as changes happen (see
//! [`crate::job::subscribe`]), as an unbounded DataFusion table so that
//! pgwire streams its rows as they come and a cancel ends it.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::physical_plan::streaming::PartitionStream;
use tributary_planner::Subscribe;

use crate::engine::Output;
use crate::error::Result;
use crate::job::subscribe::Feed;
use crate::session::Session;

pub(crate) async fn execute(session: &Session, subscribe: &Subscribe) -> Result<Output> {
    let state = session.context().state();
    let feed = Feed::new(session.engine().log().clone(), &state, subscribe).await?;
    let schema = feed.schema().clone();
    let table = StreamingTable::try_new(schema, vec![Arc::new(feed)])?.with_infinite_table(true);
    Ok(Output::Rows(session.context().read_table(Arc::new(table))?))
}

/// The columns `subscribe` would send (`op` first), checked and planned
/// but not started: the extended protocol describes them at Parse.
pub(crate) async fn schema(session: &Session, subscribe: &Subscribe) -> Result<SchemaRef> {
    let state = session.context().state();
    let feed = Feed::new(session.engine().log().clone(), &state, subscribe).await?;
    Ok(feed.schema().clone())
}
