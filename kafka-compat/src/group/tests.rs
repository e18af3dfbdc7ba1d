//! The group state machine, step by step, with a fake clock.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::member::MemberIds;
use super::membership::{Group, JoinRequest, SyncRequest};
use super::outcome::{Joined, Reply, Synced};
use super::state::GroupState;

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

fn request(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION.as_millis() as i32,
        rebalance_timeout_ms: REBALANCE.as_millis() as i32,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("{member_id}:{p}"))))
            .collect(),
        require_member_id: true,
    }
}

fn now<T: std::fmt::Debug>(reply: Reply<T>) -> T {
    match reply {
        Reply::Now(answer) => answer,
        Reply::Later(_) => panic!("expected an answer at once"),
    }
}

fn later<T: std::fmt::Debug>(reply: Reply<T>) -> oneshot::Receiver<T> {
    match reply {
        Reply::Later(answer) => answer,
        Reply::Now(answer) => panic!("expected to wait, got {answer:?}"),
    }
}

fn sync(member_id: &str, generation: i32, assignments: &[(&str, &str)]) -> SyncRequest {
    SyncRequest {
        member_id: member_id.into(),
        instance_id: None,
        generation,
        protocol_type: Some("consumer".into()),
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
            .collect(),
    }
}

/// A member that gets an id and joins a group on its own: it leads
/// generation `group.generation + 1`. Returns its id.
fn first_member(group: &mut Group, ids: &MemberIds, at: Instant) -> String {
    let required = now(group.join(request("", &["range"]), ids, at));
    assert_eq!(required.error, Some(ResponseError::MemberIdRequired));
    let id = required.member_id;
    let mut joined = later(group.join(request(&id, &["range"]), ids, at));
    let joined = joined.try_recv().unwrap();
    assert_eq!(joined.error, None);
    assert_eq!(joined.leader, id);
    id
}

fn received<T>(answer: &mut oneshot::Receiver<T>) -> T {
    answer
        .try_recv()
        .unwrap_or_else(|_| panic!("no answer yet"))
}

fn pending<T>(answer: &mut oneshot::Receiver<T>) {
    assert!(answer.try_recv().is_err(), "answered too early");
}

/// Two members in a Stable generation 2: (group, leader, follower).
fn stable_pair(ids: &MemberIds, at: Instant) -> (Group, String, String) {
    let mut group = Group::new("g");
    let a = first_member(&mut group, ids, at);
    now(group.sync(sync(&a, 1, &[(&a, "all")]), at)).unwrap();
    let b = now(group.join(request("", &["range"]), ids, at)).member_id;
    let mut b_joined = later(group.join(request(&b, &["range"]), ids, at));
    let mut a_joined = later(group.join(request(&a, &["range"]), ids, at));
    let (a_joined, b_joined) = (received(&mut a_joined), received(&mut b_joined));
    assert_eq!((a_joined.generation, b_joined.generation), (2, 2));
    let mut b_synced = later(group.sync(sync(&b, 2, &[]), at));
    now(group.sync(sync(&a, 2, &[(&a, "a"), (&b, "b")]), at)).unwrap();
    received(&mut b_synced).unwrap();
    assert_eq!(group.summary().state, GroupState::Stable);
    (group, a, b)
}

#[test]
fn a_lone_member_joins_syncs_and_is_stable() {
    let ids = MemberIds::new();
    let t = Instant::now();
    let mut group = Group::new("g");
    let required = now(group.join(request("", &["range", "roundrobin"]), &ids, t));
    assert_eq!(required.error, Some(ResponseError::MemberIdRequired));
    assert!(required.member_id.starts_with("client-"));
    let id = required.member_id;
    let joined = received(&mut later(group.join(
        request(&id, &["range", "roundrobin"]),
        &ids,
        t,
    )));
    assert_eq!(
        (joined.generation, joined.protocol_name.as_deref()),
        (1, Some("range"))
    );
    assert_eq!(joined.members.len(), 1);
    assert_eq!(
        joined.members[0].metadata,
        Bytes::from(format!("{id}:range"))
    );
    assert_eq!(group.summary().state, GroupState::CompletingRebalance);
    let synced: Synced = now(group.sync(sync(&id, 1, &[(&id, "p0,p1")]), t)).unwrap();
    assert_eq!(synced.assignment, Bytes::from("p0,p1"));
    assert_eq!(group.summary().state, GroupState::Stable);
    assert_eq!(group.heartbeat(&id, None, 1, t), Ok(()));
}

