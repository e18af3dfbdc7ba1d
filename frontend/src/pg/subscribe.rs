//! `SUBSCRIBE` and `COPY (SUBSCRIBE ...) TO STDOUT`, over the simple and
//! the extended protocol. A subscription never completes, so its rows are written from
//! inside the handler, each batch flushed as it comes (pgwire's own
//! response writer buffers rows until the statement ends). It ends when
//! the client cancels (pgwire then answers 57014) or goes away: a client
//! that closed its connection is noticed when a write to it fails, so a
//! subscription with nothing to send writes a message every few seconds
//! that drivers take in silently (a `ParameterStatus` repeating a
//! setting the client was given at startup). `tributary_pgwire_subscriptions`
//! counts the subscriptions open.

use std::sync::Arc;
use std::time::Duration;

use arrow_pg::datatypes::arrow_schema_to_pg_fields;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::ClientInfo;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyOutResponse};
use pgwire::messages::data::{FieldDescription, RowDescription};
use pgwire::messages::startup::ParameterStatus;
use tributary_executor::Output;

use super::errors::datafusion_to_pg;
use super::responses::data_rows;
use super::row_fixes::float_text;

/// How long a subscription with nothing to send waits before it writes
/// to the client anyway, to find out whether the client is still there
/// (the second write after the client went away fails).
const KEEPALIVE: Duration = Duration::from_secs(2);

/// The gauge of open subscriptions.
const OPEN_SUBSCRIPTIONS: &str = "tributary_pgwire_subscriptions";

/// Counts a subscription as open until dropped.
struct Open;

impl Open {
    fn new() -> Self {
        metrics::gauge!(OPEN_SUBSCRIPTIONS).increment(1.0);
        Self
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!(OPEN_SUBSCRIPTIONS).decrement(1.0);
    }
}

/// A message the client takes in without a word: a setting it was given
/// at startup (pgwire's default), with the same value.
fn keepalive() -> PgWireBackendMessage {
    PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
        "integer_datetimes".to_string(),
        "on".to_string(),
    ))
}

/// Writes a subscription's rows to the client as they come: as a result
/// set in `format`, or with `copy` as COPY text data. `describe` sends
/// the result's row description first, as the simple protocol does; the
/// extended protocol described it already (Describe).
pub(crate) async fn stream<C>(
    client: &mut C,
    output: Output,
    copy: bool,
    format: &Format,
    describe: bool,
) -> PgWireResult<Response>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let Output::Rows(frame) = output else {
        return Ok(Response::Execution(Tag::new("SUBSCRIBE")));
    };
    let schema = frame.schema().as_arrow().clone();
    let mut batches = frame.execute_stream().await.map_err(datafusion_to_pg)?;
    let columns = schema.fields().len();
    let fields = Arc::new(arrow_schema_to_pg_fields(&schema, format, None)?);
    if copy {
        client
            .send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
                0,
                columns as i16,
                vec![0; columns],
            )))
            .await?;
    } else if describe {
        let description = fields.iter().map(FieldDescription::from).collect();
        client
            .send(PgWireBackendMessage::RowDescription(RowDescription::new(
                description,
            )))
            .await?;
    }
    let _open = Open::new();
    let mut rows = 0usize;
    loop {
        let batch = match tokio::time::timeout(KEEPALIVE, batches.next()).await {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            // Nothing to send: the write tells whether the client is there.
            Err(_) => {
                client.send(keepalive()).await?;
                continue;
            }
        };
        let batch = batch.map_err(datafusion_to_pg)?;
        rows += batch.num_rows();
        if copy {
            for line in copy_lines(&batch)? {
                client
                    .feed(PgWireBackendMessage::CopyData(CopyData::new(line.into())))
                    .await?;
            }
        } else {
            feed_rows(client, &fields, batch).await?;
        }
        client.flush().await?;
    }
    if copy {
        client
            .send(PgWireBackendMessage::CopyDone(CopyDone::new()))
            .await?;
        Ok(Response::Execution(Tag::new("COPY").with_rows(rows)))
    } else {
        Ok(Response::Execution(Tag::new("SELECT").with_rows(rows)))
    }
}

async fn feed_rows<C>(
    client: &mut C,
    fields: &Arc<Vec<FieldInfo>>,
    batch: RecordBatch,
) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for row in data_rows(fields, batch) {
        client.feed(PgWireBackendMessage::DataRow(row?)).await?;
    }
    Ok(())
}

/// The rows of `batch` in COPY's text format: values separated by tabs,
/// NULL as `\N`, backslash, tab, newline and carriage return escaped,
/// floats as Postgres prints them (`100`, not `100.0`).
fn copy_lines(batch: &RecordBatch) -> PgWireResult<Vec<String>> {
    let options = FormatOptions::new()
        .with_null("\\N")
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f%:z"));
    let formatters = batch
        .columns()
        .iter()
        .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    Ok((0..batch.num_rows())
        .map(|row| {
            let mut line = formatters
                .iter()
                .enumerate()
                .map(|(column, formatter)| {
                    let value = formatter.value(row).to_string();
                    let array = batch.column(column);
                    if array.is_null(row) {
                        return value;
                    }
                    let single = match array.data_type() {
                        DataType::Float32 => Some(true),
                        DataType::Float64 => Some(false),
                        _ => None,
                    };
                    match single.and_then(|single| float_text(value.as_bytes(), single)) {
                        Some(text) => String::from_utf8_lossy(&text).into_owned(),
                        None => escape_copy_text(&value),
                    }
                })
                .collect::<Vec<_>>()
                .join("\t");
            line.push('\n');
            line
        })
        .collect())
}

fn escape_copy_text(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\t' => escaped.push_str("\\t"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_postgres_escapes() {
        assert_eq!(escape_copy_text("a\tb\\c\nd\re"), "a\\tb\\\\c\\nd\\re");
    }

    #[test]
    fn copy_text_writes_floats_and_nulls_as_postgres() {
        use datafusion::arrow::array::{Float32Array, Float64Array, StringArray};
        let batch = RecordBatch::try_from_iter([
            (
                "d",
                Arc::new(Float64Array::from(vec![
                    Some(100.0),
                    Some(0.5),
                    None,
                    Some(1e20),
                ])) as Arc<dyn Array>,
            ),
            (
                "r",
                Arc::new(Float32Array::from(vec![
                    Some(2.0),
                    Some(-1.25),
                    Some(3.0),
                    None,
                ])),
            ),
            (
                "t",
                Arc::new(StringArray::from(vec![
                    Some("a\tb"),
                    None,
                    Some("c"),
                    Some("d"),
                ])),
            ),
        ])
        .unwrap();
        assert_eq!(
            copy_lines(&batch).unwrap(),
            [
                "100\t2\ta\\tb\n",
                "0.5\t-1.25\t\\N\n",
                "\\N\t3\tc\n",
                "1e+20\t\\N\td\n"
            ]
        );
    }
}
