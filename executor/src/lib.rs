//! Tributary's executor: the [`Engine`] every front end calls, through a
//! [`Session`] per client. It runs Tributary's DDL against the log, and
//! every query through DataFusion over the streams, which it exposes as
//! tables: scans decode the stored records
//! by the stream's format into Arrow (pruning partitions and offsets by
//! `_partition`/`_offset` predicates), inserts encode rows into record
//! batches and append them.
//!
//! ```no_run
//! # async fn demo(log: std::sync::Arc<tributary_storage::Log>) -> tributary_executor::Result<()> {
//! use tributary_executor::{Engine, Output};
//! let engine = Engine::new(log)?;
//! let session = engine.session();
//! session.execute("CREATE STREAM s (id BIGINT, name TEXT)").await?;
//! session.execute("INSERT INTO s VALUES (1, 'ann')").await?;
//! for output in session.execute("SELECT * FROM s").await? {
//!     if let Output::Rows(frame) = output {
//!         frame.show().await?;
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod background;
pub mod catalog;
pub mod copy_in;
pub mod engine;
pub mod error;
pub mod format;
pub mod functions;
mod generator;
mod handler;
mod hidden_columns;
mod job;
pub mod partitioner;
mod produce;
mod read_ahead;
pub mod scan_bounds;
pub mod session;
pub mod stream_sink;
pub mod stream_table;
pub mod system_tables;
mod view_fold;
pub mod window;

pub use background::AdminChange;
pub use copy_in::CopyIn;
pub use engine::{Engine, Output, PlannedQuery, QueryKind};
pub use error::{ExecError, Result};
pub use session::Session;
/// Parsed statements, as [`Session::parse`] returns them.
pub use tributary_planner::Statement;
/// The SQL type a column of an Arrow type is shown with (`BIGINT`, `TEXT`).
pub use tributary_planner::types::sql_type_of;
