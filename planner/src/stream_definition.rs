//! What a stream is to SQL: its columns, watermark, value format and key.
//! Stored as JSON inside the stream's storage config (opaque to storage).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::connector::ConnectorDefinition;
use crate::error::{PlanError, Result};
use crate::types::arrow_type_of;

/// How record values are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per record, keys named like the columns.
    #[default]
    Json,
    /// One CSV line per record, columns in order.
    Csv,
    /// Opaque bytes: the stream has columns `key BYTEA, value BYTEA`.
    Raw,
}

impl Format {
    /// Parses the `format` option.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            "raw" => Ok(Self::Raw),
            other => Err(PlanError::InvalidOption {
                name: "format".into(),
                reason: format!("{other:?} is not one of json, csv, raw"),
            }),
        }
    }

    /// The option's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Raw => "raw",
        }
    }
}

/// One declared column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDefinition {
    /// The column name (normalized: lower case unless quoted).
    pub name: String,
    /// The type as written in SQL, e.g. `NUMERIC(10,2)`.
    pub sql_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
}

/// `WATERMARK FOR column AS expression`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatermarkDefinition {
    /// The event-time column.
    pub column: String,
    /// The watermark expression in SQL, e.g. `ts - INTERVAL '5 seconds'`.
    pub expression: String,
    /// How long a partition with nothing new may hold a job's watermark
    /// back (`WITH (idle_timeout = ...)`); `None` for the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
}

/// The SQL side of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDefinition {
    /// Declared columns; empty for a raw stream.
    pub columns: Vec<ColumnDefinition>,
    /// The watermark clause, if any.
    pub watermark: Option<WatermarkDefinition>,
    /// How values are encoded.
    pub format: Format,
    /// The column whose value is the record key (and picks the partition).
    pub key: Option<String>,
    /// The built-in source that writes the stream's records, if any: such
    /// a stream is written only by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<ConnectorDefinition>,
    /// For the stream that holds a materialized view's changes: the view.
    /// Only the view's job writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewDefinition>,
}

/// A materialized view, kept with the stream of its changes: each record
/// is a JSON object of the view's columns and `op` (`+` a row added, `-` a
/// row taken back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewDefinition {
    /// The query, as written (normalized by the SQL parser).
    pub query: String,
    /// `EMIT ON WINDOW CLOSE` was given.
    pub emit_on_window_close: bool,
    /// The streams the query reads: they cannot be dropped while the view
    /// is there.
    pub inputs: Vec<String>,
    /// The view's rows change (it aggregates): each change record's key is
    /// the row's group, as a JSON object, and the view holds the last
    /// record of each key unless that record takes the row back (`-`).
    #[serde(default)]
    pub keyed: bool,
    /// The stream is the target of the sink of this name rather than a
    /// view: its records are the query's rows, without `op`, and dropping
    /// the sink leaves the stream to its readers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// `LATE DATA TO`: the stream rows too late for their window are
    /// appended to, with the reason, rather than only counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_data_to: Option<String>,
}

impl ViewDefinition {
    /// The query with the clauses given after it (`EMIT ON WINDOW CLOSE`,
    /// `LATE DATA TO`), as `SHOW MATERIALIZED VIEWS` and `SHOW SINKS`
    /// list it.
    pub fn query_with_clauses(&self) -> String {
        let mut text = self.query.clone();
        if self.emit_on_window_close {
            text.push_str(" EMIT ON WINDOW CLOSE");
        }
        if let Some(stream) = &self.late_data_to {
            text.push_str(" LATE DATA TO ");
            text.push_str(stream);
        }
        text
    }
}

/// The metadata columns every stream exposes, in order.
pub const METADATA_COLUMNS: [&str; 4] = ["_partition", "_offset", "_timestamp", "_key"];

impl StreamDefinition {
    /// Whether the stream is a materialized view (not a sink's target).
    pub fn is_view(&self) -> bool {
        self.view.as_ref().is_some_and(|v| v.sink.is_none())
    }

    /// The sink that writes the stream, if one does.
    pub fn sink(&self) -> Option<&str> {
        self.view.as_ref().and_then(|v| v.sink.as_deref())
    }

    /// A stream of opaque records (`key BYTEA, value BYTEA`), as a Kafka
    /// client creates.
    pub fn raw() -> Self {
        Self {
            columns: Vec::new(),
            watermark: None,
            format: Format::Raw,
            key: None,
            connector: None,
            view: None,
        }
    }

    /// Whether values are opaque bytes.
    pub fn is_raw(&self) -> bool {
        self.format == Format::Raw
    }

    /// The columns decoded from record values (for a raw stream, `key` and
    /// `value`). All nullable as far as Arrow is concerned: NOT NULL is
    /// checked when rows are written (with the row number in the error),
    /// and a record written by a Kafka client may lack a field.
    pub fn value_fields(&self) -> Result<Vec<Field>> {
        if self.is_raw() {
            return Ok(vec![
                Field::new("key", DataType::Binary, true),
                Field::new("value", DataType::Binary, true),
            ]);
        }
        self.columns
            .iter()
            .map(|c| Ok(Field::new(&c.name, arrow_type_of(&c.sql_type)?, true)))
            .collect()
    }

    /// The schema of the value columns alone.
    pub fn value_schema(&self) -> Result<SchemaRef> {
        Ok(Arc::new(Schema::new(self.value_fields()?)))
    }

    /// The full schema SQL sees: metadata columns, then value columns.
    pub fn table_schema(&self) -> Result<SchemaRef> {
        let mut fields = metadata_fields();
        fields.extend(self.value_fields()?);
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Stores the definition as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        // A derived Serialize of plain data cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Reads a stored definition; a stream without one is raw.
    pub fn from_json(name: &str, value: Option<&serde_json::Value>) -> Result<Self> {
        match value {
            None | Some(serde_json::Value::Null) => Ok(Self::raw()),
            Some(v) => {
                serde_json::from_value(v.clone()).map_err(|e| PlanError::CorruptDefinition {
                    name: name.to_string(),
                    reason: e.to_string(),
                })
            }
        }
    }
}

/// Fields of the metadata columns. Never NULL when read, but declared
/// nullable: an INSERT leaves them out, and DataFusion fills what an INSERT
/// leaves out with NULL before the log assigns the real values.
pub fn metadata_fields() -> Vec<Field> {
    vec![
        Field::new("_partition", DataType::Int32, true),
        Field::new("_offset", DataType::Int64, true),
        Field::new(
            "_timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        Field::new("_key", DataType::Binary, true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_round_trip_through_json() {
        let definition = StreamDefinition {
            columns: vec![ColumnDefinition {
                name: "amount".into(),
                sql_type: "NUMERIC(10,2)".into(),
                nullable: true,
            }],
            watermark: None,
            format: Format::Json,
            key: None,
            connector: None,
            view: None,
        };
        let json = definition.to_json();
        assert_eq!(
            StreamDefinition::from_json("s", Some(&json)).unwrap(),
            definition
        );
        assert!(StreamDefinition::from_json("s", None).unwrap().is_raw());
        let schema = definition.table_schema().unwrap();
        assert_eq!(schema.fields().len(), 5);
        assert_eq!(schema.field(4).data_type(), &DataType::Decimal128(10, 2));
    }
}
