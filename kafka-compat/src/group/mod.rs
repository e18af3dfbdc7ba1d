//! The classic consumer-group protocol's coordinator (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup): groups, their members and
//! generations, in memory. The state machine ([`membership`]) is free of
//! I/O and clocks; the coordinator ([`GroupCoordinator`]) shares it
//! between connections and runs its timers.

mod coordinator;
mod member;
pub(crate) mod membership;
mod outcome;
mod protocol;
mod state;

pub(crate) use coordinator::GroupCoordinator;
pub(crate) use state::GroupState;

#[cfg(test)]
mod tests;
