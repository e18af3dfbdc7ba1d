//! One group's membership and its rebalances, as Kafka's classic group
//! coordinator runs them. No I/O and no clock: every step takes `now`, and
//! the answers a member waits for go through oneshot channels, so the
//! whole cycle is tested without sockets or sleeps.
//!
//! A rebalance: a member joins, leaves, changes its protocols, or its
//! session expires, and the group goes to PreparingRebalance. Members
//! learn it from Heartbeat (REBALANCE_IN_PROGRESS) and send JoinGroup
//! again; when every known member has (or the rebalance timeout passes,
//! dropping the late ones) the generation goes up, a protocol is chosen,
//! and each JoinGroup is answered, the leader's with every member's
//! metadata. The group waits in CompletingRebalance for the leader's
//! SyncGroup with the assignments, hands each member its own, and is
//! Stable.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use tracing::{debug, info};

use super::member::{Member, MemberIds};
use super::outcome::{GroupSummary, Joined, JoinedMember, MemberSummary, Reply, Synced};
use super::protocol;
use super::state::GroupState;

/// The shortest session timeout a member may ask for (Kafka's
/// `group.min.session.timeout.ms`).
pub(crate) const SESSION_TIMEOUT_MS_MIN: i32 = 6_000;
/// The longest (Kafka's `group.max.session.timeout.ms`).
pub(crate) const SESSION_TIMEOUT_MS_MAX: i32 = 1_800_000;

/// A JoinGroup, decoded.
#[derive(Debug)]
pub(crate) struct JoinRequest {
    /// Empty for a member's first join.
    pub(crate) member_id: String,
    /// Its `group.instance.id` (static membership).
    pub(crate) instance_id: Option<String>,
    /// The client id of the request.
    pub(crate) client_id: String,
    /// The address the request came from.
    pub(crate) client_host: String,
    /// The session timeout asked for.
    pub(crate) session_timeout_ms: i32,
    /// The rebalance timeout asked for.
    pub(crate) rebalance_timeout_ms: i32,
    /// `consumer` for consumers.
    pub(crate) protocol_type: String,
    /// Assignor names with their metadata, most preferred first.
    pub(crate) protocols: Vec<(String, Bytes)>,
    /// Whether a first join is answered MEMBER_ID_REQUIRED with an id to
    /// join with (version 4 on).
    pub(crate) require_member_id: bool,
}

/// A SyncGroup, decoded.
#[derive(Debug)]
pub(crate) struct SyncRequest {
    /// The member.
    pub(crate) member_id: String,
    /// Its `group.instance.id`.
    pub(crate) instance_id: Option<String>,
    /// The generation it joined.
    pub(crate) generation: i32,
    /// The protocol type it expects (version 5 on).
    pub(crate) protocol_type: Option<String>,
    /// The protocol it expects (version 5 on).
    pub(crate) protocol_name: Option<String>,
    /// From the leader: each member's assignment.
    pub(crate) assignments: Vec<(String, Bytes)>,
}

