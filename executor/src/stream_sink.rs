//! INSERT into a stream: rows checked (NOT NULL), encoded by the stream's
//! format, partitioned by key (Kafka's partitioner) or round-robin, and
//! appended as record batches. Every row is checked and encoded before the
//! first append, so a bad row means nothing of the statement is appended.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::sink::DataSink;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::TryStreamExt;
use tributary_planner::{Format, StreamDefinition};
use tributary_storage::Log;
use tributary_storage::batch::{Compression, NewRecord, encode_batch};

use crate::error::{ExecError, Result};
use crate::format::{self, StreamSchemas};
use crate::partitioner::partition_for_key;

/// Records per encoded record batch.
const RECORDS_PER_BATCH: usize = 4096;

/// Bytes of record batches handed to the log in one append.
const APPEND_BYTES: usize = 4 << 20;

/// Rows checked and encoded into record batches, per partition, not yet
/// appended.
#[derive(Debug)]
pub struct EncodedRows {
    partitions: Vec<Vec<Bytes>>,
    rows: u64,
}

/// Appends inserted rows to a stream.
#[derive(Debug)]
pub struct StreamSink {
    log: Arc<Log>,
    stream: String,
    partitions: u32,
    definition: Arc<StreamDefinition>,
    schemas: StreamSchemas,
    round_robin: Arc<AtomicU32>,
}

impl StreamSink {
    /// A sink for one stream.
    pub fn new(
        log: Arc<Log>,
        stream: String,
        partitions: u32,
        definition: Arc<StreamDefinition>,
        schemas: StreamSchemas,
        round_robin: Arc<AtomicU32>,
    ) -> Self {
        Self {
            log,
            stream,
            partitions,
            definition,
            schemas,
            round_robin,
        }
    }

    /// Checks, encodes and appends rows (batches holding at least the value
    /// columns); returns how many. Nothing is appended unless every row is
    /// good.
    pub async fn write(&self, batches: &[RecordBatch]) -> Result<u64> {
        let mut encoded = self.encoded_rows();
        self.encode(batches, &mut encoded)?;
        self.append(encoded).await
    }

    /// An empty set of encoded rows for this stream's partitions.
    pub fn encoded_rows(&self) -> EncodedRows {
        EncodedRows {
            partitions: vec![Vec::new(); self.partitions as usize],
            rows: 0,
        }
    }

    /// Checks rows (batches holding at least the value columns) and encodes
    /// them into record batches of their partitions, added to `encoded`.
    /// Errors name rows counting from the first row `encoded` has seen.
    pub fn encode(&self, batches: &[RecordBatch], encoded: &mut EncodedRows) -> Result<()> {
        self.encode_routed(batches, None, encoded)
    }

    /// As [`Self::encode`], with every row going to `partition` whatever
    /// its key (a generator decides its partitions itself).
    pub fn encode_to_partition(
        &self,
        batches: &[RecordBatch],
        partition: u32,
        encoded: &mut EncodedRows,
    ) -> Result<()> {
        if partition >= self.partitions {
            return Err(ExecError::Internal(format!(
                "partition {partition} of {} with {} partitions",
                self.stream, self.partitions
            )));
        }
        self.encode_routed(batches, Some(partition), encoded)
    }

    fn encode_routed(
        &self,
        batches: &[RecordBatch],
        partition: Option<u32>,
        encoded: &mut EncodedRows,
    ) -> Result<()> {
        let routed = self.route(batches, partition, encoded.rows as usize)?;
        for (partition, records) in routed.into_iter().enumerate() {
            for chunk in records.chunks(RECORDS_PER_BATCH) {
                encoded.partitions[partition].push(encode_batch(chunk, Compression::None)?);
            }
        }
        encoded.rows += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        Ok(())
    }

    /// Appends encoded rows, each partition's batches in order and several
    /// to an append (so they share an fsync), partitions side by side.
    /// Returns how many rows.
    pub async fn append(&self, encoded: EncodedRows) -> Result<u64> {
        let appends =
            encoded
                .partitions
                .into_iter()
                .enumerate()
                .map(|(partition, batches)| async move {
                    let mut blob = BytesMut::new();
                    for batch in batches {
                        blob.extend_from_slice(&batch);
                        if blob.len() >= APPEND_BYTES {
                            self.log
                                .append(&self.stream, partition as u32, blob.split().freeze())
                                .await?;
                        }
                    }
                    if !blob.is_empty() {
                        self.log
                            .append(&self.stream, partition as u32, blob.freeze())
                            .await?;
                    }
                    Ok::<_, ExecError>(())
                });
        // Every partition's appends finish (or fail) before this returns:
        // none is left running to land after the caller has moved on.
        for result in futures::future::join_all(appends).await {
            result?;
        }
        Ok(encoded.rows)
    }

