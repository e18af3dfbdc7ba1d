//! The Kafka wire protocol over Tributary's engine: every stream is a
//! topic. Kafka clients produce into streams that SQL queries, and fetch
//! what SQL (or other producers) wrote, with the stored batches served as
//! they are.
//!
//! The server ([`serve`]) takes one task per connection and answers its
//! requests in order, as a Kafka broker does. A request's frame size is
//! checked before its body is read, and its structure before
//! `kafka-protocol` decodes it ([`guard`]), so no request can make the
//! server allocate beyond what was sent. A connection that sends something
//! undecodable is closed; every other connection carries on.
//!
//! Served today: ApiVersions, Metadata (with auto-creation of topics),
//! Produce, Fetch (with long polling), ListOffsets, topic admin
//! (CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs,
//! IncrementalAlterConfigs, DeleteRecords), committed offsets (FindCoordinator, OffsetCommit,
//! OffsetFetch) and the classic consumer-group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, ListGroups, DescribeGroups,
//! DeleteGroups, with a group coordinator in memory), at the versions
//! [`apis::SUPPORTED`] lists.

pub mod apis;
pub mod codec;
mod connection;
pub mod error;
mod frame;
mod group;
mod guard;
mod server;

pub use error::KafkaError;
pub use server::{KafkaConfig, serve};
