//! Where a job is in its input, kept with its output: the last record of
//! every batch a job appends carries, in a header, the offset of each
//! input partition up to which the job's output is in the log. A batch is
//! durable whole or not at all, so on restart the job reads its output's
//! last batch and goes on from there: output is neither lost nor written
//! twice, without a separate commit. (Input whose rows all fell to a
//! filter leaves no batch; after a restart it is read again and again
//! makes nothing.) A job that closes windows also keeps its watermark
//! there, so that after a restart it closes no window a second time.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tributary_storage::Log;
use tributary_storage::batch::decode_batch;

use crate::error::{ExecError, Result};

/// The header naming the input offsets.
pub(crate) const PROGRESS_HEADER: &str = "tributary.job.offsets";

/// Each input partition's next offset to read.
pub(crate) type InputOffsets = BTreeMap<u32, i64>;

/// What a job's output covers: the input offsets, and the watermark its
/// windows were closed by (jobs with `EMIT ON WINDOW CLOSE`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Progress {
    /// Each input partition's next offset to read.
    pub(crate) offsets: InputOffsets,
    /// The watermark, in microseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) watermark: Option<i64>,
}

/// The header value for `progress`.
pub(crate) fn encode(progress: &Progress) -> Bytes {
    // Maps and integers always serialize.
    Bytes::from(serde_json::to_vec(progress).unwrap_or_default())
}

/// The progress in a header value; a plain map of offsets is what jobs
/// wrote before watermarks were kept.
fn decode(value: &[u8]) -> serde_json::Result<Progress> {
    serde_json::from_slice(value).or_else(|e| {
        serde_json::from_slice::<InputOffsets>(value)
            .map(|offsets| Progress {
                offsets,
                watermark: None,
            })
            .map_err(|_| e)
    })
}

/// Where the job writing `output` (partition 0) had got to: the progress
/// in its last batch, or none when it has written nothing.
pub(crate) async fn resume(log: &Log, output: &str) -> Result<Progress> {
    let partition = log.partition(output, 0)?;
    let high_watermark = partition.high_watermark();
    if high_watermark == 0 {
        return Ok(Progress::default());
    }
    let read = partition.read(high_watermark - 1, 1).await?;
    let last = read.batches.last().ok_or_else(|| {
        ExecError::Internal(format!(
            "{output}: no batch holds offset {}",
            high_watermark - 1
        ))
    })?;
    let records = decode_batch(last.clone())?;
    let header = records
        .last()
        .and_then(|r| {
            r.headers
                .iter()
                .find(|(key, _)| key.as_str() == PROGRESS_HEADER)
                .and_then(|(_, value)| value.clone())
        })
        .ok_or_else(|| {
            ExecError::Internal(format!(
                "{output}: the last batch has no {PROGRESS_HEADER} header"
            ))
        })?;
    decode(&header)
        .map_err(|e| ExecError::Internal(format!("{output}: bad {PROGRESS_HEADER} header: {e}")))
}
