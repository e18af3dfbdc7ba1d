//! Where the rows arrow-pg and pgwire encode differ from what Postgres
//! sends, fixed in the encoded row, field by field:
//!
//! - a NULL interval is encoded as `00:00:00` (arrow-pg 0.16 reads the value
//!   without looking at the null bit): it goes out as NULL;
//! - float text is ryu's (`1000.0`, `1e20`, `inf`): it goes out as Postgres
//!   prints it (`1000`, `1e+20`, `Infinity`);
//! - time and timestamp text always has six fraction digits
//!   (`10:00:00.000000`): trailing zeros go, as in Postgres (`10:00:00`).
//!
//! Batches needing none of this pass through untouched.

use bytes::{Buf, BufMut, BytesMut};
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::messages::data::DataRow;

/// The fixes one batch's rows need.
pub(crate) struct RowFixes {
    columns: Vec<(usize, Fix)>,
}

enum Fix {
    /// Interval column with NULLs.
    NullInterval(ArrayRef),
    /// Float text; `single` for REAL.
    Float { single: bool },
    /// Time or timestamp text.
    Fraction,
}

impl RowFixes {
    /// What the rows of `batch`, encoded as `fields`, need.
    pub(crate) fn for_batch(batch: &RecordBatch, fields: &[FieldInfo]) -> Self {
        let columns = batch
            .columns()
            .iter()
            .zip(fields)
            .enumerate()
            .filter_map(|(i, (column, field))| {
                let text = field.format() == FieldFormat::Text;
                let fix = match column.data_type() {
                    DataType::Interval(_) if column.null_count() > 0 => {
                        Fix::NullInterval(column.clone())
                    }
                    DataType::Float64 if text => Fix::Float { single: false },
                    DataType::Float32 if text => Fix::Float { single: true },
                    DataType::Time32(_) | DataType::Time64(_) | DataType::Timestamp(..) if text => {
                        Fix::Fraction
                    }
                    _ => return None,
                };
                Some((i, fix))
            })
            .collect();
        Self { columns }
    }

    /// Whether rows pass through as they are.
    pub(crate) fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Fixes row `row` of the batch.
    pub(crate) fn apply(&self, data_row: DataRow, row: usize) -> DataRow {
        let mut fields = data_row.data.clone().freeze();
        let mut out = BytesMut::with_capacity(fields.len());
        for field in 0..data_row.field_count as usize {
            if fields.remaining() < 4 {
                // Not a row this module understands: leave it as it was.
                return data_row;
            }
            let len = fields.get_i32();
            if len < 0 {
                out.put_i32(-1);
                continue;
            }
            let len = len as usize;
            if fields.remaining() < len {
                return data_row;
            }
            let value = fields.split_to(len);
            let fix = self
                .columns
                .iter()
                .find(|(i, _)| *i == field)
                .map(|(_, f)| f);
            let fixed = match fix {
                Some(Fix::NullInterval(column)) if column.is_null(row) => {
                    out.put_i32(-1);
                    continue;
                }
                Some(Fix::Float { single }) => float_text(&value, *single),
                Some(Fix::Fraction) => Some(trim_fraction(&value)),
                _ => None,
            };
            let value = fixed.as_deref().unwrap_or(&value);
            out.put_i32(value.len() as i32);
            out.put_slice(value);
        }
        DataRow::new(out, data_row.field_count)
    }
}

/// Postgres's text for a float given as pgwire's: the shortest digits that
/// read back the same value, in fixed notation for decimal exponents from
/// -4 up to (not including) 15 (6 for REAL), in scientific notation with a
/// signed two-digit exponent otherwise.
pub(crate) fn float_text(text: &[u8], single: bool) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let value: f64 = text.parse().ok()?;
    if value.is_nan() {
        return Some(b"NaN".to_vec());
    }
    if value.is_infinite() {
        return Some(
            if value > 0.0 {
                &b"Infinity"[..]
            } else {
                &b"-Infinity"[..]
            }
            .to_vec(),
        );
    }
    if value == 0.0 {
        return Some(
            if value.is_sign_negative() {
                &b"-0"[..]
            } else {
                &b"0"[..]
            }
            .to_vec(),
        );
    }
    // Rust's `{:e}` prints the shortest round-tripping digits.
    let scientific = if single {
        format!("{:e}", value as f32)
    } else {
        format!("{value:e}")
    };
    let (mantissa, exponent) = scientific.split_once('e')?;
    let exponent: i32 = exponent.parse().ok()?;
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let max_fixed = if single { 6 } else { 15 };
    let out = if !(-4..max_fixed).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{first}{point}e{exponent_sign}{:02}", exponent.abs())
    } else if exponent < 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-exponent - 1) as usize))
    } else {
        let integer_len = exponent as usize + 1;
        if digits.len() <= integer_len {
            format!("{sign}{digits}{}", "0".repeat(integer_len - digits.len()))
        } else {
            let (integer, fraction) = digits.split_at(integer_len);
            format!("{sign}{integer}.{fraction}")
        }
    };
    Some(out.into_bytes())
}

