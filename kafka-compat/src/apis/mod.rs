//! The APIs served, one module each, and the versions of each: exactly
//! what ApiVersions advertises.

pub(crate) mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_configs;
mod describe_groups;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_fetch;
mod produce;
mod sync_group;
mod topic_config;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteGroupsRequest,
    DeleteGroupsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FetchRequest, FetchResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, InitProducerIdRequest, InitProducerIdResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    ProduceRequest, ProduceResponse, RequestHeader, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::connection::Connection;

/// The APIs served and their version ranges (inclusive). Every version
/// listed works; the request guard knows each one's layout.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
];

/// The versions of `key` served, if it is served at all.
pub(crate) fn served_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

/// A decoded request of a served API.
#[derive(Debug)]
pub(crate) enum Request {
    ApiVersions(ApiVersionsRequest),
    Metadata(MetadataRequest),
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    FindCoordinator(FindCoordinatorRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    ListGroups(ListGroupsRequest),
    DescribeGroups(DescribeGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    CreatePartitions(CreatePartitionsRequest),
    DescribeConfigs(DescribeConfigsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    DeleteRecords(DeleteRecordsRequest),
    InitProducerId(InitProducerIdRequest),
}

impl Request {
    /// Decodes the body of a request of `key` at `version`; `None` for an
    /// API not served.
    pub(crate) fn decode(key: ApiKey, body: &mut Bytes, version: i16) -> Result<Self, String> {
        let decoded = match key {
            ApiKey::ApiVersions => ApiVersionsRequest::decode(body, version).map(Self::ApiVersions),
            ApiKey::Metadata => MetadataRequest::decode(body, version).map(Self::Metadata),
            ApiKey::Produce => ProduceRequest::decode(body, version).map(Self::Produce),
            ApiKey::Fetch => FetchRequest::decode(body, version).map(Self::Fetch),
            ApiKey::ListOffsets => ListOffsetsRequest::decode(body, version).map(Self::ListOffsets),
            ApiKey::FindCoordinator => {
                FindCoordinatorRequest::decode(body, version).map(Self::FindCoordinator)
            }
            ApiKey::CreateTopics => {
                CreateTopicsRequest::decode(body, version).map(Self::CreateTopics)
            }
            ApiKey::DeleteTopics => {
                DeleteTopicsRequest::decode(body, version).map(Self::DeleteTopics)
            }
            ApiKey::OffsetCommit => {
                OffsetCommitRequest::decode(body, version).map(Self::OffsetCommit)
            }
            ApiKey::OffsetFetch => OffsetFetchRequest::decode(body, version).map(Self::OffsetFetch),
            ApiKey::JoinGroup => JoinGroupRequest::decode(body, version).map(Self::JoinGroup),
            ApiKey::SyncGroup => SyncGroupRequest::decode(body, version).map(Self::SyncGroup),
            ApiKey::Heartbeat => HeartbeatRequest::decode(body, version).map(Self::Heartbeat),
            ApiKey::LeaveGroup => LeaveGroupRequest::decode(body, version).map(Self::LeaveGroup),
            ApiKey::ListGroups => ListGroupsRequest::decode(body, version).map(Self::ListGroups),
            ApiKey::DescribeGroups => {
                DescribeGroupsRequest::decode(body, version).map(Self::DescribeGroups)
            }
            ApiKey::DeleteGroups => {
                DeleteGroupsRequest::decode(body, version).map(Self::DeleteGroups)
            }
            ApiKey::CreatePartitions => {
                CreatePartitionsRequest::decode(body, version).map(Self::CreatePartitions)
            }
            ApiKey::DescribeConfigs => {
                DescribeConfigsRequest::decode(body, version).map(Self::DescribeConfigs)
            }
            ApiKey::IncrementalAlterConfigs => {
                IncrementalAlterConfigsRequest::decode(body, version)
                    .map(Self::IncrementalAlterConfigs)
            }
            ApiKey::DeleteRecords => {
                DeleteRecordsRequest::decode(body, version).map(Self::DeleteRecords)
            }
            ApiKey::InitProducerId => {
                InitProducerIdRequest::decode(body, version).map(Self::InitProducerId)
            }
            other => return Err(format!("{other:?} is not served")),
        };
        decoded.map_err(|e| e.to_string())
    }
}

/// A response to encode.
#[derive(Debug)]
pub(crate) enum Response {
    ApiVersions(ApiVersionsResponse),
    Metadata(MetadataResponse),
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    FindCoordinator(FindCoordinatorResponse),
    CreateTopics(CreateTopicsResponse),
    DeleteTopics(DeleteTopicsResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    ListGroups(ListGroupsResponse),
    DescribeGroups(DescribeGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    CreatePartitions(CreatePartitionsResponse),
    DescribeConfigs(DescribeConfigsResponse),
    IncrementalAlterConfigs(IncrementalAlterConfigsResponse),
    DeleteRecords(DeleteRecordsResponse),
    InitProducerId(InitProducerIdResponse),
}

impl Response {
    /// Encodes the body at `version`.
    pub(crate) fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), String> {
        match self {
            Self::ApiVersions(r) => r.encode(buf, version),
            Self::Metadata(r) => r.encode(buf, version),
            Self::Produce(r) => r.encode(buf, version),
            Self::Fetch(r) => r.encode(buf, version),
            Self::ListOffsets(r) => r.encode(buf, version),
            Self::FindCoordinator(r) => r.encode(buf, version),
            Self::CreateTopics(r) => r.encode(buf, version),
            Self::DeleteTopics(r) => r.encode(buf, version),
            Self::OffsetCommit(r) => r.encode(buf, version),
            Self::OffsetFetch(r) => r.encode(buf, version),
            Self::JoinGroup(r) => r.encode(buf, version),
            Self::SyncGroup(r) => r.encode(buf, version),
            Self::Heartbeat(r) => r.encode(buf, version),
            Self::LeaveGroup(r) => r.encode(buf, version),
            Self::ListGroups(r) => r.encode(buf, version),
            Self::DescribeGroups(r) => r.encode(buf, version),
            Self::DeleteGroups(r) => r.encode(buf, version),
            Self::CreatePartitions(r) => r.encode(buf, version),
            Self::DescribeConfigs(r) => r.encode(buf, version),
            Self::IncrementalAlterConfigs(r) => r.encode(buf, version),
            Self::DeleteRecords(r) => r.encode(buf, version),
            Self::InitProducerId(r) => r.encode(buf, version),
        }
        .map_err(|e| e.to_string())
    }
}

/// Answers one decoded request (`header` is its header); `None` when
/// Kafka sends no response (a produce with acks=0). A JoinGroup or
/// SyncGroup may wait here for the rest of its group.
pub(crate) async fn handle(
    connection: &Connection,
    header: &RequestHeader,
    request: Request,
) -> Option<Response> {
    Some(match request {
        Request::ApiVersions(request) => Response::ApiVersions(api_versions::handle(&request)),
        Request::Metadata(request) => {
            Response::Metadata(metadata::handle(connection, request).await)
        }
        Request::Produce(request) => Response::Produce(produce::handle(connection, request).await?),
        Request::Fetch(request) => Response::Fetch(fetch::handle(connection, request).await),
        Request::ListOffsets(request) => {
            Response::ListOffsets(list_offsets::handle(connection, request).await)
        }
        Request::FindCoordinator(request) => Response::FindCoordinator(find_coordinator::handle(
            connection,
            &request,
            header.request_api_version,
        )),
        Request::CreateTopics(request) => {
            Response::CreateTopics(create_topics::handle(connection, request).await)
        }
        Request::DeleteTopics(request) => {
            Response::DeleteTopics(delete_topics::handle(connection, request).await)
        }
        Request::OffsetCommit(request) => {
            Response::OffsetCommit(offset_commit::handle(connection, request).await)
        }
        Request::OffsetFetch(request) => {
            Response::OffsetFetch(offset_fetch::handle(connection, request).await)
        }
        Request::JoinGroup(request) => {
            Response::JoinGroup(join_group::handle(connection, header, request).await)
        }
        Request::SyncGroup(request) => {
            Response::SyncGroup(sync_group::handle(connection, request).await)
        }
        Request::Heartbeat(request) => Response::Heartbeat(heartbeat::handle(connection, &request)),
        Request::LeaveGroup(request) => {
            Response::LeaveGroup(leave_group::handle(connection, header, request))
        }
        Request::ListGroups(request) => {
            Response::ListGroups(list_groups::handle(connection, &request).await)
        }
        Request::DescribeGroups(request) => {
            Response::DescribeGroups(describe_groups::handle(connection, header, request).await)
        }
        Request::DeleteGroups(request) => {
            Response::DeleteGroups(delete_groups::handle(connection, request).await)
        }
        Request::CreatePartitions(request) => {
            Response::CreatePartitions(create_partitions::handle(connection, request).await)
        }
        Request::DescribeConfigs(request) => {
            Response::DescribeConfigs(describe_configs::handle(connection, request).await)
        }
        Request::IncrementalAlterConfigs(request) => Response::IncrementalAlterConfigs(
            incremental_alter_configs::handle(connection, request).await,
        ),
        Request::DeleteRecords(request) => {
            Response::DeleteRecords(delete_records::handle(connection, request).await)
        }
        Request::InitProducerId(request) => {
            Response::InitProducerId(init_producer_id::handle(connection, &request).await)
        }
    })
}
