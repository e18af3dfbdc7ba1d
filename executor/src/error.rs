//! The executor's error type, and the SQLSTATE each error reports.

use datafusion::error::DataFusionError;
use tributary_planner::PlanError;

/// What can go wrong running a statement.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The statement did not parse or plan.
    #[error(transparent)]
    Plan(#[from] PlanError),

    /// The log failed.
    #[error(transparent)]
    Storage(#[from] tributary_storage::Error),

    /// DataFusion failed to plan or run the query.
    #[error("{}", datafusion_message(.0))]
    DataFusion(#[from] DataFusionError),

    /// A stream of that name exists already.
    #[error("stream \"{0}\" already exists")]
    StreamExists(String),

    /// No stream of that name exists.
    #[error("stream \"{0}\" does not exist")]
    UnknownStream(String),

    /// No materialized view of that name exists.
    #[error("materialized view \"{0}\" does not exist")]
    UnknownView(String),

    /// A value does not fit its column.
    #[error("invalid input for column \"{column}\" in row {row}: {reason}")]
    InvalidValue {
        /// 1-based row (line) number within the statement's input.
        row: usize,
        /// The column.
        column: String,
        /// What is wrong.
        reason: String,
    },

    /// NULL where the column is NOT NULL.
    #[error(
        "null value in column \"{column}\" of stream \"{stream}\" violates not-null constraint (row {row})"
    )]
    NotNull {
        /// The stream.
        stream: String,
        /// The column.
        column: String,
        /// 1-based row (line) number within the statement's input.
        row: usize,
    },

    /// A line of `COPY` data does not fit the stream.
    #[error("{reason} (COPY {stream}, line {line}{})", column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
    CopyData {
        /// The stream.
        stream: String,
        /// 1-based line of the data (a header counts).
        line: usize,
        /// The column, if one is to blame.
        column: Option<String>,
        /// What is wrong.
        reason: String,
        /// 22P02 (bad value), 22P04 (wrong field count), 23502 (NULL in a
        /// NOT NULL column), 22021 (not UTF-8).
        sqlstate: &'static str,
    },

    /// A stored record does not decode with its stream's format.
    #[error("record {stream}[{partition}]@{offset} does not decode as {format}: {reason}")]
    Decode {
        /// The stream.
        stream: String,
        /// The partition.
        partition: u32,
        /// The record's offset.
        offset: i64,
        /// The stream's format.
        format: &'static str,
        /// What failed.
        reason: String,
    },

    /// A record appended from outside SQL (a Kafka producer) does not fit
    /// its stream's format and columns.
    #[error("record {index} of the batch does not fit stream \"{stream}\" ({format}): {reason}")]
    InvalidRecord {
        /// The stream.
        stream: String,
        /// The record's 0-based index in its batch.
        index: i64,
        /// The stream's format.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// A client wrote into a stream that only its connector (or, later,
    /// its job) writes.
    #[error("stream \"{stream}\" is written only by {writer}")]
    ReadOnlyStream {
        /// The stream.
        stream: String,
        /// What writes it.
        writer: &'static str,
    },

    /// A statement named an object of another kind (`DROP STREAM` of a
    /// view, `DROP MATERIALIZED VIEW` of a stream).
    #[error("\"{name}\" is not a {expected}{}", hint.map(|h| format!("; {h}")).unwrap_or_default())]
    WrongObjectType {
        /// The object.
        name: String,
        /// What the statement wanted.
        expected: &'static str,
        /// What to do instead.
        hint: Option<&'static str>,
    },

    /// Dropping an object that views or sinks read or write.
    #[error("cannot drop {name} because {} depends on it", dependents.join(", "))]
    DependentObjects {
        /// The object.
        name: String,
        /// What depends on it, each with its kind (`materialized view v`).
        dependents: Vec<String>,
    },

    /// `CREATE SINK` of a name a sink has.
    #[error("sink \"{0}\" already exists")]
    SinkExists(String),

    /// A value outside what a column can hold (a date or timestamp beyond
    /// the years 0 to 9999).
    #[error("{0}")]
    OutOfRange(String),

    /// A sink that does not exist.
    #[error("sink \"{0}\" does not exist")]
    UnknownSink(String),

    /// A view read while its job is failing and behind its input: what it
    /// holds is stale.
    #[error(
        "{view} is behind its input because its job is failing: {error} \
         (SHOW JOBS shows it; the job tries again every few seconds)"
    )]
    ViewFailing {
        /// The view (or the view it reads) whose job fails, as `materialized
        /// view "name"` or `sink "name" (into stream "target")`.
        view: String,
        /// The job's failure.
        error: String,
    },

    /// A function was called with arguments it cannot take.
    #[error("{0}")]
    InvalidArgument(String),

    /// A state that means a bug in Tributary.
    #[error("internal error: {0}")]
    Internal(String),

    /// A statement or construct Tributary does not support.
    #[error("{0} is not supported")]
    NotSupported(String),
}

/// The executor result type.
pub type Result<T, E = ExecError> = std::result::Result<T, E>;

fn datafusion_message(e: &DataFusionError) -> String {
    match e.find_root() {
        DataFusionError::External(inner) => inner.to_string(),
        root => root.message().to_string(),
    }
}

