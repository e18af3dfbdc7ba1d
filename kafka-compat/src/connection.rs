//! One client connection: frames in, requests decoded and answered in the
//! order they came, frames out. A frame that is too large or a request that
//! does not decode ends this connection with a log line, and nothing else.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tracing::{debug, info};
use tributary_executor::Engine;

use crate::apis::{self, Request};
use crate::error::KafkaError;
use crate::frame::read_frame;
use crate::group::GroupCoordinator;
use crate::guard::check_request;
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
    async fn answer(&self, mut frame: Bytes) -> Result<Option<BytesMut>, KafkaError> {
        if frame.len() < 4 {
            return Err(KafkaError::BadFrame {
                reason: format!("{} bytes is too short for a request header", frame.len()),
            });
        }
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let malformed = |reason: String| KafkaError::Malformed {
            api_key,
            version,
            reason,
        };
        let key = ApiKey::try_from(api_key).map_err(|()| malformed("unknown API key".into()))?;
        let served = apis::served_versions(key);
        // A client asks ApiVersions at a version it knows before it knows
        // ours; Kafka answers a version too new with v0 and the error.
        let answer_version = match served {
            Some((min, max)) if (min..=max).contains(&version) => version,
            _ if key == ApiKey::ApiVersions => 0,
            Some(_) => return Err(malformed("version not served".into())),
            None => return Err(malformed("API not served".into())),
        };
        let (correlation_id, response) = if answer_version == version {
            let header_version = key.request_header_version(version);
            let header = RequestHeader::decode(&mut frame, header_version)
                .map_err(|e| malformed(format!("request header: {e}")))?;
            check_request(api_key, version, &frame)?;
            let request = Request::decode(key, &mut frame, version).map_err(malformed)?;
            if frame.has_remaining() {
                return Err(malformed(format!(
                    "{} bytes after the request",
                    frame.remaining()
                )));
            }
            match apis::handle(self, &header, request).await {
                Some(response) => (header.correlation_id, response),
                None => return Ok(None),
            }
        } else {
            // Only the correlation id is needed, and every header version
            // has it at bytes 4..8; the rest may be a layout not known here.
            let id = frame
                .get(4..8)
                .ok_or_else(|| malformed("no correlation id".into()))?;
            let correlation_id = i32::from_be_bytes([id[0], id[1], id[2], id[3]]);
            (correlation_id, apis::api_versions::unsupported_version())
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
