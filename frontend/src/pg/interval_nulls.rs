//! arrow-pg 0.16 encodes a NULL interval as a zero interval (`00:00:00`):
//! its interval branch reads the value without looking at the null bit.
//! Until that is fixed upstream, rows of batches with NULL intervals have
//! those fields put back to NULL here, in the encoded row.

use bytes::{Buf, BufMut, BytesMut};
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use pgwire::messages::data::DataRow;

/// The interval columns of `batch` that hold NULLs, by position.
pub(crate) fn null_interval_columns(batch: &RecordBatch) -> Vec<(usize, ArrayRef)> {
    batch
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.data_type(), DataType::Interval(_)) && c.null_count() > 0)
        .map(|(i, c)| (i, c.clone()))
        .collect()
}

/// Rewrites the fields of row `row` that are NULL in `columns` as NULL.
pub(crate) fn restore_nulls(
    data_row: DataRow,
    row: usize,
    columns: &[(usize, ArrayRef)],
) -> DataRow {
    if !columns.iter().any(|(_, c)| c.is_null(row)) {
        return data_row;
    }
    let mut fields = data_row.data.clone().freeze();
    let mut out = BytesMut::with_capacity(fields.len());
    for field in 0..data_row.field_count as usize {
        if fields.remaining() < 4 {
            // Not a row this module understands: leave it as it was.
            return data_row;
        }
        let len = fields.get_i32();
        let null = columns.iter().any(|(i, c)| *i == field && c.is_null(row));
        if len < 0 {
            out.put_i32(-1);
            continue;
        }
        let len = len as usize;
        if fields.remaining() < len {
            return data_row;
        }
        let value = fields.split_to(len);
        if null {
            out.put_i32(-1);
        } else {
            out.put_i32(len as i32);
            out.put_slice(&value);
        }
    }
    DataRow::new(out, data_row.field_count)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int32Array, IntervalMonthDayNanoArray};
    use datafusion::arrow::datatypes::IntervalMonthDayNano;

    use super::*;

    #[test]
    fn null_intervals_become_null_fields() {
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
        let intervals: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            Some(IntervalMonthDayNano::new(0, 1, 0)),
            None,
        ]));
        let batch = RecordBatch::try_from_iter([("i", ints), ("iv", intervals)]).unwrap();
        let columns = null_interval_columns(&batch);
        assert_eq!(columns.len(), 1);
        let mut data = BytesMut::new();
        data.put_i32(1);
        data.put_slice(b"2");
        data.put_i32(8);
        data.put_slice(b"00:00:00");
        let row = restore_nulls(DataRow::new(data, 2), 1, &columns);
        let mut expected = BytesMut::new();
        expected.put_i32(1);
        expected.put_slice(b"2");
        expected.put_i32(-1);
        assert_eq!(row.data, expected);
    }
}
