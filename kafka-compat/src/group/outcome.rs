//! What JoinGroup and SyncGroup answer, before the wire encoding.

use bytes::Bytes;
use kafka_protocol::ResponseError;

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Joined {
    /// The error, if the join failed (MEMBER_ID_REQUIRED among them).
    pub(crate) error: Option<ResponseError>,
    /// The generation joined (-1 on error).
    pub(crate) generation: i32,
    /// The group's protocol type (`consumer`).
    pub(crate) protocol_type: Option<String>,
    /// The protocol chosen for this generation.
    pub(crate) protocol_name: Option<String>,
    /// The leader's member id.
    pub(crate) leader: String,
    /// The member's id (the one just given, for a new member).
    pub(crate) member_id: String,
    /// For the leader, every member with its metadata for the chosen
    /// protocol; empty for the others.
    pub(crate) members: Vec<JoinedMember>,
}

impl Joined {
    /// A failed join of `member_id`.
    pub(crate) fn error(member_id: &str, error: ResponseError) -> Self {
        Self {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JoinedMember {
    /// Its member id.
    pub(crate) id: String,
    /// Its `group.instance.id`.
    pub(crate) instance_id: Option<String>,
    /// Its metadata for the chosen protocol (its subscription).
    pub(crate) metadata: Bytes,
}

/// The answer to a SyncGroup that succeeded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Synced {
    /// The group's protocol type.
    pub(crate) protocol_type: Option<String>,
    /// The generation's protocol.
    pub(crate) protocol_name: Option<String>,
    /// The member's assignment, as the leader encoded it.
    pub(crate) assignment: Bytes,
}

/// An answer that is ready, or one to wait for.
#[derive(Debug)]
pub(crate) enum Reply<T> {
    /// Answered at once.
    Now(T),
    /// Answered when the rebalance gets there.
    Later(tokio::sync::oneshot::Receiver<T>),
}

/// A group as ListGroups and DescribeGroups report it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupSummary {
    /// The group id.
    pub(crate) id: String,
    /// Its state.
    pub(crate) state: super::GroupState,
    /// Its protocol type (`consumer`), empty for a group with no members
    /// yet.
    pub(crate) protocol_type: String,
    /// The generation's protocol, when the group is Stable.
    pub(crate) protocol_name: String,
    /// Its members; metadata and assignments only when Stable, as Kafka.
    pub(crate) members: Vec<MemberSummary>,
}

/// A member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MemberSummary {
    /// Its member id.
    pub(crate) id: String,
    /// Its `group.instance.id`.
    pub(crate) instance_id: Option<String>,
    /// Its client id.
    pub(crate) client_id: String,
    /// Where it connected from.
    pub(crate) client_host: String,
    /// Its metadata for the generation's protocol.
    pub(crate) metadata: Bytes,
    /// Its assignment.
    pub(crate) assignment: Bytes,
}
