//! A structural check of request bodies before `kafka-protocol` decodes
//! them. Its decoders reserve `count` elements as soon as they read an
//! array's count, before reading any element: an 8-byte frame claiming two
//! billion topics would reserve hundreds of gigabytes and abort the process.
//! Every element of every request array takes at least one byte, so a count
//! larger than the bytes left is a lie. This module walks each request's
//! layout (for the versions the server advertises) and refuses such counts;
//! strings and byte fields need no check (the decoder reads them only when
//! the bytes are there).

use crate::error::KafkaError;

/// Checks the body of a request of `api_key` at `version` (the bytes after
/// the request header): its whole layout, so a body cut short fails here
/// too. An API without an entry here has no arrays in the versions served
/// (ApiVersions), or is refused before decoding.
pub(crate) fn check_request(api_key: i16, version: i16, body: &[u8]) -> Result<(), KafkaError> {
    use kafka_protocol::messages::ApiKey;
    let mut walk = Walk {
        rest: body,
        flexible: false,
    };
    let checked = match ApiKey::try_from(api_key) {
        Ok(ApiKey::Metadata) => walk.metadata(version),
        Ok(ApiKey::Produce) => walk.produce(version),
        Ok(ApiKey::Fetch) => walk.fetch(version),
        Ok(ApiKey::ListOffsets) => walk.list_offsets(version),
        Ok(ApiKey::FindCoordinator) => walk.find_coordinator(version),
        Ok(ApiKey::CreateTopics) => walk.create_topics(version),
        Ok(ApiKey::DeleteTopics) => walk.delete_topics(version),
        Ok(ApiKey::OffsetCommit) => walk.offset_commit(version),
        Ok(ApiKey::OffsetFetch) => walk.offset_fetch(version),
        Ok(ApiKey::JoinGroup) => walk.join_group(version),
        Ok(ApiKey::SyncGroup) => walk.sync_group(version),
        Ok(ApiKey::Heartbeat) => walk.heartbeat(version),
        Ok(ApiKey::LeaveGroup) => walk.leave_group(version),
        Ok(ApiKey::ListGroups) => walk.list_groups(version),
        Ok(ApiKey::DescribeGroups) => walk.describe_groups(version),
        Ok(ApiKey::DeleteGroups) => walk.delete_groups(version),
        Ok(ApiKey::CreatePartitions) => walk.create_partitions(version),
        Ok(ApiKey::DescribeConfigs) => walk.describe_configs(version),
        Ok(ApiKey::IncrementalAlterConfigs) => walk.incremental_alter_configs(version),
        Ok(ApiKey::DeleteRecords) => walk.delete_records(version),
        Ok(ApiKey::InitProducerId) => walk.init_producer_id(version),
        _ => Some(()),
    };
    checked.ok_or(KafkaError::Malformed {
        api_key,
        version,
        reason: "an array count exceeds the bytes sent, or the body is cut short".into(),
    })
}

/// A cursor over a request body. Each step returns `None` when the body is
/// short or an array claims more elements than bytes remain.
struct Walk<'a> {
    rest: &'a [u8],
    flexible: bool,
}

