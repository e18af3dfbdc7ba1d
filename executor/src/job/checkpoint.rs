//! Checkpoints of stateful jobs (aggregations, windows): at an interval,
//! between two steps (where a barrier would be, the job being one
//! pipeline), the operators' state is written to the object store as an
//! Arrow IPC file, with a manifest of what it covers (the input offsets
//! its rows came from, the watermarks), registered in the metadata store.
//! It is written after the step's output is in the log, so a checkpoint
//! never covers input whose output could be lost. On restart a job
//! restores its newest checkpoint and replays only the input after it
//! (the output of the part up to its output's end being dropped, as the
//! log holds it). Older checkpoints are deleted.

use std::collections::BTreeMap;
use std::io::Cursor as IoCursor;
use std::time::Instant;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};
use tributary_storage::Log;
use tributary_storage::metadata::CheckpointRecord;

use crate::error::{ExecError, Result};
use crate::job::progress::InputOffsets;

/// Checkpoints kept per job: the newest, and one before it.
const CHECKPOINTS_KEPT: usize = 2;

/// What a checkpoint covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// Each input partition's next offset to read after the state.
    pub(crate) input_offsets: InputOffsets,
    /// Each input partition's watermark, in microseconds.
    pub(crate) partition_watermarks: BTreeMap<u32, i64>,
    /// The job's watermark.
    pub(crate) watermark: Option<i64>,
}

/// A checkpoint on its way to the object store.
#[derive(Debug)]
pub(crate) struct Checkpoint {
    pub(crate) manifest: Manifest,
    /// The operators' state as an Arrow IPC file, if they have any.
    pub(crate) state: Option<Bytes>,
}

/// A checkpoint read back.
#[derive(Debug)]
pub(crate) struct Restored {
    pub(crate) manifest: Manifest,
    pub(crate) state: Option<RecordBatch>,
}

/// The name of a job's checkpoints: its stream's incarnation.
pub(crate) fn job_key(log: &Log, stream: &str) -> Result<String> {
    Ok(format!("job-{}", log.stream(stream)?.stream_id))
}

/// Restores and writes one job's checkpoints.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    job: String,
    /// The view or sink the job computes, as metrics name it.
    name: String,
    epoch: i64,
}

impl Checkpointer {
    /// The checkpoints of `job`, which computes the view or sink `name`.
    pub(crate) fn new(job: String, name: &str) -> Self {
        Self {
            job,
            name: name.to_string(),
            epoch: 0,
        }
    }

    /// The job's newest checkpoint, if it has one.
    pub(crate) async fn restore(&mut self, log: &Log) -> Result<Option<Restored>> {
        let Some(newest) = log
            .metadata()
            .checkpoints(&self.job)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        self.epoch = newest.epoch;
        let manifest: Manifest = serde_json::from_str(&newest.manifest).map_err(|e| {
            ExecError::Internal(format!(
                "checkpoint {} of {}: bad manifest: {e}",
                newest.epoch, self.job
            ))
        })?;
        let path = Path::from(newest.object_path.as_str());
        let bytes = log
            .object_store()
            .get(&path)
            .await
            .map_err(|e| ExecError::Internal(format!("reading checkpoint {path}: {e}")))?;
        let bytes = bytes
            .bytes()
            .await
            .map_err(|e| ExecError::Internal(format!("reading checkpoint {path}: {e}")))?;
        Ok(Some(Restored {
            manifest,
            state: decode_state(bytes)?,
        }))
    }

    /// Writes `checkpoint` (after the output it covers is in the log),
    /// registers it, and deletes the ones it makes old.
    pub(crate) async fn write(&mut self, log: &Log, checkpoint: Checkpoint) -> Result<()> {
        let started = Instant::now();
        self.epoch += 1;
        let path = format!("checkpoints/{}/{:020}.arrow", self.job, self.epoch);
        let bytes = checkpoint.state.unwrap_or_default();
        let size = bytes.len();
        log.object_store()
            .put(&Path::from(path.as_str()), PutPayload::from(bytes))
            .await
            .map_err(|e| ExecError::Internal(format!("writing checkpoint {path}: {e}")))?;
        let manifest = serde_json::to_string(&checkpoint.manifest)
            .map_err(|e| ExecError::Internal(format!("checkpoint manifest: {e}")))?;
        log.metadata()
            .register_checkpoint(&CheckpointRecord {
                job: self.job.clone(),
                epoch: self.epoch,
                object_path: path,
                manifest,
            })
            .await?;
        metrics::histogram!("tributary_job_checkpoint_duration_seconds", "job" => self.name.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("tributary_job_checkpoint_bytes_total", "job" => self.name.clone())
            .increment(size as u64);
        debug!(
            job = self.job,
            epoch = self.epoch,
            bytes = size,
            ms = started.elapsed().as_millis() as u64,
            "checkpoint written"
        );
        let old = log.metadata().checkpoints(&self.job).await?;
        delete(log, old.into_iter().skip(CHECKPOINTS_KEPT)).await;
        Ok(())
    }
}

/// Deletes every checkpoint of `job` (its view was dropped).
pub(crate) async fn delete_all(log: &Log, job: &str) {
    match log.metadata().checkpoints(job).await {
        Ok(all) => delete(log, all.into_iter()).await,
        Err(e) => warn!(job, error = %e, "could not list checkpoints to delete"),
    }
}

async fn delete(log: &Log, checkpoints: impl Iterator<Item = CheckpointRecord>) {
    for checkpoint in checkpoints {
        let path = Path::from(checkpoint.object_path.as_str());
        if let Err(e) = log.object_store().delete(&path).await {
            warn!(path = %path, error = %e, "could not delete an old checkpoint");
        }
        if let Err(e) = log
            .metadata()
            .delete_checkpoint(&checkpoint.job, checkpoint.epoch)
            .await
        {
            warn!(job = checkpoint.job, error = %e, "could not forget an old checkpoint");
        }
    }
}

/// Operator state as an Arrow IPC file.
pub(crate) fn encode_state(state: &RecordBatch) -> Result<Bytes> {
    let mut buffer = Vec::new();
    let mut writer = FileWriter::try_new(&mut buffer, &state.schema())?;
    writer.write(state)?;
    writer.finish()?;
    drop(writer);
    Ok(Bytes::from(buffer))
}

/// Operator state from an Arrow IPC file ([`encode_state`]); `None` if
/// empty.
pub(crate) fn decode_state(bytes: Bytes) -> Result<Option<RecordBatch>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut reader = FileReader::try_new(IoCursor::new(bytes), None)?;
    reader.next().transpose().map_err(Into::into)
}
