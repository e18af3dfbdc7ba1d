//! The executor's integration tests: SQL through the Engine on a real log.

#![allow(clippy::unwrap_used)]

mod sql;
