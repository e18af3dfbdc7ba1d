//! One client connection: frames in, requests decoded and answered in the
//! order they came, frames out. A frame that is too large or a request that
//! does not decode ends this connection with a log line, and nothing else.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tracing::{debug, info};
use tributary_executor::Engine;

use crate::apis;
use crate::codec::{DecodedFrame, DecodedRequest, decode_request};
use crate::error::KafkaError;
use crate::frame::read_frame;
use crate::group::GroupCoordinator;
use crate::server::KafkaConfig;

/// A client connection and what answering it needs.
pub(crate) struct Connection {
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: Arc<KafkaConfig>,
    /// The groups, shared by every connection.
    pub(crate) groups: Arc<GroupCoordinator>,
    peer: SocketAddr,
}

impl Connection {
    pub(crate) fn new(
        engine: Arc<Engine>,
        config: Arc<KafkaConfig>,
        groups: Arc<GroupCoordinator>,
        peer: SocketAddr,
    ) -> Self {
        Self {
            engine,
            config,
            groups,
            peer,
        }
    }

    /// The client's address as Kafka reports it in DescribeGroups.
    pub(crate) fn client_host(&self) -> String {
        format!("/{}", self.peer.ip())
    }

    /// Answers requests until the client leaves or sends something that
    /// ends the connection.
    pub(crate) async fn run(self, socket: TcpStream) {
        let (read, mut write) = socket.into_split();
        let mut read = BufReader::new(read);
        loop {
            let frame = match read_frame(&mut read, self.config.max_frame_bytes).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e) => {
                    info!(peer = %self.peer, error = %e, "closing kafka connection");
                    return;
                }
            };
            let response = match self.answer(frame).await {
                Ok(response) => response,
                Err(e) => {
                    info!(peer = %self.peer, error = %e, "closing kafka connection");
                    return;
                }
            };
            if let Some(response) = response
                && let Err(e) = write.write_all(&response).await
            {
                debug!(peer = %self.peer, error = %e, "kafka client went away");
                return;
            }
        }
    }

    /// Decodes one request and builds its response frame (`None` for a
    /// produce with acks=0, which Kafka does not answer).
    async fn answer(&self, frame: Bytes) -> Result<Option<BytesMut>, KafkaError> {
        let (key, answer_version, correlation_id, response) = match decode_request(frame)? {
            DecodedFrame::Request(decoded) => {
                let DecodedRequest {
                    key,
                    version,
                    header,
                    request,
                } = *decoded;
                let started = std::time::Instant::now();
                let response = apis::handle(self, &header, request).await;
                metrics::histogram!(
                    "tributary_kafka_request_duration_seconds",
                    "api" => format!("{key:?}"),
                )
                .record(started.elapsed().as_secs_f64());
                match response {
                    Some(response) => (key, version, header.correlation_id, response),
                    None => return Ok(None),
                }
            }
            DecodedFrame::ApiVersionsTooNew { correlation_id } => (
                ApiKey::ApiVersions,
                0,
                correlation_id,
                apis::api_versions::unsupported_version(),
            ),
        };
        let mut out = BytesMut::with_capacity(64);
        out.put_i32(0); // the size, filled in below
        let mut response_header = ResponseHeader::default();
        response_header.correlation_id = correlation_id;
        response_header
            .encode(&mut out, key.response_header_version(answer_version))
            .map_err(|e| KafkaError::Encode(e.to_string()))?;
        response
            .encode(&mut out, answer_version)
            .map_err(KafkaError::Encode)?;
        let size = i32::try_from(out.len() - 4)
            .map_err(|_| KafkaError::Encode("response larger than 2 GiB".into()))?;
        out[..4].copy_from_slice(&size.to_be_bytes());
        Ok(Some(out))
    }
}