/// One group's members, generation and state.
#[derive(Debug)]
pub(crate) struct Group {
    id: String,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    /// In the order they joined: the first is the leader when a new one
    /// is needed.
    members: Vec<Member>,
    /// Ids given with MEMBER_ID_REQUIRED and when they lapse unused.
    pending: Vec<(String, Instant)>,
    /// When the rebalance gives up on members that did not rejoin
    /// (PreparingRebalance), or on members that did not send SyncGroup
    /// (after the join completed).
    deadline: Option<Instant>,
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl Group {
    /// A new, empty group.
    pub(crate) fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: Vec::new(),
            pending: Vec::new(),
            deadline: None,
        }
    }

    /// Whether nothing would be lost by forgetting it: no members and no
    /// member about to join. (Committed offsets live in the metadata
    /// store, not here.)
    pub(crate) fn is_unused(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    /// Handles a JoinGroup.
    pub(crate) fn join(
        &mut self,
        request: JoinRequest,
        ids: &MemberIds,
        now: Instant,
    ) -> Reply<Joined> {
        let refuse = |error| Reply::Now(Joined::error(&request.member_id, error));
        if !(SESSION_TIMEOUT_MS_MIN..=SESSION_TIMEOUT_MS_MAX).contains(&request.session_timeout_ms)
        {
            return refuse(ResponseError::InvalidSessionTimeout);
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return refuse(ResponseError::InconsistentGroupProtocol);
        }
        let mut others = self
            .members
            .iter()
            .filter(|m| m.id != request.member_id)
            .peekable();
        if others.peek().is_some()
            && (self.protocol_type.as_deref() != Some(request.protocol_type.as_str())
                || !protocol::compatible(others, &request.protocols))
        {
            return refuse(ResponseError::InconsistentGroupProtocol);
        }
        if request.member_id.is_empty() {
            let id = ids.next(&request.client_id);
            if let Some(instance) = &request.instance_id {
                // A static member restarted: the new one replaces the old.
                if let Some(old) = self.position_of_instance(instance) {
                    info!(group = %self.id, instance, "static member replaced; the old one is fenced");
                    self.remove(old, ResponseError::FencedInstanceId, now);
                }
            } else if request.require_member_id {
                self.pending
                    .push((id.clone(), now + millis(request.session_timeout_ms)));
                return Reply::Now(Joined::error(&id, ResponseError::MemberIdRequired));
            }
            return self.add(id, request, now);
        }
        if let Some(i) = self
            .pending
            .iter()
            .position(|(id, _)| *id == request.member_id)
        {
            self.pending.remove(i);
            return self.add(request.member_id.clone(), request, now);
        }
        match self.find(&request.member_id, request.instance_id.as_deref()) {
            Ok(index) => self.rejoin(index, request, now),
            Err(error) => refuse(error),
        }
    }

    /// A new member; a rebalance follows.
    fn add(&mut self, id: String, request: JoinRequest, now: Instant) -> Reply<Joined> {
        debug!(group = %self.id, member = %id, "member joins");
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type);
        }
        let (joining, answer) = oneshot::channel();
        let session_timeout = millis(request.session_timeout_ms);
        self.members.push(Member {
            id,
            instance_id: request.instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout,
            rebalance_timeout: millis(request.rebalance_timeout_ms),
            protocols: request.protocols,
            assignment: Bytes::new(),
            session_deadline: now + session_timeout,
            synced: false,
            joining: Some(joining),
            syncing: None,
        });
        self.prepare_rebalance(now);
        self.try_complete_join(now);
        Reply::Later(answer)
    }

    /// A known member joins again: part of a rebalance, or to start one.
    fn rejoin(&mut self, index: usize, request: JoinRequest, now: Instant) -> Reply<Joined> {
        let is_leader = self.leader.as_deref() == Some(request.member_id.as_str());
        let member = &mut self.members[index];
        let same_protocols = member.protocols == request.protocols;
        member.protocols = request.protocols;
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.session_timeout = millis(request.session_timeout_ms);
        member.rebalance_timeout = millis(request.rebalance_timeout_ms);
        member.session_deadline = now + member.session_timeout;
        match self.state {
            // It missed its JoinGroup answer: the same one again.
            GroupState::CompletingRebalance if same_protocols => {
                return Reply::Now(self.joined(index));
            }
            // A follower with nothing new may sync with this generation.
            GroupState::Stable if same_protocols && !is_leader => {
                return Reply::Now(self.joined(index));
            }
            _ => {}
        }
        let (joining, answer) = oneshot::channel();
        if let Some(previous) = self.members[index].joining.replace(joining) {
            let _ = previous.send(Joined::error(
                &request.member_id,
                ResponseError::RebalanceInProgress,
            ));
        }
        self.prepare_rebalance(now);
        self.try_complete_join(now);
        Reply::Later(answer)
    }

    /// The JoinGroup answer of the current generation for a member: the
    /// leader's lists every member with its metadata.
    fn joined(&self, index: usize) -> Joined {
        let member = &self.members[index];
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        let members = if member.id == leader {
            self.members
                .iter()
                .map(|m| JoinedMember {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata(protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        Joined {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member.id.clone(),
            members,
        }
    }

    /// Starts a rebalance, unless one is under way.
    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        if self.state == GroupState::CompletingRebalance {
            // The assignments the followers wait for will not come.
            for member in &mut self.members {
                member.assignment = Bytes::new();
                if let Some(syncing) = member.syncing.take() {
                    let _ = syncing.send(Err(ResponseError::RebalanceInProgress));
                    member.session_deadline = now + member.session_timeout;
                }
            }
        }
        let timeout = self
            .members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        info!(group = %self.id, generation = self.generation, members = self.members.len(), "rebalance");
        self.state = GroupState::PreparingRebalance;
        self.deadline = Some(now + timeout);
    }

    /// Completes the join once every known member has rejoined.
    fn try_complete_join(&mut self, now: Instant) {
        if self.state == GroupState::PreparingRebalance
            && self.pending.is_empty()
            && self.members.iter().all(|m| m.joining.is_some())
        {
            self.complete_join(now);
        }
    }

    /// The next generation, with the members that rejoined.
    fn complete_join(&mut self, now: Instant) {
        let (stayed, late): (Vec<Member>, Vec<Member>) = std::mem::take(&mut self.members)
            .into_iter()
            .partition(|m| m.joining.is_some());
        self.members = stayed;
        for mut member in late {
            info!(group = %self.id, member = %member.id, "member did not rejoin in time; removed");
            member.answer_waiting(ResponseError::UnknownMemberId);
        }
        if !self
            .members
            .iter()
            .any(|m| Some(&m.id) == self.leader.as_ref())
        {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        self.generation += 1;
        self.deadline = None;
        if self.members.is_empty() {
            info!(group = %self.id, generation = self.generation, "group is empty");
            self.state = GroupState::Empty;
            self.protocol_name = None;
            return;
        }
        self.protocol_name = protocol::select(&self.members);
        if self.protocol_name.is_none() {
            // The join checks make this impossible; never hang members on it.
            debug_assert!(false, "no protocol common to the members");
            for mut member in std::mem::take(&mut self.members) {
                member.answer_waiting(ResponseError::InconsistentGroupProtocol);
            }
            self.leader = None;
            self.state = GroupState::Empty;
            return;
        }
        info!(
            group = %self.id,
            generation = self.generation,
            protocol = self.protocol_name.as_deref().unwrap_or_default(),
            leader = self.leader.as_deref().unwrap_or_default(),
            members = self.members.len(),
            "generation joined"
        );
        self.state = GroupState::CompletingRebalance;
        self.deadline = Some(now + self.rebalance_timeout());
        let answers: Vec<Joined> = (0..self.members.len()).map(|i| self.joined(i)).collect();
        for (member, answer) in self.members.iter_mut().zip(answers) {
            member.assignment = Bytes::new();
            member.synced = false;
            member.session_deadline = now + member.session_timeout;
            if let Some(joining) = member.joining.take() {
                let _ = joining.send(answer);
            }
        }
    }

    fn rebalance_timeout(&self) -> Duration {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    /// Handles a SyncGroup.
    pub(crate) fn sync(
        &mut self,
        request: SyncRequest,
        now: Instant,
    ) -> Reply<Result<Synced, ResponseError>> {
        let index = match self.find(&request.member_id, request.instance_id.as_deref()) {
            Ok(index) => index,
            Err(error) => return Reply::Now(Err(error)),
        };
        if request.generation != self.generation {
            return Reply::Now(Err(ResponseError::IllegalGeneration));
        }
        let mismatch = |asked: &Option<String>, ours: &Option<String>| {
            asked.as_ref().is_some_and(|a| Some(a) != ours.as_ref())
        };
        if mismatch(&request.protocol_type, &self.protocol_type)
            || mismatch(&request.protocol_name, &self.protocol_name)
        {
            return Reply::Now(Err(ResponseError::InconsistentGroupProtocol));
        }
        let member = &mut self.members[index];
        member.session_deadline = now + member.session_timeout;
        match self.state {
            GroupState::Empty | GroupState::Dead => Reply::Now(Err(ResponseError::UnknownMemberId)),
            GroupState::PreparingRebalance => Reply::Now(Err(ResponseError::RebalanceInProgress)),
            GroupState::Stable => {
                self.members[index].synced = true;
                let synced = self.synced(index);
                self.end_sync_deadline();
                Reply::Now(Ok(synced))
            }
            GroupState::CompletingRebalance => {
                self.members[index].synced = true;
                if self.leader.as_deref() == Some(request.member_id.as_str()) {
                    self.assign(request.assignments, now);
                    return Reply::Now(Ok(self.synced(index)));
                }
                let (syncing, answer) = oneshot::channel();
                if let Some(previous) = self.members[index].syncing.replace(syncing) {
                    let _ = previous.send(Err(ResponseError::RebalanceInProgress));
                }
                Reply::Later(answer)
            }
        }
    }

    /// The leader's assignments: each member gets its own, and the group
    /// is Stable.
    fn assign(&mut self, mut assignments: Vec<(String, Bytes)>, now: Instant) {
        for member in &mut self.members {
            member.assignment = assignments
                .iter_mut()
                .find(|(id, _)| *id == member.id)
                .map(|(_, assignment)| std::mem::take(assignment))
                .unwrap_or_default();
        }
        self.state = GroupState::Stable;
        info!(group = %self.id, generation = self.generation, "group is stable");
        for index in 0..self.members.len() {
            let synced = self.synced(index);
            let member = &mut self.members[index];
            if let Some(syncing) = member.syncing.take() {
                let _ = syncing.send(Ok(synced));
                member.session_deadline = now + member.session_timeout;
            }
        }
        self.end_sync_deadline();
    }

    fn synced(&self, index: usize) -> Synced {
        Synced {
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self.members[index].assignment.clone(),
        }
    }

    /// Once every member sent SyncGroup, none can be late for it.
    fn end_sync_deadline(&mut self) {
        if self.members.iter().all(|m| m.synced) {
            self.deadline = None;
        }
    }

    /// Handles a Heartbeat.
    pub(crate) fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), ResponseError> {
        let index = self.find(member_id, instance_id)?;
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        let member = &mut self.members[index];
        member.session_deadline = now + member.session_timeout;
        match self.state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Handles one member of a LeaveGroup: it is removed and the others
    /// rebalance. A member known only by its `group.instance.id` may
    /// leave by it.
    pub(crate) fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<(), ResponseError> {
        if let Some(i) = self.pending.iter().position(|(id, _)| id == member_id) {
            self.pending.remove(i);
            self.try_complete_join(now);
            return Ok(());
        }
        let index = match (member_id, instance_id) {
            ("", Some(instance)) => self
                .position_of_instance(instance)
                .ok_or(ResponseError::UnknownMemberId)?,
            _ => self.find(member_id, instance_id)?,
        };
        info!(group = %self.id, member = %self.members[index].id, "member leaves");
        self.remove(index, ResponseError::UnknownMemberId, now);
        Ok(())
    }

    /// Whether an OffsetCommit may go through: a member of the current
    /// generation, or (generation -1, no member id) a group without
    /// members. Like a heartbeat, it keeps the member's session alive.
    pub(crate) fn check_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), ResponseError> {
        if generation < 0 && member_id.is_empty() && instance_id.is_none() {
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(ResponseError::UnknownMemberId)
            };
        }
        let index = self.find(member_id, instance_id)?;
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        let member = &mut self.members[index];
        member.session_deadline = now + member.session_timeout;
        Ok(())
    }

    /// Acts on the deadlines that passed: members whose session ended,
    /// ids that were never used, a rebalance that waited long enough, or
    /// members that never sent SyncGroup. Returns the next deadline.
    pub(crate) fn expire(&mut self, now: Instant) -> Option<Instant> {
        let pending = self.pending.len();
        self.pending.retain(|(_, deadline)| *deadline > now);
        if self.pending.len() != pending {
            self.try_complete_join(now);
        }
        while let Some(index) = self
            .members
            .iter()
            .position(|m| !m.waiting() && m.session_deadline <= now)
        {
            info!(group = %self.id, member = %self.members[index].id, "session expired; member removed");
            self.remove(index, ResponseError::UnknownMemberId, now);
        }
        if self.deadline.is_some_and(|deadline| deadline <= now) {
            self.deadline = None;
            match self.state {
                GroupState::PreparingRebalance => self.complete_join(now),
                GroupState::CompletingRebalance | GroupState::Stable => {
                    let late: Vec<String> = self
                        .members
                        .iter()
                        .filter(|m| !m.synced)
                        .map(|m| m.id.clone())
                        .collect();
                    for id in late {
                        if let Some(index) = self.members.iter().position(|m| m.id == id) {
                            info!(group = %self.id, member = %id, "no SyncGroup in time; member removed");
                            self.remove(index, ResponseError::UnknownMemberId, now);
                        }
                    }
                }
                GroupState::Empty | GroupState::Dead => {}
            }
        }
        let sessions = self
            .members
            .iter()
            .filter(|m| !m.waiting())
            .map(|m| m.session_deadline);
        let pending = self.pending.iter().map(|(_, deadline)| *deadline);
        sessions.chain(pending).chain(self.deadline).min()
    }

    /// Removes a member (answering what it waits for with `error`) and
    /// rebalances the others.
    fn remove(&mut self, index: usize, error: ResponseError, now: Instant) {
        let mut member = self.members.remove(index);
        member.answer_waiting(error);
        if self.leader.as_ref() == Some(&member.id) {
            self.leader = None;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now);
                self.try_complete_join(now);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// The member `member_id`, checked against its `group.instance.id`:
    /// another member holding that instance id fences this one.
    fn find(&self, member_id: &str, instance_id: Option<&str>) -> Result<usize, ResponseError> {
        if let Some(holder) = instance_id.and_then(|i| self.position_of_instance(i))
            && self.members[holder].id != member_id
        {
            return Err(ResponseError::FencedInstanceId);
        }
        self.members
            .iter()
            .position(|m| m.id == member_id)
            .ok_or(ResponseError::UnknownMemberId)
    }

    fn position_of_instance(&self, instance_id: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    /// The group as ListGroups and DescribeGroups report it.
    pub(crate) fn summary(&self) -> GroupSummary {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupSummary {
            id: self.id.clone(),
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: self
                .members
                .iter()
                .map(|m| MemberSummary {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }
}
