//! A keyed view partition's folded rows in the object store, so the first
//! scan after a restart reads them and folds only the changes after them.
//!
//! A snapshot is an Arrow IPC file of the rows (`key`, `offset`,
//! `timestamp`, `value`) at `folds/<stream id>/<partition>/<next>.arrow`,
//! where `next` is the offset of the first change it does not hold. Only
//! the newest is kept. A snapshot that cannot be read is skipped with a
//! warning: the fold then starts from the view's first change, which is
//! slower but gives the same rows.

use std::sync::Arc;

use datafusion::arrow::array::{Array, BinaryArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tracing::warn;
use tributary_storage::records::RecordRef;

use crate::error::{ExecError, Result};
use crate::job::checkpoint::{decode_state, encode_state};

/// Where one stream partition's snapshots are kept.
pub(crate) fn partition_prefix(stream_id: i64, partition: u32) -> Path {
    Path::from(format!("folds/{stream_id}/{partition}"))
}

/// Where the snapshots of every partition of a stream are kept.
fn stream_prefix(stream_id: i64) -> Path {
    Path::from(format!("folds/{stream_id}"))
}

/// The rows of a snapshot, read back, and the offset it goes on from.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The offset of the first change the snapshot does not hold.
    pub(crate) next: i64,
    /// The rows, as one batch of `key`, `offset`, `timestamp`, `value`.
    pub(crate) rows: RecordBatch,
}

impl Snapshot {
    /// Each row as a record borrowed from the batch.
    pub(crate) fn records(&self) -> Result<Vec<RecordRef<'_>>> {
        let column = |name: &str| {
            self.rows.column_by_name(name).ok_or_else(|| {
                ExecError::Internal(format!("a view's folded rows have no column {name}"))
            })
        };
        let binary = |name: &str| {
            column(name)?
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(|| ExecError::Internal(format!("folded rows: {name} is not binary")))
        };
        let int64 = |name: &str| {
            column(name)?
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| ExecError::Internal(format!("folded rows: {name} is not Int64")))
        };
        let (keys, offsets) = (binary("key")?, int64("offset")?);
        let (timestamps, values) = (int64("timestamp")?, binary("value")?);
        Ok((0..self.rows.num_rows())
            .map(|i| RecordRef {
                offset: offsets.value(i),
                timestamp: timestamps.value(i),
                key: Some(keys.value(i)),
                value: Some(values.value(i)),
            })
            .collect())
    }
}

