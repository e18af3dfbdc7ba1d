//! Arrow record batches as JSON: typed columns, and rows as arrays of
//! values in column order (names may repeat, as in `SELECT 1, 1`).
//! Numbers and booleans stay JSON numbers and booleans; every other type
//! is the text psql would print.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, Schema,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Serialize;
use serde_json::Value;

/// The largest integer a JavaScript number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// Timestamps as psql shows them (a space, not ISO's `T`).
const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";
const TIMESTAMP_TZ_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f%:z";

/// A result column: its name and SQL type.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Column {
    /// The column's name.
    pub(crate) name: String,
    /// Its SQL type (`BIGINT`, `TEXT`, ...), as DESCRIBE shows types.
    #[serde(rename = "type")]
    pub(crate) sql_type: String,
}

/// The columns of `schema`.
pub(crate) fn columns(schema: &Schema) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|field| Column {
            name: field.name().clone(),
            sql_type: tributary_executor::sql_type_of(field.data_type())
                .unwrap_or_else(|_| field.data_type().to_string()),
        })
        .collect()
}

/// Appends up to `limit` rows of `batch` to `rows`, each an array of
/// values in column order.
pub(crate) fn append_rows(
    batch: &RecordBatch,
    limit: usize,
    rows: &mut Vec<Vec<Value>>,
) -> Result<(), ArrowError> {
    let take = batch.num_rows().min(limit);
    let start = rows.len();
    rows.extend((0..take).map(|_| Vec::with_capacity(batch.num_columns())));
    for column in batch.columns() {
        let values = column_values(column.as_ref(), take)?;
        for (row, value) in rows[start..].iter_mut().zip(values) {
            row.push(value);
        }
    }
    Ok(())
}

/// The first `take` values of one column.
fn column_values(array: &dyn Array, take: usize) -> Result<Vec<Value>, ArrowError> {
    // Integers a JavaScript number holds exactly stay numbers; larger
    // ones (ids, hashes) go out as text so nothing rounds them.
    macro_rules! numbers {
        ($type:ty) => {{
            let typed = array.as_primitive::<$type>();
            (0..take)
                .map(|i| {
                    if typed.is_null(i) {
                        return Value::Null;
                    }
                    let value = typed.value(i);
                    match i64::try_from(value) {
                        Ok(exact) if exact.unsigned_abs() <= MAX_SAFE_INTEGER => Value::from(exact),
                        _ => Value::String(value.to_string()),
                    }
                })
                .collect()
        }};
    }
    Ok(match array.data_type() {
        DataType::Null => vec![Value::Null; take],
        DataType::Boolean => {
            let typed = array.as_boolean();
            (0..take)
                .map(|i| {
                    if typed.is_null(i) {
                        Value::Null
                    } else {
                        Value::Bool(typed.value(i))
                    }
                })
                .collect()
        }
        DataType::Int8 => numbers!(Int8Type),
        DataType::Int16 => numbers!(Int16Type),
        DataType::Int32 => numbers!(Int32Type),
        DataType::Int64 => numbers!(Int64Type),
        DataType::UInt8 => numbers!(UInt8Type),
        DataType::UInt16 => numbers!(UInt16Type),
        DataType::UInt32 => numbers!(UInt32Type),
        DataType::UInt64 => numbers!(UInt64Type),
        // NaN and the infinities are not JSON numbers: `Value::from` makes
        // them null, so they go out as text instead.
        DataType::Float32 | DataType::Float64 => {
            let wide: Vec<Option<f64>> = match array.data_type() {
                // Widened through its shortest text, so 0.1 stays 0.1.
                DataType::Float32 => array
                    .as_primitive::<Float32Type>()
                    .iter()
                    .take(take)
                    .map(|v| v.map(|v| v.to_string().parse().unwrap_or(f64::from(v))))
                    .collect(),
                _ => array
                    .as_primitive::<Float64Type>()
                    .iter()
                    .take(take)
                    .collect(),
            };
            wide.into_iter()
                .map(|value| match value {
                    None => Value::Null,
                    Some(v) if v.is_finite() => Value::from(v),
                    Some(v) if v.is_nan() => Value::String("NaN".into()),
                    Some(v) if v > 0.0 => Value::String("Infinity".into()),
                    Some(_) => Value::String("-Infinity".into()),
                })
                .collect()
        }
        _ => {
            let options = FormatOptions::default()
                .with_null("")
                .with_timestamp_format(Some(TIMESTAMP_FORMAT))
                .with_timestamp_tz_format(Some(TIMESTAMP_TZ_FORMAT));
            let formatter = ArrayFormatter::try_new(array, &options)?;
            (0..take)
                .map(|i| {
                    if array.is_null(i) {
                        Value::Null
                    } else {
                        Value::String(formatter.value(i).to_string())
                    }
                })
                .collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, TimeUnit};
    use serde_json::json;

    use super::*;

    #[test]
    fn values_keep_their_json_types_and_the_rest_is_text() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("x", DataType::Float64, true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
                Arc::new(Float64Array::from(vec![Some(1.5), Some(f64::NAN), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
                Arc::new(StringArray::from(vec![Some("a"), Some(""), None])),
                Arc::new(TimestampMicrosecondArray::from(vec![
                    Some(0),
                    None,
                    Some(1_000_000),
                ])),
            ],
        )
        .unwrap();
        let mut rows = Vec::new();
        append_rows(&batch, 2, &mut rows).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![
                    json!(1),
                    json!(1.5),
                    json!(true),
                    json!("a"),
                    json!("1970-01-01 00:00:00")
                ],
                vec![
                    json!(null),
                    json!("NaN"),
                    json!(null),
                    json!(""),
                    json!(null)
                ],
            ]
        );
        let names: Vec<_> = columns(&schema)
            .into_iter()
            .map(|c| format!("{} {}", c.name, c.sql_type))
            .collect();
        assert_eq!(
            names,
            [
                "n BIGINT",
                "x DOUBLE PRECISION",
                "ok BOOLEAN",
                "s TEXT",
                "t TIMESTAMP"
            ]
        );
    }

    #[test]
    fn large_integers_are_text_and_reals_keep_their_short_form() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("r", DataType::Float32, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![
                    9_007_199_254_740_991,
                    -9_007_199_254_740_993,
                ])),
                Arc::new(datafusion::arrow::array::Float32Array::from(vec![
                    0.1,
                    f32::NEG_INFINITY,
                ])),
            ],
        )
        .unwrap();
        let mut rows = Vec::new();
        append_rows(&batch, 10, &mut rows).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![json!(9_007_199_254_740_991_i64), json!(0.1)],
                vec![json!("-9007199254740993"), json!("-Infinity")],
            ]
        );
    }
}
