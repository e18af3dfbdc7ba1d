//! One client connection: frames in, requests decoded and answered in the
//! order they came, frames out. Requests are pipelined as Kafka clients
//! send them (librdkafka keeps up to five in flight): a Produce hands its
//! batches to the partition writers and the next request is read while
//! they are made durable, so consecutive produces share a group commit;
//! any other request is handled whole before the next one starts, as a
//! Kafka broker does. Answers go out in request order, each as soon as it
//! and those before it are ready. A frame that is too large or a request
//! that does not decode ends this connection, after the answers to the
//! requests before it, with a log line, and nothing else.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tracing::{debug, info};
use tributary_executor::Engine;

use crate::apis::{self, Request, Response};
use crate::codec::{DecodedFrame, DecodedRequest, decode_request};
use crate::error::KafkaError;
use crate::frame::read_frame;
use crate::group::GroupCoordinator;
use crate::server::{AbortOnDrop, KafkaConfig};

/// Requests read ahead of their answers on one connection.
const PIPELINED_REQUESTS: usize = 16;

/// A request's answer frame, once ready (`None`: no answer, as for a
/// produce with acks=0).
type Answer<'a> = Pin<Box<dyn Future<Output = Result<Option<BytesMut>, KafkaError>> + Send + 'a>>;

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
        let (frames_tx, mut frames) = mpsc::channel(PIPELINED_REQUESTS);
        let _reader = AbortOnDrop(tokio::spawn(read_frames(
            read,
            self.config.max_frame_bytes,
            self.peer,
            frames_tx,
        )));
        let mut answers: FuturesOrdered<Answer<'_>> = FuturesOrdered::new();
        loop {
            tokio::select! {
                biased;
                Some(answer) = answers.next(), if !answers.is_empty() => {
                    if !self.write_answer(&mut write, answer).await {
                        return;
                    }
                }
                frame = frames.recv(), if answers.len() < PIPELINED_REQUESTS => {
                    let Some(frame) = frame else { break };
                    // A request is started (for a Produce: its batches
                    // handed over; for any other: answered) while the
                    // answers before it go out as they become ready.
                    let mut starting = pin!(self.start(frame));
                    let started = loop {
                        tokio::select! {
                            biased;
                            started = &mut starting => break started,
                            Some(answer) = answers.next(), if !answers.is_empty() => {
                                if !self.write_answer(&mut write, answer).await {
                                    return;
                                }
                            }
                        }
                    };
                    match started {
                        Ok(answer) => answers.push_back(answer),
                        Err(e) => {
                            info!(peer = %self.peer, error = %e, "closing kafka connection");
                            break;
                        }
                    }
                }
            }
        }
        // No more requests: what was asked is still answered.
        while let Some(answer) = answers.next().await {
            if !self.write_answer(&mut write, answer).await {
                return;
            }
        }
    }

    /// Writes one answer; false if the connection is to end.
    async fn write_answer(
        &self,
        write: &mut OwnedWriteHalf,
        answer: Result<Option<BytesMut>, KafkaError>,
    ) -> bool {
        match answer {
            Ok(None) => true,
            Ok(Some(frame)) => match write.write_all(&frame).await {
                Ok(()) => true,
                Err(e) => {
                    debug!(peer = %self.peer, error = %e, "kafka client went away");
                    false
                }
            },
            Err(e) => {
                info!(peer = %self.peer, error = %e, "closing kafka connection");
                false
            }
        }
    }

    /// Decodes one request and starts answering it: a Produce once its
    /// batches are handed over, any other request once it is answered.
    async fn start(&self, frame: Bytes) -> Result<Answer<'_>, KafkaError> {
        let decoded = match decode_request(frame)? {
            DecodedFrame::Request(decoded) => *decoded,
            DecodedFrame::ApiVersionsTooNew { correlation_id } => {
                let frame = encode_answer(
                    ApiKey::ApiVersions,
                    0,
                    correlation_id,
                    apis::api_versions::unsupported_version(),
                );
                return Ok(Box::pin(std::future::ready(frame.map(Some))));
            }
        };
        let DecodedRequest {
            key,
            version,
            header,
            request,
        } = decoded;
        let started = std::time::Instant::now();
        let finished = move |response: Option<Response>| {
            metrics::histogram!(
                "tributary_kafka_request_duration_seconds",
                "api" => format!("{key:?}"),
            )
            .record(started.elapsed().as_secs_f64());
            response
                .map(|response| encode_answer(key, version, header.correlation_id, response))
                .transpose()
        };
        match request {
            Request::Produce(request) => {
                let durable = apis::submit_produce(self, request).await;
                Ok(Box::pin(async move { finished(durable.await) }))
            }
            request => {
                let response = apis::handle(self, &header, request).await;
                Ok(Box::pin(std::future::ready(finished(response))))
            }
        }
    }
}

/// Reads request frames into `frames` until the client stops, a frame
/// ends the connection, or the connection stops listening.
async fn read_frames(
    read: OwnedReadHalf,
    max_frame_bytes: usize,
    peer: SocketAddr,
    frames: mpsc::Sender<Bytes>,
) {
    let mut read = BufReader::new(read);
    loop {
        match read_frame(&mut read, max_frame_bytes).await {
            Ok(Some(frame)) => {
                if frames.send(frame).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                info!(%peer, error = %e, "closing kafka connection");
                return;
            }
        }
    }
}

/// A response frame: its size, the response header, the response.
fn encode_answer(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: Response,
) -> Result<BytesMut, KafkaError> {
    let mut out = BytesMut::with_capacity(64);
    out.put_i32(0); // the size, filled in below
    let mut response_header = ResponseHeader::default();
    response_header.correlation_id = correlation_id;
    response_header
        .encode(&mut out, key.response_header_version(version))
        .map_err(|e| KafkaError::Encode(e.to_string()))?;
    response
        .encode(&mut out, version)
        .map_err(KafkaError::Encode)?;
    let size = i32::try_from(out.len() - 4)
        .map_err(|_| KafkaError::Encode("response larger than 2 GiB".into()))?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out)
}
