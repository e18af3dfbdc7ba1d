//! Integration tests of the `tributary` binary and the workspace.

#![allow(clippy::unwrap_used)]

mod depcheck;
mod serve;
