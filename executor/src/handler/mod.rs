//! One module per statement.

pub(crate) mod alter_stream;
pub(crate) mod create_sink;
pub(crate) mod create_stream;
pub(crate) mod create_view;
pub(crate) mod describe;
pub(crate) mod drop_object;
pub(crate) mod query;
pub(crate) mod show_consumer_groups;
pub(crate) mod show_jobs;
pub(crate) mod show_sinks;
pub(crate) mod show_streams;
pub(crate) mod show_views;
pub(crate) mod subscribe;
