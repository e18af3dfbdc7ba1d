//! The states of a classic consumer group, as Kafka names them.

/// Where a group is in its rebalance cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    /// No members; the group may still have committed offsets.
    Empty,
    /// A rebalance started: the coordinator waits for every known member
    /// to send JoinGroup again (or for the rebalance timeout).
    PreparingRebalance,
    /// Every member joined the new generation; the coordinator waits for
    /// the leader's SyncGroup with the assignments.
    CompletingRebalance,
    /// The leader's assignments were handed out; members heartbeat.
    Stable,
    /// The group does not exist (deleted, or never known).
    Dead,
}

impl GroupState {
    /// The name Kafka reports in ListGroups and DescribeGroups.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}