#[test]
fn a_new_member_waits_until_the_others_rejoin() {
    let ids = MemberIds::new();
    let t = Instant::now();
    let mut group = Group::new("g");
    let a = first_member(&mut group, &ids, t);
    now(group.sync(sync(&a, 1, &[(&a, "all")]), t)).unwrap();

    let b = now(group.join(request("", &["range"]), &ids, t)).member_id;
    let mut b_joined = later(group.join(request(&b, &["range"]), &ids, t));
    pending(&mut b_joined);
    assert_eq!(group.summary().state, GroupState::PreparingRebalance);
    assert_eq!(
        group.heartbeat(&a, None, 1, t),
        Err(ResponseError::RebalanceInProgress)
    );
    // Commits of the generation being replaced still go through.
    assert_eq!(group.check_commit(&a, None, 1, t), Ok(()));

    let mut a_joined = later(group.join(request(&a, &["range"]), &ids, t));
    let (a_joined, b_joined): (Joined, Joined) = (received(&mut a_joined), received(&mut b_joined));
    assert_eq!((a_joined.generation, b_joined.generation), (2, 2));
    assert_eq!(
        (a_joined.leader.as_str(), b_joined.leader.as_str()),
        (a.as_str(), a.as_str())
    );
    assert_eq!(a_joined.members.len(), 2);
    assert!(b_joined.members.is_empty());

    // The follower waits for the leader's assignments.
    let mut b_synced = later(group.sync(sync(&b, 2, &[]), t));
    pending(&mut b_synced);
    assert_eq!(
        group.check_commit(&b, None, 2, t),
        Err(ResponseError::RebalanceInProgress)
    );
    let a_synced = now(group.sync(sync(&a, 2, &[(&a, "a"), (&b, "b")]), t)).unwrap();
    assert_eq!(a_synced.assignment, Bytes::from("a"));
    assert_eq!(
        received(&mut b_synced).unwrap().assignment,
        Bytes::from("b")
    );
    assert_eq!(group.summary().state, GroupState::Stable);
}

