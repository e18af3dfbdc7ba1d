//! Dates and timestamps a stream can hold: the years 0 to 9999, which the
//! readers parse back (as Postgres writes them, four-digit years). A value
//! outside them, which only a computation makes (`ts + INTERVAL '10000
//! years'`; a literal that far out is refused when it is parsed), is
//! refused with 22008 before anything is appended: written as chrono
//! writes it (`+12026-01-01T00:00:00`), it could never be read back, and
//! would make the whole stream unreadable.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, max, min};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};

use super::civil::days_from_civil;
use crate::error::{ExecError, Result};

/// Days from 1970-01-01 to 0000-01-01 and to 10000-01-01.
fn storable_days() -> std::ops::Range<i64> {
    days_from_civil(0, 1, 1)..days_from_civil(10_000, 1, 1)
}

/// Refuses `values` if a date or timestamp in it is outside the years 0
/// to 9999.
pub(super) fn check(values: &RecordBatch) -> Result<()> {
    for (field, column) in values.schema_ref().fields().iter().zip(values.columns()) {
        let Some((low, high)) = day_range(column.as_ref()) else {
            continue;
        };
        let storable = storable_days();
        if !storable.contains(&low) || !storable.contains(&high) {
            return Err(ExecError::OutOfRange(format!(
                "{} out of range in column \"{}\": only the years 0 to 9999 can be stored",
                if matches!(field.data_type(), DataType::Date32 | DataType::Date64) {
                    "date"
                } else {
                    "timestamp"
                },
                field.name()
            )));
        }
    }
    Ok(())
}

/// The lowest and highest day (since 1970-01-01) of a date or timestamp
/// column; `None` for other columns, or one with no values.
fn day_range(column: &dyn Array) -> Option<(i64, i64)> {
    let per_day: i64 = match column.data_type() {
        DataType::Date32 => 1,
        DataType::Date64 | DataType::Timestamp(TimeUnit::Millisecond, _) => 86_400_000,
        DataType::Timestamp(TimeUnit::Second, _) => 86_400,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 86_400_000_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 86_400_000_000_000,
        _ => return None,
    };
    // Each of these is a count of its unit since the epoch.
    let counts = cast(column, &DataType::Int64).ok()?;
    let counts = counts.as_primitive::<Int64Type>();
    Some((
        min(counts)?.div_euclid(per_day),
        max(counts)?.div_euclid(per_day),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        Date32Array, Date64Array, Int64Array, TimestampMicrosecondArray, TimestampSecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(column: Arc<dyn Array>) -> RecordBatch {
        let schema = Schema::new(vec![Field::new("t", column.data_type().clone(), true)]);
        RecordBatch::try_new(Arc::new(schema), vec![column]).unwrap()
    }

    #[test]
    fn only_the_years_0_to_9999_are_stored() {
        let day = 86_400_000_000i64;
        let first = days_from_civil(0, 1, 1) * day;
        let last = days_from_civil(10_000, 1, 1) * day - 1;
        let fine = batch(Arc::new(TimestampMicrosecondArray::from(vec![
            Some(first),
            None,
            Some(last),
        ])));
        assert!(check(&fine).is_ok());
        for out in [first - 1, last + 1] {
            let error = check(&batch(Arc::new(TimestampMicrosecondArray::from(vec![
                Some(0),
                Some(out),
            ]))))
            .unwrap_err();
            assert_eq!(error.sqlstate(), "22008");
            assert!(
                error
                    .to_string()
                    .contains("timestamp out of range in column \"t\"")
            );
        }
        let dates = batch(Arc::new(Date32Array::from(vec![
            days_from_civil(10_000, 1, 1) as i32,
        ])));
        assert!(
            check(&dates)
                .unwrap_err()
                .to_string()
                .starts_with("date out of range")
        );
        assert!(check(&batch(Arc::new(Int64Array::from(vec![i64::MAX])))).is_ok());
        // Other units: seconds, and a date in milliseconds.
        let seconds = days_from_civil(-1, 12, 31) * 86_400;
        assert!(check(&batch(Arc::new(TimestampSecondArray::from(vec![seconds])))).is_err());
        assert!(
            check(&batch(Arc::new(TimestampSecondArray::from(vec![
                seconds + 86_400
            ]))))
            .is_ok()
        );
        let ms = days_from_civil(9_999, 12, 31) * 86_400_000;
        assert!(check(&batch(Arc::new(Date64Array::from(vec![ms])))).is_ok());
        assert!(check(&batch(Arc::new(Date64Array::from(vec![ms + 86_400_000])))).is_err());
    }
}
