//! [`MessageTimer`]: how long each pgwire message kind takes, for
//! `/metrics`.

use std::time::Instant;

/// Records the time from its start to its drop in
/// `tributary_pgwire_message_duration_seconds{kind}` (whose count is the
/// number of messages of that kind), however the handler returns.
#[derive(Debug)]
pub(crate) struct MessageTimer {
    kind: &'static str,
    started: Instant,
}

impl MessageTimer {
    /// Starts timing one message of `kind` (`query`, `parse`, `execute`).
    pub(crate) fn start(kind: &'static str) -> Self {
        Self {
            kind,
            started: Instant::now(),
        }
    }
}

impl Drop for MessageTimer {
    fn drop(&mut self) {
        metrics::histogram!("tributary_pgwire_message_duration_seconds", "kind" => self.kind)
            .record(self.started.elapsed().as_secs_f64());
    }
}