/// `10:00:00.500000` → `10:00:00.5`, `10:00:00.000000+00` → `10:00:00+00`.
fn trim_fraction(text: &[u8]) -> Vec<u8> {
    let Some(dot) = text.iter().position(|b| *b == b'.') else {
        return text.to_vec();
    };
    let digits_end = text[dot + 1..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(text.len(), |n| dot + 1 + n);
    let kept = text[dot + 1..digits_end]
        .iter()
        .rposition(|b| *b != b'0')
        .map_or(dot, |n| dot + 1 + n + 1);
    let mut out = text[..kept].to_vec();
    out.extend_from_slice(&text[digits_end..]);
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int32Array, IntervalMonthDayNanoArray};
    use datafusion::arrow::datatypes::IntervalMonthDayNano;
    use pgwire::api::Type;

    use super::*;

    fn text(value: &str, single: bool) -> String {
        String::from_utf8(float_text(value.as_bytes(), single).unwrap()).unwrap()
    }

    #[test]
    fn floats_print_as_postgres_prints_them() {
        for (pgwire, postgres) in [
            ("1000.0", "1000"),
            ("12.5", "12.5"),
            ("-2.25", "-2.25"),
            ("1e20", "1e+20"),
            ("1e15", "1e+15"),
            ("123456789012345.0", "123456789012345"),
            ("0.0001", "0.0001"),
            ("1.5e-5", "1.5e-05"),
            ("0.1", "0.1"),
            ("inf", "Infinity"),
            ("-inf", "-Infinity"),
            ("NaN", "NaN"),
            ("0", "0"),
        ] {
            assert_eq!(text(pgwire, false), postgres, "{pgwire}");
        }
        assert_eq!(text("1.5", true), "1.5");
        assert_eq!(text("1000000.0", true), "1e+06");
        assert_eq!(text("0.1", true), "0.1");
    }

    #[test]
    fn fractions_lose_trailing_zeros() {
        for (pgwire, postgres) in [
            ("2026-01-01 10:00:00.000000", "2026-01-01 10:00:00"),
            ("2026-01-01 10:00:00.500000+00", "2026-01-01 10:00:00.5+00"),
            ("23:59:58.123456", "23:59:58.123456"),
            ("10:00:00", "10:00:00"),
        ] {
            assert_eq!(
                trim_fraction(pgwire.as_bytes()),
                postgres.as_bytes(),
                "{pgwire}"
            );
        }
    }

    #[test]
    fn null_intervals_become_null_fields() {
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
        let intervals: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            Some(IntervalMonthDayNano::new(0, 1, 0)),
            None,
        ]));
        let batch = RecordBatch::try_from_iter([("i", ints), ("iv", intervals)]).unwrap();
        let fields = [
            FieldInfo::new("i".into(), None, None, Type::INT4, FieldFormat::Text),
            FieldInfo::new("iv".into(), None, None, Type::INTERVAL, FieldFormat::Text),
        ];
        let fixes = RowFixes::for_batch(&batch, &fields);
        assert!(!fixes.is_empty());
        let mut data = BytesMut::new();
        data.put_i32(1);
        data.put_slice(b"2");
        data.put_i32(8);
        data.put_slice(b"00:00:00");
        let row = fixes.apply(DataRow::new(data, 2), 1);
        let mut expected = BytesMut::new();
        expected.put_i32(1);
        expected.put_slice(b"2");
        expected.put_i32(-1);
        assert_eq!(row.data, expected);
    }
}
