//! The storage integration tests: one binary, one module per concern.

#![allow(clippy::unwrap_used)]

mod admin;
mod bad_files;
mod crash;
mod faults;
mod idempotence;
mod log_behaviour;
mod metadata;
mod support;
