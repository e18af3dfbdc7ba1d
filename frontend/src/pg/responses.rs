//! Engine outputs as pgwire responses.

use std::sync::Arc;

use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion::arrow::array::RecordBatch;
use futures::{StreamExt, stream};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;
use tributary_executor::Output;

use super::cancel::Cancel;
use super::errors::{datafusion_to_pg, to_pg};
use super::row_fixes::RowFixes;

/// Turns an output into a response, streaming rows as they are produced
/// until the statement is cancelled.
pub(crate) async fn to_response(
    output: Output,
    format: &Format,
    options: Arc<FormatOptions>,
    cancel: &Cancel,
) -> PgWireResult<Response> {
    match output {
        Output::Command { tag, rows, .. } => Ok(Response::Execution(command_tag(&tag, rows))),
        Output::Rows(frame) => {
            let fields = Arc::new(arrow_schema_to_pg_fields(
                frame.schema().as_arrow(),
                format,
                Some(options),
            )?);
            let batches = frame.execute_stream().await.map_err(datafusion_to_pg)?;
            let row_fields = fields.clone();
            let rows = batches
                .map(move |batch: datafusion::error::Result<RecordBatch>| {
                    let rows: Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send + Sync> =
                        match batch {
                            Ok(batch) => data_rows(&row_fields, batch),
                            Err(e) => Box::new(std::iter::once(Err(datafusion_to_pg(e)))),
                        };
                    stream::iter(rows)
                })
                .flatten();
            Ok(Response::Query(QueryResponse::new(
                fields,
                cancel.guard(rows),
            )))
        }
    }
}

/// The rows of `batch` as DataRows of `fields`, with the values Postgres
/// writes differently from arrow-pg fixed.
pub(crate) fn data_rows(
    fields: &Arc<Vec<FieldInfo>>,
    batch: RecordBatch,
) -> Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send + Sync> {
    let fixes = RowFixes::for_batch(&batch, fields);
    let rows = encode_recordbatch(fields.clone(), batch);
    if fixes.is_empty() {
        rows
    } else {
        Box::new(
            rows.enumerate()
                .map(move |(n, row)| row.map(|row| fixes.apply(row, n))),
        )
    }
}

/// The completion tag Postgres clients expect (`INSERT 0 n`).
fn command_tag(tag: &str, rows: Option<u64>) -> Tag {
    let mut out = Tag::new(tag);
    if tag == "INSERT" {
        out = out.with_oid(0);
    }
    if let Some(rows) = rows {
        out = out.with_rows(rows as usize);
    }
    out
}

/// Converts an engine error for the simple protocol, where an error ends
/// the statement list but not the connection.
pub(crate) fn error_response(error: tributary_executor::ExecError) -> Response {
    match to_pg(error) {
        pgwire::error::PgWireError::UserError(info) => Response::Error(info),
        other => Response::Error(Box::new(pgwire::error::ErrorInfo::new(
            "ERROR".into(),
            "XX000".into(),
            other.to_string(),
        ))),
    }
}
