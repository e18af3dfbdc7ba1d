//! Where a job is in its input, kept with its output: the last record of
//! every batch a job appends carries, in a header, the offset of each
//! input partition up to which the job's output is in the log. A batch is
//! durable whole or not at all, so on restart the job reads its output's
//! last batch and goes on from there: output is neither lost nor written
//! twice, without a separate commit. (Input whose rows all fell to a
//! filter leaves no batch; after a restart it is read again and again
//! makes nothing.)

use std::collections::BTreeMap;

use bytes::Bytes;
use tributary_storage::Log;
use tributary_storage::batch::decode_batch;

use crate::error::{ExecError, Result};

/// The header naming the input offsets.
pub(crate) const PROGRESS_HEADER: &str = "tributary.job.offsets";

/// Each input partition's next offset to read.
pub(crate) type InputOffsets = BTreeMap<u32, i64>;

/// The header value for `offsets`.
pub(crate) fn encode(offsets: &InputOffsets) -> Bytes {
    // A map of integers always serializes.
    Bytes::from(serde_json::to_vec(offsets).unwrap_or_default())
}

/// Where the job writing `output` (partition 0) had got to: the offsets in
/// its last batch, or none when it has written nothing.
pub(crate) async fn resume(log: &Log, output: &str) -> Result<InputOffsets> {
    let partition = log.partition(output, 0)?;
    let high_watermark = partition.high_watermark();
    if high_watermark == 0 {
        return Ok(InputOffsets::new());
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
    serde_json::from_slice(&header)
        .map_err(|e| ExecError::Internal(format!("{output}: bad {PROGRESS_HEADER} header: {e}")))
}
