//! `SHOW CONSUMER GROUPS`: each group that committed offsets, with how many
//! streams and partitions it committed and its total lag, from
//! `tributary.consumer_lag`.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::engine::Output;
use crate::error::Result;
use crate::session::Session;

const QUERY: &str = "SELECT group_id, count(DISTINCT stream) AS streams, \
                     count(*) AS partitions, sum(lag) AS lag \
                     FROM tributary.consumer_lag GROUP BY group_id ORDER BY group_id";

pub(crate) async fn execute(session: &Session) -> Result<Output> {
    Ok(Output::Rows(session.context().sql(QUERY).await?))
}

/// The columns of `SHOW CONSUMER GROUPS`.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("group_id", DataType::Utf8, false),
        Field::new("streams", DataType::Int64, false),
        Field::new("partitions", DataType::Int64, false),
        Field::new("lag", DataType::Int64, true),
    ]))
}
