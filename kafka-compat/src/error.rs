//! What can go wrong on a Kafka connection. Errors about one partition are
//! answered with its Kafka error code ([`error_code`]); errors about the
//! connection itself (a frame too large, a body that does not decode) close
//! that connection and nothing else.

use kafka_protocol::ResponseError;
use tributary_executor::ExecError;

/// An error that ends a connection.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// Reading or writing the socket failed.
    #[error("connection I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The frame's size is negative or above the maximum.
    #[error("bad frame: {reason}")]
    BadFrame {
        /// Why.
        reason: String,
    },
    /// A request that does not decode.
    #[error("malformed request (api key {api_key} v{version}): {reason}")]
    Malformed {
        /// The request's API key.
        api_key: i16,
        /// Its version.
        version: i16,
        /// Why.
        reason: String,
    },
    /// A response that could not be encoded (a bug, logged).
    #[error("encoding a response: {0}")]
    Encode(String),
}

/// The Kafka error code for an engine error about one partition.
pub(crate) fn error_code(error: &ExecError) -> ResponseError {
    match error {
        ExecError::Storage(storage) => storage_error_code(storage),
        ExecError::InvalidRecord { .. } => ResponseError::InvalidRecord,
        // As Kafka refuses appends to its internal topics.
        ExecError::ReadOnlyStream { .. } => ResponseError::InvalidTopicException,
        // A topic a materialized view reads.
        ExecError::DependentObjects { .. } => ResponseError::PolicyViolation,
        _ => ResponseError::UnknownServerError,
    }
}

/// The Kafka error code for a log error about one partition.
pub(crate) fn storage_error_code(error: &tributary_storage::Error) -> ResponseError {
    use tributary_storage::Error as Storage;
    match error {
        Storage::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        Storage::UnknownStream(_) | Storage::UnknownPartition { .. } => {
            ResponseError::UnknownTopicOrPartition
        }
        Storage::InvalidBatch { .. } => ResponseError::CorruptMessage,
        Storage::StreamExists(_) => ResponseError::TopicAlreadyExists,
        Storage::InvalidConfig(_) => ResponseError::InvalidConfig,
        Storage::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        // Kafka answers a produce of a fenced idempotent producer this way
        // since KIP-588 (PRODUCER_FENCED is for transactional ones).
        Storage::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        _ => ResponseError::KafkaStorageError,
    }
}
