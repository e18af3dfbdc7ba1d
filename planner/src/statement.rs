//! The statements Tributary understands: its own DDL, and everything else
//! as standard SQL for DataFusion.

use datafusion::sql::sqlparser::ast;

use crate::copy::CopyFrom;
use crate::stream_definition::StreamDefinition;

/// Storage settings from `WITH (...)` on `CREATE STREAM` / `ALTER STREAM`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    /// `partitions = N`.
    pub partitions: Option<u32>,
    /// `retention = '7 days'` (milliseconds).
    pub retention_ms: Option<u64>,
    /// `retention_bytes = N`.
    pub retention_bytes: Option<u64>,
    /// `segment_bytes = N`.
    pub segment_bytes: Option<u64>,
}

/// `CREATE STREAM`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateStream {
    /// The stream's name.
    pub name: String,
    /// `IF NOT EXISTS` was given.
    pub if_not_exists: bool,
    /// Columns, watermark, format, key.
    pub definition: StreamDefinition,
    /// Storage settings.
    pub options: StreamOptions,
}

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE STREAM name (...) WITH (...)`.
    CreateStream(Box<CreateStream>),
    /// `DROP STREAM [IF EXISTS] name`.
    DropStream {
        /// The stream.
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `ALTER STREAM name SET (retention = ..., ...)`.
    AlterStream {
        /// The stream.
        name: String,
        /// The settings to change.
        options: StreamOptions,
    },
    /// `SHOW STREAMS`.
    ShowStreams,
    /// `SHOW CONSUMER GROUPS`: each Kafka consumer group with its committed
    /// partitions and total lag.
    ShowConsumerGroups,
    /// `COPY name FROM STDIN`: the rows follow from the client.
    CopyFrom(CopyFrom),
    /// `DESCRIBE name` / `DESC name`.
    Describe {
        /// The stream.
        name: String,
    },
    /// `CREATE MATERIALIZED VIEW name AS query [EMIT ON WINDOW CLOSE]`.
    CreateMaterializedView(CreateMaterializedView),
    /// `DROP MATERIALIZED VIEW [IF EXISTS] name`.
    DropMaterializedView {
        /// The view.
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `SHOW MATERIALIZED VIEWS`.
    ShowMaterializedViews,
    /// `SHOW JOBS`: the streaming jobs with their status and lag.
    ShowJobs,
    /// `CREATE SINK name INTO stream AS query [EMIT ON WINDOW CLOSE]`.
    CreateSink(CreateSink),
    /// `DROP SINK [IF EXISTS] name`.
    DropSink {
        /// The sink.
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `SHOW SINKS`.
    ShowSinks,
    /// `SUBSCRIBE [TO] name` or `SUBSCRIBE (query)`: rows streamed to the
    /// client as changes happen, until it cancels or goes away.
    Subscribe(Subscribe),
    /// `COPY (SUBSCRIBE ...) TO STDOUT`: the same, as COPY data, which
    /// psql prints as it arrives.
    CopySubscribe(Subscribe),
    /// Any other statement, planned by DataFusion.
    Sql(Box<ast::Statement>),
}

/// `CREATE MATERIALIZED VIEW`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateMaterializedView {
    /// The view's name.
    pub name: String,
    /// `IF NOT EXISTS` was given.
    pub if_not_exists: bool,
    /// The query, as SQL text (planned by DataFusion against the catalog).
    pub query: String,
    /// `EMIT ON WINDOW CLOSE`: final rows once the watermark passes a
    /// window's end, instead of updates as rows arrive.
    pub emit_on_window_close: bool,
    /// `LATE DATA TO stream`: where rows too late for their window go.
    pub late_data_to: Option<String>,
}

/// `CREATE SINK`: a job that appends its query's rows to a stream, which
/// Kafka clients consume like any topic.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSink {
    /// The sink's name.
    pub name: String,
    /// `IF NOT EXISTS` was given.
    pub if_not_exists: bool,
    /// The stream the rows go to (created with the query's columns if
    /// absent).
    pub target: String,
    /// The query, as SQL text.
    pub query: String,
    /// `EMIT ON WINDOW CLOSE`: windows' final rows only.
    pub emit_on_window_close: bool,
    /// `LATE DATA TO stream`: where rows too late for their window go.
    pub late_data_to: Option<String>,
}

/// What a `SUBSCRIBE` follows.
#[derive(Debug, Clone, PartialEq)]
pub enum Subscribe {
    /// A stream, view or sink's stream, by name: a view's current rows
    /// then its changes; a stream's rows from now on.
    Object(String),
    /// A query, run as a streaming job whose changes go to the client: its
    /// answer over the history first, then its changes.
    Query(String),
}
