//! `COPY stream FROM STDIN`: the client's data arrives in pieces; each
//! complete line (record) is split into fields and gathered per column, every
//! few thousand rows the text becomes typed Arrow columns and then record
//! batches of the stream's format and partitions, and when the data ends
//! they are appended to the log. Any bad line
//! fails the whole `COPY` before the first append, so nothing of it is
//! stored.

mod convert;
pub(crate) mod progress;
mod records;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringBuilder, new_null_array};
use datafusion::arrow::datatypes::SchemaRef;
use tracing::debug;
use tributary_planner::{CopyFrom, StreamDefinition};

use self::convert::{Target, typed_column};
use self::records::RecordReader;
use crate::error::{ExecError, Result};
use crate::stream_sink::{EncodedRows, StreamSink};
use crate::stream_table::StreamTable;

/// Rows gathered as text before they are converted to typed columns.
const ROWS_PER_BATCH: usize = 8192;

/// A `COPY ... FROM STDIN` in progress.
#[derive(Debug)]
pub struct CopyIn {
    stream: String,
    sink: StreamSink,
    definition: StreamDefinition,
    values: SchemaRef,
    reader: RecordReader,
    header: bool,
    targets: Vec<Target>,
    /// Text of the current rows, one builder per target column.
    columns: Vec<StringBuilder>,
    /// The line number of each current row.
    row_lines: Vec<usize>,
    /// Bytes received that do not yet end a record.
    pending: Vec<u8>,
    /// Records seen so far (the number of the last line).
    lines: usize,
    /// The `\.` end marker was seen; what follows is ignored.
    ended: bool,
    scratch: Vec<u8>,
    /// Rows converted, checked and encoded so far.
    encoded: EncodedRows,
    /// Its entry among the COPYs in progress (SHOW JOBS).
    progress: progress::CopyRegistration,
}

impl CopyIn {
    /// Starts a `COPY` into `table`.
    pub(crate) fn new(
        table: &StreamTable,
        copy: &CopyFrom,
        progress: progress::CopyRegistration,
    ) -> Result<Self> {
        let definition = table.definition().clone();
        let values = table.schemas().values.clone();
        let names: Vec<String> = if copy.columns.is_empty() {
            values.fields().iter().map(|f| f.name().clone()).collect()
        } else {
            copy.columns.clone()
        };
        let mut targets: Vec<Target> = Vec::with_capacity(names.len());
        for name in names {
            let (value_index, field) = values
                .column_with_name(&name)
                .ok_or_else(|| tributary_planner::PlanError::UnknownColumn(name.clone()))?;
            if targets.iter().any(|t| t.value_index == value_index) {
                return Err(tributary_planner::PlanError::DuplicateColumn(name).into());
            }
            let sql_type = definition
                .columns
                .iter()
                .find(|c| c.name == name)
                .map_or_else(|| "bytea".to_string(), |c| c.sql_type.clone());
            targets.push(Target {
                name,
                sql_type,
                data_type: field.data_type().clone(),
                value_index,
            });
        }
        let sink = table.sink();
        Ok(Self {
            stream: copy.stream.clone(),
            encoded: sink.encoded_rows(),
            sink,
            definition,
            values,
            reader: RecordReader::new(copy),
            header: copy.header,
            columns: targets.iter().map(|_| StringBuilder::new()).collect(),
            targets,
            row_lines: Vec::new(),
            pending: Vec::new(),
            lines: 0,
            ended: false,
            scratch: Vec::new(),
            progress,
        })
    }

    /// How many columns each line holds.
    pub fn column_count(&self) -> usize {
        self.targets.len()
    }

    /// Lines read so far (a header line included): how far the client's
    /// data has come, for progress reports.
    pub fn lines_read(&self) -> usize {
        self.lines
    }

