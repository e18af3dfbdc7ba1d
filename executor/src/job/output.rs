//! A job's output: its changes turned into record batches of JSON change
//! records for its stream. The encoding runs on a blocking thread while
//! the job goes on reading and computing, so a simple view (a projection,
//! a filter) keeps two cores busy instead of one.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tokio::task::JoinHandle;
use tributary_planner::StreamDefinition;
use tributary_storage::batch_builder::BatchBuilder;

use super::operator::Changes;
use super::progress::{self, PROGRESS_HEADER, Progress};
use super::{OP_COLUMN, RECORD_KEY_COLUMN};
use crate::error::{ExecError, Result};
use crate::format;

/// Turns a job's output rows into one record batch: change records for a
/// view, plain rows for a sink.
#[derive(Debug)]
pub(crate) struct ChangeEncoder {
    /// The job's stream (json).
    definition: StreamDefinition,
    /// Its value columns.
    values: SchemaRef,
    /// What each record's JSON holds: for a view, `op` then the values;
    /// for a sink, the values.
    encoded: SchemaRef,
    /// The job is a sink: its records are rows, without `op`.
    pub(crate) sink: bool,
}

impl ChangeEncoder {
    pub(crate) fn new(definition: StreamDefinition, values: SchemaRef) -> Self {
        let sink = definition.sink().is_some();
        let mut fields = Vec::new();
        if !sink {
            fields.push(Field::new(OP_COLUMN, DataType::Utf8, false));
        }
        fields.extend(values.fields().iter().map(|f| f.as_ref().clone()));
        Self {
            definition,
            values,
            encoded: Arc::new(Schema::new(fields)),
            sink,
        }
    }

    /// Appends to `out` one record batch for `changes` (at most
    /// [`super::CHUNK_ROWS`] rows); its last record carries `progress`, what the
    /// output covers. Keyed changes have their key's values as the record
    /// key, as a JSON object; rows taken back have `op` `-`.
    fn encode_into(
        &self,
        changes: &Changes,
        progress: &Progress,
        out: &mut BytesMut,
    ) -> Result<()> {
        let rows = &changes.rows;
        let taken_back = |i: usize| changes.retract.as_ref().is_some_and(|r| r.value(i));
        let mut columns: Vec<ArrayRef> = Vec::new();
        if !self.sink {
            columns.push(Arc::new(StringArray::from_iter_values(
                (0..rows.num_rows()).map(|i| if taken_back(i) { "-" } else { "+" }),
            )));
        }
        for (column, field) in rows.columns().iter().zip(self.values.fields()) {
            columns.push(cast(column, field.data_type())?);
        }
        let encoded = RecordBatch::try_new(self.encoded.clone(), columns)?;
        let count = encoded.num_rows();
        let keys = match &changes.keys {
            None => vec![None; count],
            Some(keys) if keys.num_columns() == 0 => vec![Some(Bytes::from_static(b"{}")); count],
            // Keys read from a view with GROUP BY go out as they came.
            Some(keys) if keys.schema().field(0).name() == RECORD_KEY_COLUMN => keys
                .column(0)
                .as_binary::<i32>()
                .iter()
                .map(|key| key.map(Bytes::copy_from_slice))
                .collect(),
            Some(keys) => format::encode_json(keys)?.into_iter().map(Some).collect(),
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let progress = progress::encode(progress);
        let last_headers = [(PROGRESS_HEADER, Some(&progress[..]))];
        out.reserve(json_capacity(rows));
        let mut batch = BatchBuilder::new(out, now_ms);
        let mut values = format::ValueWriter::new(&self.definition, &encoded)?;
        // Each value is written in place, its length guessed from the one
        // before.
        let mut value_len = 0;
        for (i, key) in keys.iter().enumerate() {
            let headers: &[(&str, Option<&[u8]>)] =
                if i + 1 == count { &last_headers } else { &[] };
            value_len = batch.push_written(key.as_deref(), headers, now_ms, value_len, |out| {
                values.write_row(i, out)
            });
        }
        Ok(batch.finish()?)
    }
}

/// More than the change records of `rows` take as JSON (the keys, `op`,
/// numbers and timestamps as text), so that their buffer is not copied as
/// it grows: what is reserved and not written is never touched.
fn json_capacity(rows: &RecordBatch) -> usize {
    rows.get_array_memory_size() * 2 + rows.num_rows() * 64 + 128
}

/// Output changes of a job not yet encoded, each chunk with what the
/// output covers once it is in the log.
#[derive(Debug, Default)]
pub(crate) struct PendingOutput {
    chunks: Vec<(Changes, Progress)>,
    /// What the chunks' rows take in memory: about what their JSON takes.
    bytes: usize,
}

impl PendingOutput {
    /// Adds a chunk of changes (at most [`super::CHUNK_ROWS`] rows), and what the
    /// output covers with it.
    pub(crate) fn push(&mut self, changes: Changes, covered: Progress) {
        self.bytes += changes.rows.get_array_memory_size();
        self.chunks.push((changes, covered));
    }

    /// About how many bytes the encoded chunks will take.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Starts encoding the chunks on a blocking thread, one record batch
    /// each; `None` if there are none. Leaves `self` empty.
    pub(crate) fn encode(&mut self, encoder: &Arc<ChangeEncoder>) -> Option<Encoding> {
        if self.chunks.is_empty() {
            return None;
        }
        let chunks = std::mem::take(&mut self.chunks);
        self.bytes = 0;
        let encoder = encoder.clone();
        Some(Encoding(tokio::task::spawn_blocking(move || {
            // One buffer for all, never copied as it grows.
            let capacity = chunks.iter().map(|(c, _)| json_capacity(&c.rows)).sum();
            let mut out = BytesMut::with_capacity(capacity);
            for (changes, covered) in &chunks {
                encoder.encode_into(changes, covered, &mut out)?;
            }
            Ok(out.freeze())
        })))
    }
}

/// Record batches being encoded on a blocking thread.
#[derive(Debug)]
pub(crate) struct Encoding(JoinHandle<Result<Bytes>>);

impl Encoding {
    /// The record batches, once encoded.
    pub(crate) async fn bytes(self) -> Result<Bytes> {
        self.0
            .await
            .map_err(|e| ExecError::Internal(format!("encoding a job's output failed: {e}")))?
    }
}
