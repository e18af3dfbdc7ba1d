//! Streams written in the background rather than by clients: a
//! connector's generator, a materialized view's job. Each such stream has
//! one task, started with the stream or with the server and stopped when
//! the stream is dropped; and only that task writes the stream
//! ([`check_writable`]): a generator numbers its events by the records
//! already there, a view's stream holds exactly its query's changes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use tokio::task::JoinHandle;
use tributary_planner::StreamDefinition;

use crate::error::{ExecError, Result};

/// Refuses a client's write (INSERT, COPY, a Kafka produce) into a stream
/// that a background task writes.
pub(crate) fn check_writable(stream: &str, definition: &StreamDefinition) -> Result<()> {
    let writer = if definition.sink().is_some() {
        "its sink"
    } else if definition.view.is_some() {
        "its materialized view's job"
    } else if definition.connector.is_some() {
        "its connector"
    } else {
        return Ok(());
    };
    Err(ExecError::ReadOnlyStream {
        stream: stream.to_string(),
        writer,
    })
}

/// A change to a stream's shape or retention by an administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminChange {
    /// More partitions (Kafka CreatePartitions).
    Partitions,
    /// Retention, segment size, or deleting records below an offset.
    Retention,
}

/// Refuses the changes that would break a background writer: a
/// generator numbers its events by the partitions there are, and a view's
/// job finds where it stands in its stream's last batch, which retention
/// must not delete.
pub fn check_admin(stream: &str, definition: &StreamDefinition, change: AdminChange) -> Result<()> {
    let refused = match change {
        AdminChange::Partitions => definition.view.is_some() || definition.connector.is_some(),
        AdminChange::Retention => definition.view.is_some(),
    };
    if refused {
        check_writable(stream, definition)
    } else {
        Ok(())
    }
}

/// The running tasks, by the name of the stream each writes.
#[derive(Debug, Default)]
pub(crate) struct StreamTasks {
    running: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl StreamTasks {
    /// Runs `task` as the writer of `stream`, unless one runs already.
    pub(crate) fn start<F>(&self, stream: &str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        running.retain(|_, task| !task.is_finished());
        if !running.contains_key(stream) {
            running.insert(stream.to_string(), tokio::spawn(task));
        }
    }

    /// Stops the writer of `stream`, if one runs, and waits until it has
    /// stopped: nothing it was doing lands after this returns.
    pub(crate) async fn stop(&self, stream: &str) {
        let task = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(stream);
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Stops every writer.
    pub(crate) fn stop_all(&self) {
        let running = std::mem::take(
            &mut *self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in running.values() {
            task.abort();
        }
    }
}

impl Drop for StreamTasks {
    fn drop(&mut self) {
        self.stop_all();
    }
}
