//! Appends of record batches as producers send them (the Kafka door): the
//! values are checked against the stream's format and columns first, so the
//! log never holds a record that SQL cannot read; then the batches are
//! appended unchanged.

use bytes::Bytes;
use tributary_planner::{Format, StreamDefinition};
use tributary_storage::AppendOutcome;
use tributary_storage::records::BatchRecords;

use crate::engine::Engine;
use crate::error::{ExecError, Result};
use crate::format::{self, Origin, ScanColumns, StreamSchemas};

/// Checks and appends `blob` (one or more v2 batches) to a partition.
pub(crate) async fn produce(
    engine: &Engine,
    stream: &str,
    partition: u32,
    blob: Bytes,
) -> Result<AppendOutcome> {
    let record = engine.log().stream(stream)?;
    let definition = StreamDefinition::from_json(stream, record.config.definition.as_ref())?;
    crate::background::check_writable(stream, &definition)?;
    if definition.format != Format::Raw {
        check_values(&definition, stream, partition, &blob)?;
    }
    Ok(engine.log().append(stream, partition, blob).await?)
}

/// Decodes every value of every batch by the stream's format; the first
/// that does not decode is an error naming its index in the batch.
fn check_values(
    definition: &StreamDefinition,
    stream: &str,
    partition: u32,
    blob: &Bytes,
) -> Result<()> {
    let schemas = StreamSchemas::new(definition)?;
    let columns = ScanColumns::values(definition, &schemas)?;
    let mut rest = blob.clone();
    while !rest.is_empty() {
        // Checks the batch (extent, CRC) as it goes; the log checks the
        // whole blob again when it appends.
        let batch = BatchRecords::new(rest.clone())?;
        let header = *batch.header();
        rest = rest.slice(header.size..);
        let records = batch
            .iter()
            .collect::<tributary_storage::Result<Vec<_>>>()?;
        let origin = Origin { stream, partition };
        if let Err(e) = format::decode(definition, &columns, origin, &records) {
            let (index, reason) = match e {
                ExecError::Decode { offset, reason, .. } => (offset - header.base_offset, reason),
                other => (0, other.to_string()),
            };
            return Err(ExecError::InvalidRecord {
                stream: stream.to_string(),
                index,
                format: definition.format.as_str(),
                reason,
            });
        }
    }
    Ok(())
}
