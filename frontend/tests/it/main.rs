//! Integration tests of the `tributary` binary and the workspace.

#![allow(clippy::unwrap_used)]

mod browser;
mod copy;
mod depcheck;
mod kafka;
mod kafka_admin;
mod kafka_groups;
mod kafka_idempotence;
mod nexmark_streams;
mod pgwire;
mod psql;
mod repl;
mod serve;
mod stateful_views;
mod subscribe;
mod support;
mod views;
mod web;