    /// Turns rows (with the table schema) into records per partition: the
    /// partition given, or else by key. `rows_before` numbers the rows in
    /// errors.
    fn route(
        &self,
        batches: &[RecordBatch],
        fixed_partition: Option<u32>,
        rows_before: usize,
    ) -> Result<Vec<Vec<NewRecord>>> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut routed: Vec<Vec<NewRecord>> = vec![Vec::new(); self.partitions as usize];
        let mut rows_before = rows_before;
        for batch in batches {
            let values = self.value_columns(batch)?;
            self.check_not_null(&values, rows_before)?;
            let (keys, encoded) = match self.definition.format {
                Format::Raw => (binary_column(&values, 0)?, binary_column(&values, 1)?),
                Format::Json | Format::Csv => {
                    let encoded = format::encode(&self.definition, &values)?;
                    (
                        self.key_column(&values)?,
                        encoded.into_iter().map(Some).collect(),
                    )
                }
            };
            for (key, value) in keys.into_iter().zip(encoded) {
                let partition = match (fixed_partition, &key) {
                    (Some(partition), _) => partition,
                    (None, Some(key)) => partition_for_key(key, self.partitions),
                    (None, None) => {
                        self.round_robin.fetch_add(1, Ordering::Relaxed) % self.partitions
                    }
                };
                routed[partition as usize].push(NewRecord {
                    key,
                    value,
                    headers: Vec::new(),
                    timestamp_ms: now_ms,
                });
            }
            rows_before += batch.num_rows();
        }
        Ok(routed)
    }

    /// The value columns of an input batch, in definition order.
    fn value_columns(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut columns = Vec::with_capacity(self.schemas.values.fields().len());
        for field in self.schemas.values.fields() {
            let column = batch.column_by_name(field.name()).ok_or_else(|| {
                ExecError::Internal(format!("insert input lacks column {}", field.name()))
            })?;
            columns.push(column.clone());
        }
        RecordBatch::try_new(self.schemas.values.clone(), columns)
            .map_err(|e| ExecError::Internal(format!("insert input does not fit: {e}")))
    }

    fn check_not_null(&self, values: &RecordBatch, rows_before: usize) -> Result<()> {
        for (i, column) in self.definition.columns.iter().enumerate() {
            if column.nullable {
                continue;
            }
            let array = values.column(i);
            if let Some(row) = (0..array.len()).find(|r| array.is_null(*r)) {
                return Err(ExecError::NotNull {
                    stream: self.stream.clone(),
                    column: column.name.clone(),
                    row: rows_before + row + 1,
                });
            }
        }
        Ok(())
    }

    /// The record key of each row: the key column's text, if there is one.
    fn key_column(&self, values: &RecordBatch) -> Result<Vec<Option<Bytes>>> {
        let Some(key) = &self.definition.key else {
            return Ok(vec![None; values.num_rows()]);
        };
        let array = values
            .column_by_name(key)
            .ok_or_else(|| ExecError::Internal(format!("key column {key} missing")))?;
        let text = cast(array, &DataType::Utf8)
            .map_err(|e| ExecError::NotSupported(format!("key column {key} of this type ({e})")))?;
        let text = text.as_string::<i32>();
        Ok(text
            .iter()
            .map(|v| v.map(|s| Bytes::copy_from_slice(s.as_bytes())))
            .collect())
    }
}

fn binary_column(values: &RecordBatch, index: usize) -> Result<Vec<Option<Bytes>>> {
    let array = values.column(index);
    let binary = array
        .as_binary_opt::<i32>()
        .ok_or_else(|| ExecError::Internal("raw stream column is not binary".into()))?;
    Ok(binary
        .iter()
        .map(|v| v.map(Bytes::copy_from_slice))
        .collect())
}

impl DisplayAs for StreamSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StreamSink: stream={}, partitions={}",
            self.stream, self.partitions
        )
    }
}

#[async_trait]
impl DataSink for StreamSink {
    fn schema(&self) -> &SchemaRef {
        &self.schemas.table
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> DfResult<u64> {
        let batches: Vec<RecordBatch> = data.try_collect().await?;
        Ok(self.write(&batches).await?)
    }
}
