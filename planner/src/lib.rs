//! Tributary's planner: the SQL dialect (Postgres plus `CREATE STREAM ...
//! WATERMARK FOR ... WITH (...)`, `SHOW STREAMS`, `DESCRIBE`, `ALTER
//! STREAM`), the catalog model of streams, and the mapping of SQL types to
//! Arrow. It knows nothing of execution; binding of queries is DataFusion's
//! SQL planner, run by the executor against the catalog.
//!
//! ```
//! use tributary_planner::{Statement, parse};
//! let statements = parse("CREATE STREAM s (id BIGINT, ts TIMESTAMP) WITH (partitions = 2)").unwrap();
//! assert!(matches!(statements[0], Statement::CreateStream(_)));
//! ```

pub mod connector;
pub mod copy;
pub mod error;
pub mod parser;
pub mod statement;
pub mod stream_definition;
pub mod types;

pub use connector::{ConnectorDefinition, NexmarkKind, NexmarkOptions};
pub use copy::{CopyFormat, CopyFrom};
pub use error::{PlanError, Result};
pub use parser::parse;
pub use statement::{
    CreateMaterializedView, CreateSink, CreateStream, Statement, StreamOptions, Subscribe,
};
pub use stream_definition::{
    ColumnDefinition, Format, StreamDefinition, ViewDefinition, WatermarkDefinition,
};