impl Walk<'_> {
    fn skip(&mut self, n: usize) -> Option<()> {
        self.rest = self.rest.get(n..)?;
        Some(())
    }

    fn int16(&mut self) -> Option<i16> {
        let bytes = self.rest.get(..2)?;
        let value = i16::from_be_bytes([bytes[0], bytes[1]]);
        self.skip(2)?;
        Some(value)
    }

    fn int32(&mut self) -> Option<i32> {
        let bytes = self.rest.get(..4)?;
        let value = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        self.skip(4)?;
        Some(value)
    }

    fn unsigned_varint(&mut self) -> Option<u32> {
        let mut value = 0u32;
        for i in 0..5 {
            let byte = *self.rest.first()?;
            self.skip(1)?;
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// A length or count: in flexible versions an unsigned varint holding
    /// it plus one, else a signed integer of 2 or 4 bytes. -1 is null.
    fn length(&mut self, four_bytes: bool) -> Option<i64> {
        if self.flexible {
            Some(i64::from(self.unsigned_varint()?) - 1)
        } else if four_bytes {
            self.int32().map(i64::from)
        } else {
            self.int16().map(i64::from)
        }
    }

    /// Skips a (nullable) field of `length` bytes.
    fn skip_field(&mut self, length: i64) -> Option<()> {
        if length > 0 {
            self.skip(usize::try_from(length).ok()?)?;
        }
        Some(())
    }

    /// A (nullable) string.
    fn string(&mut self) -> Option<()> {
        let length = self.length(false)?;
        self.skip_field(length)
    }

    /// A (nullable) byte field, such as a produce request's records.
    fn bytes(&mut self) -> Option<()> {
        let length = self.length(true)?;
        self.skip_field(length)
    }

    fn tagged_fields(&mut self) -> Option<()> {
        if !self.flexible {
            return Some(());
        }
        let count = self.unsigned_varint()?;
        for _ in 0..count {
            self.unsigned_varint()?;
            let size = self.unsigned_varint()?;
            self.skip(usize::try_from(size).ok()?)?;
        }
        Some(())
    }

    /// An array whose elements `element` walks; its count must not exceed
    /// the bytes left. A null array is allowed.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        let count = self.length(true)?;
        if count < -1 || count > self.rest.len() as i64 {
            return None;
        }
        for _ in 0..count.max(0) {
            element(self)?;
        }
        Some(())
    }

    fn metadata(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 9;
        self.array(|w| {
            if version >= 10 {
                w.skip(16)?;
            }
            w.string()?;
            w.tagged_fields()
        })?;
        let flags = match version {
            ..=3 => 0,
            4..=7 => 1,
            8..=10 => 3,
            _ => 2,
        };
        self.skip(flags)?;
        self.tagged_fields()
    }

    fn produce(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 9;
        self.string()?; // transactional id
        self.skip(2 + 4)?; // acks, timeout
        self.array(|w| {
            w.string()?;
            w.array(|w| {
                w.skip(4)?;
                w.bytes()?;
                w.tagged_fields()
            })?;
            w.tagged_fields()
        })?;
        self.tagged_fields()
    }

    fn fetch(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 12;
        self.skip(4 + 4 + 4 + 4 + 1)?; // replica, max wait, min bytes, max bytes, isolation
        if version >= 7 {
            self.skip(4 + 4)?; // session id and epoch
        }
        self.array(|w| {
            w.string()?;
            w.array(|w| {
                let epochs = if version >= 9 { 4 } else { 0 };
                let last_fetched = if version >= 12 { 4 } else { 0 };
                let log_start = if version >= 5 { 8 } else { 0 };
                w.skip(4 + epochs + 8 + last_fetched + log_start + 4)?;
                w.tagged_fields()
            })?;
            w.tagged_fields()
        })?;
        if version >= 7 {
            self.array(|w| {
                w.string()?;
                w.array(|w| w.skip(4))?;
                w.tagged_fields()
            })?;
        }
        if version >= 11 {
            self.string()?;
        }
        self.tagged_fields()
    }

    fn find_coordinator(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 3;
        if version <= 3 {
            self.string()?;
        }
        if version >= 1 {
            self.skip(1)?; // key type
        }
        if version >= 4 {
            self.array(Walk::string)?;
        }
        self.tagged_fields()
    }

    fn create_topics(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 5;
        self.array(|w| {
            w.string()?;
            w.skip(4 + 2)?; // partitions, replication factor
            w.array(|w| {
                w.skip(4)?;
                w.array(|w| w.skip(4))?;
                w.tagged_fields()
            })?;
            w.array(|w| {
                w.string()?;
                w.string()?;
                w.tagged_fields()
            })?;
            w.tagged_fields()
        })?;
        self.skip(4 + 1)?; // timeout, validate only
        self.tagged_fields()
    }

    fn delete_topics(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 4;
        if version >= 6 {
            self.array(|w| {
                w.string()?;
                w.skip(16)?;
                w.tagged_fields()
            })?;
        } else {
            self.array(Walk::string)?;
        }
        self.skip(4)?; // timeout
        self.tagged_fields()
    }

    fn offset_commit(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 8;
        self.string()?; // group id
        self.skip(4)?; // generation
        self.string()?; // member id
        if version >= 7 {
            self.string()?; // group instance id
        }
        if version <= 4 {
            self.skip(8)?; // retention time
        }
        self.array(|w| {
            w.string()?;
            w.array(|w| {
                w.skip(4 + 8)?; // partition, offset
                if version >= 6 {
                    w.skip(4)?; // leader epoch
                }
                w.string()?; // metadata
                w.tagged_fields()
            })?;
            w.tagged_fields()
        })?;
        self.tagged_fields()
    }

    fn offset_fetch(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 6;
        self.string()?; // group id
        self.array(|w| {
            w.string()?;
            w.array(|w| w.skip(4))?;
            w.tagged_fields()
        })?;
        if version >= 7 {
            self.skip(1)?; // require stable
        }
        self.tagged_fields()
    }

    fn join_group(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 6;
        self.string()?; // group id
        self.skip(4)?; // session timeout
        if version >= 1 {
            self.skip(4)?; // rebalance timeout
        }
        self.string()?; // member id
        if version >= 5 {
            self.string()?; // group instance id
        }
        self.string()?; // protocol type
        self.array(|w| {
            w.string()?;
            w.bytes()?;
            w.tagged_fields()
        })?;
        if version >= 8 {
            self.string()?; // reason
        }
        self.tagged_fields()
    }

    fn sync_group(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 4;
        self.string()?; // group id
        self.skip(4)?; // generation
        self.string()?; // member id
        if version >= 3 {
            self.string()?; // group instance id
        }
        if version >= 5 {
            self.string()?; // protocol type
            self.string()?; // protocol name
        }
        self.array(|w| {
            w.string()?;
            w.bytes()?;
            w.tagged_fields()
        })?;
        self.tagged_fields()
    }

    fn heartbeat(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 4;
        self.string()?; // group id
        self.skip(4)?; // generation
        self.string()?; // member id
        if version >= 3 {
            self.string()?; // group instance id
        }
        self.tagged_fields()
    }

    fn leave_group(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 4;
        self.string()?; // group id
        if version <= 2 {
            self.string()?; // member id
        } else {
            self.array(|w| {
                w.string()?; // member id
                w.string()?; // group instance id
                if version >= 5 {
                    w.string()?; // reason
                }
                w.tagged_fields()
            })?;
        }
        self.tagged_fields()
    }

    fn list_groups(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 3;
        if version >= 4 {
            self.array(Walk::string)?; // states filter
        }
        if version >= 5 {
            self.array(Walk::string)?; // types filter
        }
        self.tagged_fields()
    }

    fn describe_groups(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 5;
        self.array(Walk::string)?;
        if version >= 3 {
            self.skip(1)?; // include authorized operations
        }
        self.tagged_fields()
    }

    fn delete_groups(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 2;
        self.array(Walk::string)?;
        self.tagged_fields()
    }

    fn create_partitions(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 2;
        self.array(|w| {
            w.string()?;
            w.skip(4)?; // count
            w.array(|w| {
                w.array(|w| w.skip(4))?; // broker ids
                w.tagged_fields()
            })?;
            w.tagged_fields()
        })?;
        self.skip(4 + 1)?; // timeout, validate only
        self.tagged_fields()
    }

    fn describe_configs(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 4;
        self.array(|w| {
            w.skip(1)?; // resource type
            w.string()?;
            w.array(Walk::string)?; // configuration keys
            w.tagged_fields()
        })?;
        self.skip(1)?; // include synonyms
        if version >= 3 {
            self.skip(1)?; // include documentation
        }
        self.tagged_fields()
    }

    /// No arrays; walked so a body cut short is refused like the others.
    fn init_producer_id(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 2;
        self.string()?; // transactional id
        self.skip(4)?; // transaction timeout
        if version >= 3 {
            self.skip(8 + 2)?; // producer id and epoch
        }
        self.tagged_fields()
    }

    fn incremental_alter_configs(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 1;
        self.array(|w| {
            w.skip(1)?; // resource type
            w.string()?;
            w.array(|w| {
                w.string()?;
                w.skip(1)?; // operation
                w.string()?; // value
                w.tagged_fields()
            })?;
            w.tagged_fields()
        })?;
        self.skip(1)?; // validate only
        self.tagged_fields()
    }

    fn delete_records(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 2;
        self.array(|w| {
            w.string()?;
            w.array(|w| {
                w.skip(4 + 8)?; // partition, offset
                w.tagged_fields()
            })?;
            w.tagged_fields()
        })?;
        self.skip(4)?; // timeout
        self.tagged_fields()
    }

    fn list_offsets(&mut self, version: i16) -> Option<()> {
        self.flexible = version >= 6;
        self.skip(4)?; // replica id
        if version >= 2 {
            self.skip(1)?;
        }
        self.array(|w| {
            w.string()?;
            w.array(|w| {
                let epoch = if version >= 4 { 4 } else { 0 };
                w.skip(4 + epoch + 8)?;
                w.tagged_fields()
            })?;
            w.tagged_fields()
        })?;
        self.tagged_fields()
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
    };
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::{
        ApiKey, BrokerId, CreateTopicsRequest, DeleteGroupsRequest, DeleteTopicsRequest,
        DescribeGroupsRequest, FetchRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
        InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest,
        ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest,
        ProduceRequest, ProducerId, SyncGroupRequest, TopicName, TransactionalId,
        fetch_request::{FetchPartition, FetchTopic},
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        metadata_request::MetadataRequestTopic,
        produce_request::{PartitionProduceData, TopicProduceData},
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    fn encoded(message: &impl Encodable, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        message.encode(&mut buf, version).unwrap();
        buf.to_vec()
    }

    fn name(s: &'static str) -> TopicName {
        TopicName(StrBytes::from_static_str(s))
    }

    fn group(s: &'static str) -> GroupId {
        GroupId(StrBytes::from_static_str(s))
    }

    fn text(s: &'static str) -> StrBytes {
        StrBytes::from_static_str(s)
    }

    /// Realistic requests of the group APIs at every version served.
    fn group_requests() -> Vec<(ApiKey, i16, Vec<u8>)> {
        let mut cases = Vec::new();
        for version in 0..=9 {
            let mut request = JoinGroupRequest::default();
            request.group_id = group("g");
            request.session_timeout_ms = 10_000;
            request.member_id = text("m-1");
            if version >= 5 {
                request.group_instance_id = Some(text("i-1"));
            }
            request.protocol_type = text("consumer");
            let mut protocol = JoinGroupRequestProtocol::default();
            protocol.name = text("range");
            protocol.metadata = bytes::Bytes::from_static(b"subscription");
            request.protocols = vec![protocol.clone(), protocol];
            if version >= 8 {
                request.reason = Some(text("rejoin"));
            }
            cases.push((ApiKey::JoinGroup, version, encoded(&request, version)));
        }
        for version in 0..=5 {
            let mut request = SyncGroupRequest::default();
            request.group_id = group("g");
            request.member_id = text("m-1");
            if version >= 5 {
                request.protocol_type = Some(text("consumer"));
                request.protocol_name = Some(text("range"));
            }
            let mut assignment = SyncGroupRequestAssignment::default();
            assignment.member_id = text("m-1");
            assignment.assignment = bytes::Bytes::from_static(b"assignment");
            request.assignments = vec![assignment.clone(), assignment];
            cases.push((ApiKey::SyncGroup, version, encoded(&request, version)));
        }
        for version in 0..=4 {
            let mut request = HeartbeatRequest::default();
            request.group_id = group("g");
            request.member_id = text("m-1");
            cases.push((ApiKey::Heartbeat, version, encoded(&request, version)));
        }
        for version in 0..=5 {
            let mut request = LeaveGroupRequest::default();
            request.group_id = group("g");
            if version <= 2 {
                request.member_id = text("m-1");
            } else {
                let mut member = MemberIdentity::default();
                member.member_id = text("m-1");
                if version >= 5 {
                    member.reason = Some(text("closing"));
                }
                request.members = vec![member.clone(), member];
            }
            cases.push((ApiKey::LeaveGroup, version, encoded(&request, version)));
        }
        for version in 0..=5 {
            let mut request = ListGroupsRequest::default();
            if version >= 4 {
                request.states_filter = vec![text("Stable"), text("Empty")];
            }
            if version >= 5 {
                request.types_filter = vec![text("classic")];
            }
            cases.push((ApiKey::ListGroups, version, encoded(&request, version)));
        }
        for version in 0..=5 {
            let mut request = DescribeGroupsRequest::default();
            request.groups = vec![group("a"), group("b")];
            cases.push((ApiKey::DescribeGroups, version, encoded(&request, version)));
        }
        for version in 0..=2 {
            let mut request = DeleteGroupsRequest::default();
            request.groups_names = vec![group("a"), group("b")];
            cases.push((ApiKey::DeleteGroups, version, encoded(&request, version)));
        }
        cases
    }

    /// Realistic requests of the admin APIs at every version served.
    fn admin_requests() -> Vec<(ApiKey, i16, Vec<u8>)> {
        use kafka_protocol::messages::create_partitions_request::{
            CreatePartitionsAssignment, CreatePartitionsTopic,
        };
        use kafka_protocol::messages::delete_records_request::{
            DeleteRecordsPartition, DeleteRecordsTopic,
        };
        use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
        use kafka_protocol::messages::incremental_alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        use kafka_protocol::messages::{
            CreatePartitionsRequest, DeleteRecordsRequest, DescribeConfigsRequest,
            IncrementalAlterConfigsRequest,
        };

        let mut cases = Vec::new();
        for version in 0..=3 {
            let mut request = CreatePartitionsRequest::default();
            let mut topic = CreatePartitionsTopic::default();
            topic.name = name("orders");
            topic.count = 4;
            let mut assignment = CreatePartitionsAssignment::default();
            assignment.broker_ids = vec![BrokerId(0); 2];
            topic.assignments = Some(vec![assignment]);
            let mut plain = topic.clone();
            plain.assignments = None;
            request.topics = vec![topic, plain];
            request.validate_only = true;
            cases.push((
                ApiKey::CreatePartitions,
                version,
                encoded(&request, version),
            ));
        }
        for version in 1..=4 {
            let mut request = DescribeConfigsRequest::default();
            let mut topic = DescribeConfigsResource::default();
            topic.resource_type = 2;
            topic.resource_name = text("orders");
            topic.configuration_keys = Some(vec![text("retention.ms"), text("segment.bytes")]);
            let mut broker = DescribeConfigsResource::default();
            broker.resource_type = 4;
            broker.resource_name = text("0");
            request.resources = vec![topic, broker];
            request.include_synonyms = true;
            if version >= 3 {
                request.include_documentation = true;
            }
            cases.push((ApiKey::DescribeConfigs, version, encoded(&request, version)));
        }
        for version in 0..=1 {
            let mut request = IncrementalAlterConfigsRequest::default();
            let mut set = AlterableConfig::default();
            set.name = text("retention.ms");
            set.value = Some(text("1000"));
            let mut delete = AlterableConfig::default();
            delete.name = text("segment.bytes");
            delete.config_operation = 1;
            let mut resource = AlterConfigsResource::default();
            resource.resource_type = 2;
            resource.resource_name = text("orders");
            resource.configs = vec![set, delete];
            request.resources = vec![resource.clone(), resource];
            cases.push((
                ApiKey::IncrementalAlterConfigs,
                version,
                encoded(&request, version),
            ));
        }
        for version in 0..=2 {
            let mut request = DeleteRecordsRequest::default();
            let mut topic = DeleteRecordsTopic::default();
            topic.name = name("orders");
            topic.partitions = vec![DeleteRecordsPartition::default(); 2];
            request.topics = vec![topic.clone(), topic];
            cases.push((ApiKey::DeleteRecords, version, encoded(&request, version)));
        }
        cases
    }

    /// Real requests of every served version pass; cut short, they fail.
    #[test]
    fn well_formed_requests_pass_and_truncated_ones_fail() {
        let mut cases: Vec<(ApiKey, i16, Vec<u8>)> = Vec::new();
        for version in 1..=12 {
            let mut request = MetadataRequest::default();
            let mut topic = MetadataRequestTopic::default();
            topic.name = Some(name("orders"));
            request.topics = Some(vec![topic.clone(), topic]);
            cases.push((ApiKey::Metadata, version, encoded(&request, version)));
        }
        for version in 3..=9 {
            let mut request = ProduceRequest::default();
            let mut partition = PartitionProduceData::default();
            partition.records = Some(bytes::Bytes::from_static(b"0123456789"));
            let mut topic = TopicProduceData::default();
            topic.name = name("orders");
            topic.partition_data = vec![partition.clone(), partition];
            request.topic_data = vec![topic];
            cases.push((ApiKey::Produce, version, encoded(&request, version)));
        }
        for version in 4..=12 {
            let mut request = FetchRequest::default();
            let mut topic = FetchTopic::default();
            topic.topic = name("orders");
            topic.partitions = vec![FetchPartition::default(); 3];
            request.topics = vec![topic];
            cases.push((ApiKey::Fetch, version, encoded(&request, version)));
        }
        for version in 1..=7 {
            let mut request = ListOffsetsRequest::default();
            let mut topic = ListOffsetsTopic::default();
            topic.name = name("orders");
            topic.partitions = vec![ListOffsetsPartition::default(); 2];
            request.topics = vec![topic];
            cases.push((ApiKey::ListOffsets, version, encoded(&request, version)));
        }
        for version in 0..=4 {
            let mut request = FindCoordinatorRequest::default();
            if version <= 3 {
                request.key = StrBytes::from_static_str("group");
            } else {
                request.coordinator_keys = vec![StrBytes::from_static_str("a"); 2];
            }
            cases.push((ApiKey::FindCoordinator, version, encoded(&request, version)));
        }
        for version in 2..=7 {
            let mut request = CreateTopicsRequest::default();
            let mut topic = CreatableTopic::default();
            topic.name = name("orders");
            let mut assignment = CreatableReplicaAssignment::default();
            assignment.broker_ids = vec![BrokerId(0); 2];
            topic.assignments = vec![assignment];
            let mut config = CreatableTopicConfig::default();
            config.name = StrBytes::from_static_str("retention.ms");
            config.value = Some(StrBytes::from_static_str("1000"));
            topic.configs = vec![config.clone(), config];
            request.topics = vec![topic];
            cases.push((ApiKey::CreateTopics, version, encoded(&request, version)));
        }
        for version in 1..=6 {
            let mut request = DeleteTopicsRequest::default();
            if version >= 6 {
                let mut topic = DeleteTopicState::default();
                topic.name = Some(name("orders"));
                request.topics = vec![topic.clone(), topic];
            } else {
                request.topic_names = vec![name("a"), name("b")];
            }
            cases.push((ApiKey::DeleteTopics, version, encoded(&request, version)));
        }
        for version in 2..=8 {
            let mut request = OffsetCommitRequest::default();
            request.group_id = GroupId(StrBytes::from_static_str("g"));
            let mut topic = OffsetCommitRequestTopic::default();
            topic.name = name("orders");
            topic.partitions = vec![OffsetCommitRequestPartition::default(); 2];
            request.topics = vec![topic];
            cases.push((ApiKey::OffsetCommit, version, encoded(&request, version)));
        }
        for version in 1..=7 {
            let mut request = OffsetFetchRequest::default();
            request.group_id = GroupId(StrBytes::from_static_str("g"));
            let mut topic = OffsetFetchRequestTopic::default();
            topic.name = name("orders");
            topic.partition_indexes = vec![0, 1, 2];
            request.topics = Some(vec![topic]);
            cases.push((ApiKey::OffsetFetch, version, encoded(&request, version)));
        }
        for version in 0..=4 {
            let mut request = InitProducerIdRequest::default();
            request.transaction_timeout_ms = 60_000;
            if version >= 3 {
                request.producer_id = ProducerId(17);
                request.producer_epoch = 2;
            }
            cases.push((ApiKey::InitProducerId, version, encoded(&request, version)));
            request.transactional_id = Some(TransactionalId(text("tx")));
            cases.push((ApiKey::InitProducerId, version, encoded(&request, version)));
        }
        cases.extend(group_requests());
        cases.extend(admin_requests());
        let covered: Vec<(ApiKey, i16)> = cases.iter().map(|(api, v, _)| (*api, *v)).collect();
        for (api, version, body) in cases {
            check_request(api as i16, version, &body)
                .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
            // ListGroups before version 3 has an empty body: nothing to cut.
            if !body.is_empty() {
                assert!(
                    check_request(api as i16, version, &body[..body.len() - 1]).is_err(),
                    "{api:?} v{version} cut short"
                );
            }
        }
        // Every version served of every API is covered above.
        for &(api, min, max) in crate::apis::SUPPORTED {
            if api == ApiKey::ApiVersions {
                continue;
            }
            for version in min..=max {
                assert!(
                    covered.contains(&(api, version)),
                    "{api:?} v{version} has no case"
                );
            }
        }
    }

    /// The frame from the issue: Metadata v0..v8 claiming 54 million topics.
    #[test]
    fn huge_array_counts_are_refused() {
        let body = 54_000_000i32.to_be_bytes();
        for version in 1..=8 {
            assert!(check_request(ApiKey::Metadata as i16, version, &body).is_err());
        }
        let mut fetch = vec![0u8; 4 * 4 + 1 + 8];
        fetch.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(check_request(ApiKey::Fetch as i16, 7, &fetch).is_err());
        // DescribeGroups and DeleteGroups are a bare array of names; the
        // admin APIs start with an array too.
        for api in [ApiKey::DescribeGroups, ApiKey::DeleteGroups] {
            assert!(check_request(api as i16, 0, &body).is_err());
        }
        for (api, version) in [
            (ApiKey::CreatePartitions, 0),
            (ApiKey::DescribeConfigs, 1),
            (ApiKey::IncrementalAlterConfigs, 0),
            (ApiKey::DeleteRecords, 0),
        ] {
            assert!(check_request(api as i16, version, &body).is_err());
        }
        // A DescribeConfigs resource claiming a billion configuration keys.
        let mut describe = 1i32.to_be_bytes().to_vec();
        describe.push(2); // topic
        describe.extend_from_slice(&0i16.to_be_bytes()); // name
        describe.extend_from_slice(&1_000_000_000i32.to_be_bytes());
        describe.push(0); // include synonyms
        assert!(check_request(ApiKey::DescribeConfigs as i16, 1, &describe).is_err());
        // A JoinGroup with empty strings claiming a billion protocols.
        let mut join = Vec::new();
        join.extend_from_slice(&0i16.to_be_bytes()); // group id
        join.extend_from_slice(&[0; 8]); // session and rebalance timeouts
        join.extend_from_slice(&0i16.to_be_bytes()); // member id
        join.extend_from_slice(&0i16.to_be_bytes()); // protocol type
        join.extend_from_slice(&1_000_000_000i32.to_be_bytes());
        assert!(check_request(ApiKey::JoinGroup as i16, 1, &join).is_err());
        join.truncate(join.len() - 4);
        join.extend_from_slice(&0i32.to_be_bytes());
        assert!(check_request(ApiKey::JoinGroup as i16, 1, &join).is_ok());
    }
}