#[test]
fn commits_are_checked_against_the_generation() {
    let ids = MemberIds::new();
    let t = Instant::now();
    let (mut group, a, _b) = stable_pair(&ids, t);
    assert_eq!(group.check_commit(&a, None, 2, t), Ok(()));
    assert_eq!(
        group.check_commit(&a, None, 1, t),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        group.check_commit("stranger", None, 2, t),
        Err(ResponseError::UnknownMemberId)
    );
    // Outside a generation: only for a group without members.
    assert_eq!(
        group.check_commit("", None, -1, t),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        group.heartbeat(&a, None, 1, t),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        group.heartbeat("stranger", None, 2, t),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn leaving_rebalances_the_rest_and_the_last_leaves_it_empty() {
    let ids = MemberIds::new();
    let t = Instant::now();
    let (mut group, a, b) = stable_pair(&ids, t);
    // The leader leaves: the follower leads the next generation.
    assert_eq!(group.leave(&a, None, t), Ok(()));
    assert_eq!(group.summary().state, GroupState::PreparingRebalance);
    assert_eq!(
        group.heartbeat(&b, None, 2, t),
        Err(ResponseError::RebalanceInProgress)
    );
    let joined = received(&mut later(group.join(request(&b, &["range"]), &ids, t)));
    assert_eq!((joined.generation, joined.leader), (3, b.clone()));
    assert_eq!(
        group.leave(&a, None, t),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(group.leave(&b, None, t), Ok(()));
    assert_eq!(group.summary().state, GroupState::Empty);
    assert!(group.is_unused());
    assert_eq!(group.check_commit("", None, -1, t), Ok(()));
}

#[test]
fn members_that_do_not_rejoin_in_time_are_dropped() {
    let ids = MemberIds::new();
    let t = Instant::now();
    let (mut group, a, b) = stable_pair(&ids, t);
    let c = now(group.join(request("", &["range"]), &ids, t)).member_id;
    let mut c_joined = later(group.join(request(&c, &["range"]), &ids, t));
    let mut a_joined = later(group.join(request(&a, &["range"]), &ids, t));
    // b keeps its session alive but never rejoins.
    let mut at = t;
    while at < t + REBALANCE {
        at += Duration::from_secs(5);
        let _ = group.heartbeat(&b, None, 2, at);
        group.expire(at);
    }
    let (a_joined, c_joined) = (received(&mut a_joined), received(&mut c_joined));
    assert_eq!((a_joined.generation, c_joined.generation), (3, 3));
    assert_eq!(a_joined.members.len(), 2);
    assert_eq!(
        group.heartbeat(&b, None, 2, at),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn an_expired_session_removes_the_member_and_rebalances() {
    let ids = MemberIds::new();
    let t = Instant::now();
    let (mut group, a, b) = stable_pair(&ids, t);
    let next = group.expire(t).unwrap();
    assert!(next <= t + SESSION);
    let later_on = t + SESSION / 2;
    assert_eq!(group.heartbeat(&a, None, 2, later_on), Ok(()));
    group.expire(t + SESSION);
    assert_eq!(group.summary().state, GroupState::PreparingRebalance);
    assert_eq!(
        group.heartbeat(&b, None, 2, t + SESSION),
        Err(ResponseError::UnknownMemberId)
    );
    let joined = received(&mut later(group.join(
        request(&a, &["range"]),
        &ids,
        t + SESSION,
    )));
    assert_eq!((joined.generation, joined.members.len()), (3, 1));
}

#[test]
fn a_leader_that_never_syncs_is_dropped_and_the_followers_rejoin() {
    let ids = MemberIds::new();
    let t = Instant::now();
    let (mut group, a, b) = stable_pair(&ids, t);
    assert_eq!(group.leave(&a, None, t), Ok(()));
    let c = now(group.join(request("", &["range"]), &ids, t)).member_id;
    let mut c_joined = later(group.join(request(&c, &["range"]), &ids, t));
    let mut b_joined = later(group.join(request(&b, &["range"]), &ids, t));
    let (b_joined, _) = (received(&mut b_joined), received(&mut c_joined));
    assert_eq!(b_joined.leader, b);
    // c syncs, b (the leader) never does.
    let mut c_synced = later(group.sync(sync(&c, 3, &[]), t));
    group.expire(t + REBALANCE);
    assert_eq!(
        received(&mut c_synced),
        Err(ResponseError::RebalanceInProgress)
    );
    assert_eq!(group.summary().state, GroupState::PreparingRebalance);
    assert_eq!(
        group.heartbeat(&b, None, 3, t + REBALANCE),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn protocols_must_be_shared_and_are_chosen_by_vote() {
    let ids = MemberIds::new();
    let t = Instant::now();
    let mut group = Group::new("g");
    let a = first_member(&mut group, &ids, t);
    let refused = now(group.join(request("", &["roundrobin"]), &ids, t));
    assert_eq!(
        refused.error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    let mut other_type = request("", &["range"]);
    other_type.protocol_type = "connect".into();
    let refused = now(group.join(other_type, &ids, t));
    assert_eq!(
        refused.error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    let mut too_short = request("", &["range"]);
    too_short.session_timeout_ms = 10;
    let refused = now(group.join(too_short, &ids, t));
    assert_eq!(refused.error, Some(ResponseError::InvalidSessionTimeout));
    // Without MEMBER_ID_REQUIRED (versions before 4) a first join goes in.
    let mut old = request("", &["roundrobin", "range"]);
    old.require_member_id = false;
    let mut b_joined = later(group.join(old, &ids, t));
    let a_joined = received(&mut later(group.join(
        request(&a, &["range", "roundrobin"]),
        &ids,
        t,
    )));
    let b_joined = received(&mut b_joined);
    assert_eq!(a_joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(b_joined.protocol_name.as_deref(), Some("range"));
}

#[test]
fn a_static_member_that_comes_back_fences_its_old_self() {
    let ids = MemberIds::new();
    let t = Instant::now();
    let mut group = Group::new("g");
    let mut first = request("", &["range"]);
    first.instance_id = Some("host-1".into());
    let old = received(&mut later(group.join(first, &ids, t))).member_id;
    let mut again = request("", &["range"]);
    again.instance_id = Some("host-1".into());
    let new = received(&mut later(group.join(again, &ids, t))).member_id;
    assert_ne!(old, new);
    assert_eq!(
        group.heartbeat(&old, Some("host-1"), 2, t),
        Err(ResponseError::FencedInstanceId)
    );
    assert_eq!(group.leave("", Some("host-1"), t), Ok(()));
    assert!(group.is_unused());
}

#[test]
fn an_unused_member_id_lapses() {
    let ids = MemberIds::new();
    let t = Instant::now();
    let mut group = Group::new("g");
    let required = now(group.join(request("", &["range"]), &ids, t));
    assert!(!group.is_unused());
    assert_eq!(group.expire(t), Some(t + SESSION));
    group.expire(t + SESSION);
    assert!(group.is_unused());
    let refused = now(group.join(request(&required.member_id, &["range"]), &ids, t));
    assert_eq!(refused.error, Some(ResponseError::UnknownMemberId));
}
