//! Text fields of `COPY` data into typed Arrow columns, with the line of the
//! first value that does not parse.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BinaryBuilder, StringArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::DataType;

use crate::error::{ExecError, Result};

/// One column a `COPY` fills.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The column's name.
    pub(crate) name: String,
    /// Its SQL type as declared, for messages.
    pub(crate) sql_type: String,
    /// Its Arrow type.
    pub(crate) data_type: DataType,
    /// Its position among the stream's value columns.
    pub(crate) value_index: usize,
}

/// The error for a bad value: 22P02 with the line and column, as Postgres
/// reports it.
pub(crate) fn invalid_value(stream: &str, line: usize, target: &Target, value: &str) -> ExecError {
    ExecError::CopyData {
        stream: stream.to_string(),
        line,
        column: Some(target.name.clone()),
        reason: format!(
            "invalid input syntax for type {}: \"{value}\"",
            target.sql_type.to_ascii_lowercase()
        ),
        sqlstate: "22P02",
    }
}

/// Converts one column of text to the target's type. `lines` gives each
/// row's line number.
pub(crate) fn typed_column(
    stream: &str,
    target: &Target,
    text: &StringArray,
    lines: &[usize],
) -> Result<ArrayRef> {
    match target.data_type {
        DataType::Utf8 => Ok(Arc::new(text.clone())),
        DataType::Binary => bytea_column(stream, target, text, lines),
        _ => {
            let options = CastOptions {
                safe: true,
                ..Default::default()
            };
            let typed = cast_with_options(text, &target.data_type, &options).map_err(|e| {
                ExecError::NotSupported(format!(
                    "COPY into column {} of type {} ({e})",
                    target.name, target.sql_type
                ))
            })?;
            // A safe cast turns what does not parse into NULL: find the first.
            if typed.null_count() != text.null_count()
                && let Some(row) = (0..text.len()).find(|r| text.is_valid(*r) && typed.is_null(*r))
            {
                return Err(invalid_value(stream, lines[row], target, text.value(row)));
            }
            Ok(typed)
        }
    }
}

/// BYTEA in Postgres's text form: `\x` then hex digits; anything else is
/// taken as the bytes of the text.
fn bytea_column(
    stream: &str,
    target: &Target,
    text: &StringArray,
    lines: &[usize],
) -> Result<ArrayRef> {
    let mut builder = BinaryBuilder::with_capacity(text.len(), text.value_data().len());
    for (row, value) in text.iter().enumerate() {
        match value {
            None => builder.append_null(),
            Some(value) => match value.strip_prefix("\\x") {
                Some(hex) => {
                    let bytes = decode_hex(hex)
                        .ok_or_else(|| invalid_value(stream, lines[row], target, value))?;
                    builder.append_value(bytes);
                }
                None => builder.append_value(value.as_bytes()),
            },
        }
    }
    Ok(Arc::new(builder.finish()))
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            Some((high * 16 + low) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(data_type: DataType, sql_type: &str) -> Target {
        Target {
            name: "x".into(),
            sql_type: sql_type.into(),
            data_type,
            value_index: 0,
        }
    }

    #[test]
    fn the_first_bad_value_is_reported_with_its_line() {
        let text = StringArray::from(vec![Some("1"), None, Some("two"), Some("x")]);
        let err = typed_column(
            "s",
            &target(DataType::Int64, "BIGINT"),
            &text,
            &[2, 3, 4, 5],
        )
        .unwrap_err();
        assert_eq!(err.sqlstate(), "22P02");
        let message = err.to_string();
        assert!(
            message.contains("line 4") && message.contains("\"two\""),
            "{message}"
        );
    }

    #[test]
    fn bytea_reads_hex() {
        let text = StringArray::from(vec![Some("\\x4142"), Some("plain")]);
        let typed = typed_column("s", &target(DataType::Binary, "BYTEA"), &text, &[1, 2]).unwrap();
        let binary = typed
            .as_any()
            .downcast_ref::<datafusion::arrow::array::BinaryArray>()
            .unwrap();
        assert_eq!(binary.value(0), b"AB");
        assert_eq!(binary.value(1), b"plain");
        assert!(
            typed_column(
                "s",
                &target(DataType::Binary, "BYTEA"),
                &StringArray::from(vec!["\\x4"]),
                &[1]
            )
            .is_err()
        );
    }
}
