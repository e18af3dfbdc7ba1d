//! A member of a group and the ids the coordinator gives members.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::outcome::{Joined, Synced};

/// A member of a group: what it sent in its last JoinGroup, its
/// assignment, its session, and the responses it waits for.
#[derive(Debug)]
pub(crate) struct Member {
    /// The id the coordinator gave it.
    pub(crate) id: String,
    /// Its `group.instance.id`, if it is a static member.
    pub(crate) instance_id: Option<String>,
    /// The client id of its requests.
    pub(crate) client_id: String,
    /// The address it connected from, as Kafka reports it (`/127.0.0.1`).
    pub(crate) client_host: String,
    /// How long it may go without a heartbeat.
    pub(crate) session_timeout: Duration,
    /// How long a rebalance may wait for it to rejoin.
    pub(crate) rebalance_timeout: Duration,
    /// The protocols (assignor names) it supports with its metadata for
    /// each, most preferred first.
    pub(crate) protocols: Vec<(String, Bytes)>,
    /// What the leader assigned it in the current generation.
    pub(crate) assignment: Bytes,
    /// When its session ends unless it heartbeats.
    pub(crate) session_deadline: Instant,
    /// Whether it sent SyncGroup in the current generation.
    pub(crate) synced: bool,
    /// Its JoinGroup waiting for the rebalance to complete.
    pub(crate) joining: Option<oneshot::Sender<Joined>>,
    /// Its SyncGroup waiting for the leader's assignments.
    pub(crate) syncing: Option<oneshot::Sender<Result<Synced, ResponseError>>>,
}

impl Member {
    /// The metadata it sent for `protocol`.
    pub(crate) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// Whether it supports `protocol`.
    pub(crate) fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// Whether its session is kept alive whatever its heartbeats: while
    /// it waits for a JoinGroup or SyncGroup response it cannot send them
    /// (the rebalance and sync deadlines bound those waits instead).
    pub(crate) fn waiting(&self) -> bool {
        self.joining.is_some() || self.syncing.is_some()
    }

    /// Answers its waiting requests with `error`: it left or was removed.
    pub(crate) fn answer_waiting(&mut self, error: ResponseError) {
        if let Some(joining) = self.joining.take() {
            let _ = joining.send(Joined::error(&self.id, error));
        }
        if let Some(syncing) = self.syncing.take() {
            let _ = syncing.send(Err(error));
        }
    }
}

/// Makes member ids unique across restarts: the client id, the time the
/// coordinator started and a counter (Kafka uses the client id and a UUID).
#[derive(Debug)]
pub(crate) struct MemberIds {
    started_ms: u128,
    next: AtomicU64,
}

impl MemberIds {
    /// Ids starting now.
    pub(crate) fn new() -> Self {
        let started_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Self {
            started_ms,
            next: AtomicU64::new(1),
        }
    }

    /// A new id for a member with `client_id`.
    pub(crate) fn next(&self, client_id: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{client_id}-{:x}-{n}", self.started_ms)
    }
}