impl ExecError {
    /// The SQLSTATE a client gets for this error (pgwire and the HTTP API
    /// report the same code).
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::Plan(e) => match e {
                PlanError::Syntax(_) => "42601",
                PlanError::UnsupportedType(_) => "42704",
                PlanError::NotSupported(_) => "0A000",
                PlanError::InvalidOption { .. } => "22023",
                PlanError::UnknownColumn(_) => "42703",
                PlanError::DuplicateColumn(_) => "42701",
                PlanError::CorruptDefinition { .. } => "XX001",
            },
            Self::Storage(e) => match e {
                tributary_storage::Error::UnknownStream(_) => "42P01",
                tributary_storage::Error::StreamExists(_) => "42P07",
                tributary_storage::Error::InvalidConfig(_) => "22023",
                tributary_storage::Error::OffsetOutOfRange { .. } => "22003",
                tributary_storage::Error::Corrupt { .. } => "XX001",
                tributary_storage::Error::Io { .. } => "58030",
                _ => "XX000",
            },
            Self::DataFusion(e) => datafusion_sqlstate(e),
            Self::StreamExists(_) => "42P07",
            Self::UnknownStream(_) | Self::UnknownView(_) => "42P01",
            Self::InvalidValue { .. } => "22P02",
            Self::CopyData { sqlstate, .. } => sqlstate,
            Self::NotNull { .. } => "23502",
            Self::Decode { .. } => "XX001",
            Self::InvalidRecord { .. } => "22P02",
            Self::NotSupported(_) => "0A000",
            // As Postgres answers a write into a materialized view.
            Self::ReadOnlyStream { .. } => "42809",
            Self::WrongObjectType { .. } => "42809",
            Self::DependentObjects { .. } => "2BP01",
            Self::SinkExists(_) => "42710",
            Self::UnknownSink(_) => "42704",
            // datetime_field_overflow
            Self::OutOfRange(_) => "22008",
            // object_not_in_prerequisite_state
            Self::ViewFailing { .. } => "55000",
            Self::InvalidArgument(_) => "22023",
            Self::Internal(_) => "XX000",
        }
    }
}

fn datafusion_sqlstate(e: &DataFusionError) -> &'static str {
    use datafusion::common::SchemaError;
    match e.find_root() {
        DataFusionError::External(inner) => match inner.downcast_ref::<ExecError>() {
            Some(ours) => ours.sqlstate(),
            None => "XX000",
        },
        DataFusionError::SQL(..) => "42601",
        DataFusionError::SchemaError(schema_error, _) => match schema_error.as_ref() {
            SchemaError::FieldNotFound { .. } => "42703",
            SchemaError::DuplicateQualifiedField { .. }
            | SchemaError::DuplicateUnqualifiedField { .. } => "42701",
            SchemaError::AmbiguousReference { .. } => "42702",
        },
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
            datafusion::arrow::error::ArrowError::CastError(_)
            | datafusion::arrow::error::ArrowError::ParseError(_) => "22P02",
            datafusion::arrow::error::ArrowError::DivideByZero => "22012",
            // Date and time arithmetic past what a timestamp holds.
            datafusion::arrow::error::ArrowError::ComputeError(message)
                if message.contains("out of range") =>
            {
                "22008"
            }
            datafusion::arrow::error::ArrowError::ArithmeticOverflow(_) => "22003",
            _ => "XX000",
        },
        DataFusionError::Plan(message) => {
            if message.contains("not found") && message.starts_with("table") {
                "42P01"
            } else if message.contains("Invalid function")
                || message.contains("No function matches")
            {
                "42883"
            } else {
                "42804"
            }
        }
        DataFusionError::Execution(message) if message.contains("Cannot cast") => "22P02",
        _ => "XX000",
    }
}

impl From<ExecError> for DataFusionError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::DataFusion(inner) => inner,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

impl From<datafusion::arrow::error::ArrowError> for ExecError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Self::DataFusion(DataFusionError::ArrowError(Box::new(e), None))
    }
}

/// Where in `sql` an error points, as Postgres reports it: the 1-based
/// character position, read from the parser's `at Line: L, Column: C` in
/// `message`. `None` when the message names no place in the text.
pub fn position_in(message: &str, sql: &str) -> Option<usize> {
    let at = message.rfind("Line: ")?;
    let (line, rest) = message[at + "Line: ".len()..].split_once(", Column: ")?;
    let line: usize = line.trim().parse().ok()?;
    let column: usize = rest
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    if line == 0 || column == 0 {
        return None;
    }
    let before: usize = sql
        .split('\n')
        .take(line - 1)
        .map(|l| l.chars().count() + 1)
        .sum();
    Some(before + column)
}

#[cfg(test)]
mod sqlstate_tests {
    use datafusion::arrow::error::ArrowError;

    use super::*;

    #[test]
    fn arithmetic_past_a_types_range_is_a_data_exception() {
        let error = |arrow: ArrowError| {
            ExecError::DataFusion(DataFusionError::ArrowError(Box::new(arrow), None)).sqlstate()
        };
        assert_eq!(
            error(ArrowError::ComputeError("Timestamp out of range".into())),
            "22008"
        );
        assert_eq!(
            error(ArrowError::ArithmeticOverflow("Overflow happened".into())),
            "22003"
        );
        assert_eq!(error(ArrowError::ComputeError("other".into())), "XX000");
    }
}

#[cfg(test)]
mod position_tests {
    use super::position_in;

    #[test]
    fn the_parsers_line_and_column_become_a_character_position() {
        let sql = "SELECT 1;\nSELEC x FORM t";
        let message =
            "sql parser error: Expected: an SQL statement, found: SELEC at Line: 2, Column: 1";
        assert_eq!(position_in(message, sql), Some(11));
        assert_eq!(position_in("no place here", sql), None);
    }
}
