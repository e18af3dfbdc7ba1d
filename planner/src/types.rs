//! SQL column types and the Arrow types values are decoded into.

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, DataType as SqlType, ExactNumberInfo, TimezoneInfo,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{PlanError, Result};

/// The time zone Tributary stores `TIMESTAMPTZ` values in.
pub const UTC: &str = "+00:00";

/// The Arrow type of a SQL column type.
pub fn arrow_type(sql: &SqlType) -> Result<DataType> {
    let unsupported = || PlanError::UnsupportedType(sql.to_string());
    Ok(match sql {
        SqlType::Bool | SqlType::Boolean => DataType::Boolean,
        SqlType::SmallInt(_) | SqlType::Int2(_) => DataType::Int16,
        SqlType::Int(_) | SqlType::Integer(_) | SqlType::Int4(_) => DataType::Int32,
        SqlType::BigInt(_) | SqlType::Int8(_) => DataType::Int64,
        SqlType::Real | SqlType::Float4 => DataType::Float32,
        SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float8 => DataType::Float64,
        SqlType::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => DataType::Float32,
        SqlType::Float(_) => DataType::Float64,
        SqlType::Numeric(info) | SqlType::Decimal(info) | SqlType::Dec(info) => {
            let (precision, scale) = match info {
                ExactNumberInfo::None => (38, 10),
                ExactNumberInfo::Precision(p) => (*p, 0),
                ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
            };
            if precision == 0 || precision > 38 || scale < 0 || scale as u64 > precision {
                return Err(PlanError::UnsupportedType(format!(
                    "{sql} (precision must be 1..38 and scale 0..precision)"
                )));
            }
            DataType::Decimal128(precision as u8, scale as i8)
        }
        SqlType::Text
        | SqlType::Varchar(_)
        | SqlType::CharacterVarying(_)
        | SqlType::CharVarying(_)
        | SqlType::Char(_)
        | SqlType::Character(_)
        | SqlType::String(_)
        | SqlType::Uuid
        | SqlType::JSON
        | SqlType::JSONB => DataType::Utf8,
        SqlType::Bytea => DataType::Binary,
        SqlType::Date => DataType::Date32,
        SqlType::Time(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            DataType::Time64(TimeUnit::Microsecond)
        }
        SqlType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        SqlType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        }
        SqlType::Interval { .. } => DataType::Interval(IntervalUnit::MonthDayNano),
        SqlType::Array(
            ArrayElemTypeDef::SquareBracket(inner, _)
            | ArrayElemTypeDef::AngleBracket(inner)
            | ArrayElemTypeDef::Parenthesis(inner),
        ) => {
            let element = arrow_type(inner)?;
            if matches!(element, DataType::List(_)) {
                return Err(PlanError::UnsupportedType(format!(
                    "{sql} (arrays of arrays)"
                )));
            }
            DataType::List(Field::new_list_field(element, true).into())
        }
        SqlType::Custom(name, modifiers) if modifiers.is_empty() => {
            match name.to_string().to_ascii_lowercase().as_str() {
                "timestamptz" => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
                "jsonb" | "json" | "citext" => DataType::Utf8,
                _ => return Err(unsupported()),
            }
        }
        _ => return Err(unsupported()),
    })
}

/// Parses a type name as written in SQL (`NUMERIC(10,2)`, `TEXT[]`).
pub fn parse_sql_type(text: &str) -> Result<SqlType> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(text)?;
    Ok(parser.parse_data_type()?)
}

/// The Arrow type of a type name as written in SQL.
pub fn arrow_type_of(text: &str) -> Result<DataType> {
    arrow_type(&parse_sql_type(text)?)
}

/// The SQL type a column of `data_type` is declared with: how a
/// materialized view's columns, typed by its query, are stored. The
/// reverse of [`arrow_type`], with Arrow's other widths of a type taken to
/// the SQL type that holds them.
pub fn sql_type_of(data_type: &DataType) -> Result<String> {
    Ok(match data_type {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "SMALLINT".into(),
        DataType::Int32 | DataType::UInt16 => "INT".into(),
        DataType::Int64 | DataType::UInt32 => "BIGINT".into(),
        DataType::UInt64 => "NUMERIC(20,0)".into(),
        DataType::Float16 | DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE PRECISION".into(),
        DataType::Decimal128(p, s) if *s >= 0 => format!("NUMERIC({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "TEXT".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTEA".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Interval(_) => "INTERVAL".into(),
        DataType::List(field) | DataType::LargeList(field) => {
            format!("{}[]", sql_type_of(field.data_type())?)
        }
        other => return Err(PlanError::UnsupportedType(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_types_have_a_sql_type_that_maps_back() {
        for data_type in [
            DataType::Boolean,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::Float32,
            DataType::Float64,
            DataType::Decimal128(10, 2),
            DataType::Utf8,
            DataType::Binary,
            DataType::Date32,
            DataType::Time64(TimeUnit::Microsecond),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            DataType::Interval(IntervalUnit::MonthDayNano),
        ] {
            let sql = sql_type_of(&data_type).unwrap();
            assert_eq!(arrow_type_of(&sql).unwrap(), data_type, "{sql}");
        }
        assert_eq!(sql_type_of(&DataType::Utf8View).unwrap(), "TEXT");
        assert!(sql_type_of(&DataType::Null).is_err());
    }

    #[test]
    fn every_documented_type_maps() {
        let cases = [
            ("BOOLEAN", DataType::Boolean),
            ("SMALLINT", DataType::Int16),
            ("INT", DataType::Int32),
            ("BIGINT", DataType::Int64),
            ("REAL", DataType::Float32),
            ("DOUBLE PRECISION", DataType::Float64),
            ("NUMERIC(10,2)", DataType::Decimal128(10, 2)),
            ("TEXT", DataType::Utf8),
            ("VARCHAR(20)", DataType::Utf8),
            ("BYTEA", DataType::Binary),
            ("DATE", DataType::Date32),
            ("TIME", DataType::Time64(TimeUnit::Microsecond)),
            (
                "TIMESTAMP",
                DataType::Timestamp(TimeUnit::Microsecond, None),
            ),
            (
                "TIMESTAMPTZ",
                DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            ),
            (
                "TIMESTAMP WITH TIME ZONE",
                DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            ),
            ("INTERVAL", DataType::Interval(IntervalUnit::MonthDayNano)),
            ("JSONB", DataType::Utf8),
            (
                "BIGINT[]",
                DataType::List(Field::new_list_field(DataType::Int64, true).into()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(arrow_type_of(text).unwrap(), expected, "{text}");
        }
        assert!(matches!(
            arrow_type_of("NUMERIC(50,2)"),
            Err(PlanError::UnsupportedType(_))
        ));
        assert!(matches!(
            arrow_type_of("GEOMETRY"),
            Err(PlanError::UnsupportedType(_))
        ));
    }
}
