//! The group coordinator: every group this node coordinates (all of
//! them: one node), shared by every connection, and the timer task that
//! acts on their deadlines. A JoinGroup or SyncGroup that has to wait for
//! the rest of its group waits on a channel, never holding the lock, so
//! other connections carry on.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use kafka_protocol::ResponseError;
use tokio::sync::Notify;

use super::member::MemberIds;
use super::membership::{Group, JoinRequest, SyncRequest};
use super::outcome::{GroupSummary, Joined, Reply, Synced};

/// Every group in memory. Membership is not persisted: after a restart
/// clients find their member ids unknown and join again. Committed
/// offsets are in the metadata store and are not kept here.
#[derive(Debug)]
pub(crate) struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    ids: MemberIds,
    /// Wakes the timer task when a deadline may have come closer.
    wake: Notify,
}

impl Default for GroupCoordinator {
    fn default() -> Self {
        Self::new()
    }
}

impl GroupCoordinator {
    /// A coordinator with no groups.
    pub(crate) fn new() -> Self {
        Self {
            groups: Mutex::new(HashMap::new()),
            ids: MemberIds::new(),
            wake: Notify::new(),
        }
    }

    /// The groups. A panic while holding the lock cannot leave a group
    /// half-changed in a way later requests must not see (each step
    /// leaves a consistent group), so a poisoned lock is used as is.
    fn groups(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `step` on group `group_id` (created if absent) and forgets the
    /// group if that leaves it unused.
    fn with_group<T>(&self, group_id: &str, step: impl FnOnce(&mut Group, Instant) -> T) -> T {
        let mut groups = self.groups();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        let result = step(group, Instant::now());
        if group.is_unused() {
            groups.remove(group_id);
        }
        result
    }

    /// As [`Self::with_group`] for a step that may bring a deadline
    /// closer (a rebalance starts, a member joins): the timer task wakes
    /// to look. Heartbeats and commits only push deadlines back.
    fn with_group_waking<T>(
        &self,
        group_id: &str,
        step: impl FnOnce(&mut Group, Instant) -> T,
    ) -> T {
        let result = self.with_group(group_id, step);
        self.wake.notify_one();
        result
    }

    /// Handles a JoinGroup, waiting until the group's join completes.
    pub(crate) async fn join(&self, group_id: &str, request: JoinRequest) -> Joined {
        let member_id = request.member_id.clone();
        let reply =
            self.with_group_waking(group_id, |group, now| group.join(request, &self.ids, now));
        match reply {
            Reply::Now(joined) => joined,
            Reply::Later(answer) => answer.await.unwrap_or_else(|_| {
                Joined::error(&member_id, ResponseError::CoordinatorNotAvailable)
            }),
        }
    }

    /// Handles a SyncGroup, waiting for the leader's assignments.
    pub(crate) async fn sync(
        &self,
        group_id: &str,
        request: SyncRequest,
    ) -> Result<Synced, ResponseError> {
        let reply = self.with_group_waking(group_id, |group, now| group.sync(request, now));
        match reply {
            Reply::Now(synced) => synced,
            Reply::Later(answer) => answer
                .await
                .unwrap_or(Err(ResponseError::CoordinatorNotAvailable)),
        }
    }

    /// Handles a Heartbeat.
    pub(crate) fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        self.with_group(group_id, |group, now| {
            group.heartbeat(member_id, instance_id, generation, now)
        })
    }

    /// Handles one member of a LeaveGroup.
    pub(crate) fn leave(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        self.with_group_waking(group_id, |group, now| {
            group.leave(member_id, instance_id, now)
        })
    }

    /// Whether an OffsetCommit for `group_id` by this member and
    /// generation may go through.
    pub(crate) fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        self.with_group(group_id, |group, now| {
            group.check_commit(member_id, instance_id, generation, now)
        })
    }

    /// Every group in memory.
    pub(crate) fn summaries(&self) -> Vec<GroupSummary> {
        let mut summaries: Vec<GroupSummary> = self.groups().values().map(Group::summary).collect();
        summaries.sort_by(|a, b| a.id.cmp(&b.id));
        summaries
    }

    /// One group, if it is in memory.
    pub(crate) fn summary(&self, group_id: &str) -> Option<GroupSummary> {
        self.groups().get(group_id).map(Group::summary)
    }

    /// Forgets a group about to be deleted; NON_EMPTY_GROUP while it has
    /// members (or one about to join).
    pub(crate) fn forget(&self, group_id: &str) -> Result<(), ResponseError> {
        let mut groups = self.groups();
        match groups.get(group_id) {
            Some(group) if !group.is_unused() => Err(ResponseError::NonEmptyGroup),
            _ => {
                groups.remove(group_id);
                Ok(())
            }
        }
    }

    /// Acts on every deadline that passed; the next one, if any.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        self.groups().retain(|_, group| {
            if let Some(deadline) = group.expire(now) {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
            !group.is_unused()
        });
        next
    }

    /// Ends sessions that were not kept alive, rebalances that waited
    /// long enough and syncs that never came, as their deadlines pass.
    /// Runs until dropped.
    pub(crate) async fn run_timers(&self) {
        loop {
            let next = self.expire(Instant::now());
            // A permit stored by notify_one while expiring is not lost.
            match next {
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline.into()) => {}
                        () = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }
}
