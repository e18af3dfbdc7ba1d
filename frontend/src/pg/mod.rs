//! The Postgres wire protocol front door: psql, every Postgres driver, the
//! REPL. A thin adapter over the executor's `Engine`: statements go in,
//! rows (encoded from Arrow by `arrow-pg`) and SQLSTATE errors come out.

mod cancel;
mod comment_functions;
mod copy;
mod errors;
mod handler;
mod responses;
mod rewrite;
mod row_fixes;
mod server;
mod session;
mod subscribe;
mod timer;

pub(crate) use server::serve;