    /// The stream the rows go to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Takes the next piece of data. Pieces may split lines anywhere.
    pub fn push(&mut self, data: &[u8]) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        let mut data = data;
        // Complete the record left over from the last piece first.
        if !self.pending.is_empty() {
            let before = self.pending.len();
            self.pending.extend_from_slice(data);
            let Some(len) = self.reader.record_len(&self.pending) else {
                return Ok(());
            };
            let record = std::mem::take(&mut self.pending);
            self.record(&record[..len])?;
            data = &data[len - before..];
        }
        while !self.ended {
            let Some(len) = self.reader.record_len(data) else {
                break;
            };
            self.record(&data[..len])?;
            data = &data[len..];
        }
        if !self.ended {
            self.pending.extend_from_slice(data);
        }
        self.progress.read(self.lines);
        Ok(())
    }

    /// Ends the data: checks the last line, appends every row to the log,
    /// and returns how many there were.
    pub async fn finish(mut self) -> Result<u64> {
        if !self.ended && !self.pending.is_empty() {
            let last = std::mem::take(&mut self.pending);
            self.record(&last)?;
        }
        self.convert()?;
        self.progress.read(self.lines);
        self.progress.appending();
        let rows = self.sink.append(self.encoded).await?;
        debug!(stream = %self.stream, rows, "COPY appended");
        Ok(rows)
    }

    fn record(&mut self, record: &[u8]) -> Result<()> {
        self.lines += 1;
        if self.header && self.lines == 1 {
            return Ok(());
        }
        if RecordReader::is_end_marker(record) {
            self.ended = true;
            return Ok(());
        }
        let line = self.lines;
        let mut index = 0usize;
        let columns = &mut self.columns;
        let targets = &self.targets;
        let split = self.reader.fields(record, &mut self.scratch, |field| {
            let Some(column) = columns.get_mut(index) else {
                return Err(format!(
                    "extra data after last expected column ({})",
                    targets.len()
                ));
            };
            match field {
                None => column.append_null(),
                Some(bytes) => column
                    .append_value(std::str::from_utf8(bytes).map_err(|e| {
                        format!("invalid byte sequence for encoding \"UTF8\": {e}")
                    })?),
            }
            index += 1;
            Ok(())
        });
        let wrong = |reason: String, sqlstate| ExecError::CopyData {
            stream: self.stream.clone(),
            line,
            column: None,
            reason,
            sqlstate,
        };
        if let Err(reason) = split {
            let sqlstate = if reason.starts_with("invalid byte sequence") {
                "22021"
            } else {
                "22P04"
            };
            return Err(wrong(reason, sqlstate));
        }
        if index < self.targets.len() {
            return Err(wrong(
                format!("missing data for column \"{}\"", self.targets[index].name),
                "22P04",
            ));
        }
        self.row_lines.push(line);
        if self.row_lines.len() >= ROWS_PER_BATCH {
            self.convert()?;
        }
        Ok(())
    }

    /// Turns the gathered text into one typed batch of the stream's value
    /// columns, checks NOT NULL, and encodes it into record batches.
    fn convert(&mut self) -> Result<()> {
        let rows = self.row_lines.len();
        if rows == 0 {
            return Ok(());
        }
        let mut columns: Vec<ArrayRef> = self
            .values
            .fields()
            .iter()
            .map(|f| new_null_array(f.data_type(), rows))
            .collect();
        for (target, builder) in self.targets.iter().zip(&mut self.columns) {
            let text = builder.finish();
            columns[target.value_index] =
                typed_column(&self.stream, target, &text, &self.row_lines)?;
        }
        for (i, column) in self.definition.columns.iter().enumerate() {
            if !column.nullable
                && let Some(row) = (0..rows).find(|r| columns[i].is_null(*r))
            {
                return Err(ExecError::CopyData {
                    stream: self.stream.clone(),
                    line: self.row_lines[row],
                    column: Some(column.name.clone()),
                    reason: format!(
                        "null value in column \"{}\" of stream \"{}\" violates not-null constraint",
                        column.name, self.stream
                    ),
                    sqlstate: "23502",
                });
            }
        }
        let batch = RecordBatch::try_new(self.values.clone(), columns)
            .map_err(|e| ExecError::Internal(format!("COPY batch does not fit: {e}")))?;
        self.sink.encode(&[batch], &mut self.encoded)?;
        self.row_lines.clear();
        Ok(())
    }
}