/// The newest snapshot of the partition under `prefix`, if there is one
/// that can be read.
pub(crate) async fn newest(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Option<Snapshot> {
    let snapshots = match list(store, prefix).await {
        Ok(snapshots) => snapshots,
        Err(e) => {
            warn!(prefix = %prefix, error = %e, "could not list a view's folded rows");
            return None;
        }
    };
    let (next, path) = snapshots.into_iter().max_by_key(|(next, _)| *next)?;
    match read(store, &path).await {
        Ok(rows) => Some(Snapshot { next, rows }),
        Err(e) => {
            warn!(path = %path, error = %e, "could not read a view's folded rows; folding from the start");
            None
        }
    }
}

/// Writes `records` as the snapshot of the partition under `prefix` up to
/// `next`, and deletes the older ones. A failure is logged, not returned:
/// the rows are still in memory and in the log.
pub(crate) async fn write(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    next: i64,
    records: &[RecordRef<'_>],
) {
    let path = prefix.clone().join(format!("{next:020}.arrow"));
    let written = async {
        let bytes = encode_state(&rows_batch(records)?)?;
        store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| ExecError::Internal(format!("writing {path}: {e}")))?;
        for (older, old_path) in list(store, prefix).await? {
            if older < next {
                store
                    .delete(&old_path)
                    .await
                    .map_err(|e| ExecError::Internal(format!("deleting {old_path}: {e}")))?;
            }
        }
        Ok::<_, ExecError>(())
    };
    if let Err(e) = written.await {
        warn!(path = %path, error = %e, "could not save a view's folded rows");
    }
}

/// Deletes the snapshots of every partition of the stream incarnation
/// `stream_id` (its view was dropped).
pub(crate) async fn delete_all(store: &Arc<dyn ObjectStore>, stream_id: i64) {
    let prefix = stream_prefix(stream_id);
    let paths = store.list(Some(&prefix)).map_ok(|meta| meta.location);
    if let Err(e) = store
        .delete_stream(paths.boxed())
        .try_collect::<Vec<_>>()
        .await
    {
        warn!(prefix = %prefix, error = %e, "could not delete a dropped view's folded rows");
    }
}

/// The snapshots under `prefix`, by the offset each goes on from.
async fn list(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Result<Vec<(i64, Path)>> {
    let objects: Vec<_> = store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| ExecError::Internal(format!("listing {prefix}: {e}")))?;
    Ok(objects
        .into_iter()
        .filter_map(|meta| {
            let next = meta
                .location
                .filename()?
                .strip_suffix(".arrow")?
                .parse()
                .ok()?;
            Some((next, meta.location))
        })
        .collect())
}

async fn read(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<RecordBatch> {
    let bytes = store
        .get(path)
        .await
        .map_err(|e| ExecError::Internal(format!("reading {path}: {e}")))?
        .bytes()
        .await
        .map_err(|e| ExecError::Internal(format!("reading {path}: {e}")))?;
    Ok(decode_state(bytes)?.unwrap_or_else(|| RecordBatch::new_empty(rows_schema())))
}

fn rows_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Binary, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("timestamp", DataType::Int64, false),
        Field::new("value", DataType::Binary, false),
    ]))
}

fn rows_batch(records: &[RecordRef<'_>]) -> Result<RecordBatch> {
    let keys = BinaryArray::from_iter_values(records.iter().map(|r| r.key.unwrap_or_default()));
    let offsets = Int64Array::from_iter_values(records.iter().map(|r| r.offset));
    let timestamps = Int64Array::from_iter_values(records.iter().map(|r| r.timestamp));
    let values = BinaryArray::from_iter_values(records.iter().map(|r| r.value.unwrap_or_default()));
    Ok(RecordBatch::try_new(
        rows_schema(),
        vec![
            Arc::new(keys),
            Arc::new(offsets),
            Arc::new(timestamps),
            Arc::new(values),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    fn record(offset: i64, key: &'static [u8], value: &'static [u8]) -> RecordRef<'static> {
        RecordRef {
            offset,
            timestamp: 7 * offset,
            key: Some(key),
            value: Some(value),
        }
    }

    #[tokio::test]
    async fn the_newest_snapshot_is_read_back_and_older_ones_deleted() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let prefix = partition_prefix(9, 0);
        assert!(newest(&store, &prefix).await.is_none());
        write(&store, &prefix, 5, &[record(2, b"a", b"{\"op\":\"+\"}")]).await;
        let rows = [record(3, b"a", b"1"), record(11, b"b", b"2")];
        write(&store, &prefix, 12, &rows).await;
        let snapshot = newest(&store, &prefix).await.unwrap();
        assert_eq!(snapshot.next, 12);
        assert_eq!(snapshot.records().unwrap(), rows);
        assert_eq!(list(&store, &prefix).await.unwrap().len(), 1);
        // Another stream's partition is not touched by dropping this one.
        write(&store, &partition_prefix(10, 0), 1, &rows).await;
        delete_all(&store, 9).await;
        assert!(newest(&store, &prefix).await.is_none());
        assert!(newest(&store, &partition_prefix(10, 0)).await.is_some());
    }

    #[tokio::test]
    async fn a_snapshot_that_cannot_be_read_is_skipped() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let prefix = partition_prefix(1, 2);
        store
            .put(
                &prefix.clone().join("00000000000000000004.arrow"),
                PutPayload::from_static(b"torn"),
            )
            .await
            .unwrap();
        assert!(newest(&store, &prefix).await.is_none());
    }
}
