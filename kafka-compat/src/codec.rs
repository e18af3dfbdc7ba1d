//! Turning a request frame's body into a request, without I/O: the API key
//! and version, the header, the guard's structural check, then
//! `kafka-protocol`'s decoder. The connection calls it for every frame, and
//! the fuzz target (`kafka-compat/fuzz`) and the seeded tests below feed it
//! arbitrary bytes: whatever they hold, it returns an error or a request,
//! never panics, and allocates no more than the bytes sent allow.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

use crate::apis::{self, Request};
use crate::error::KafkaError;
use crate::guard::check_request;

/// A decoded request frame.
#[derive(Debug)]
pub enum DecodedFrame {
    /// A request of a served API at a served version.
    Request(Box<DecodedRequest>),
    /// ApiVersions at a version newer than served: Kafka answers it at v0
    /// with UNSUPPORTED_VERSION and the versions it serves, so the client
    /// can retry at one of them.
    ApiVersionsTooNew {
        /// The request's correlation id, to answer with.
        correlation_id: i32,
    },
}

/// A request of a served API with its header.
#[derive(Debug)]
pub struct DecodedRequest {
    /// Which API.
    pub key: ApiKey,
    /// The version the client used, which its answer uses too.
    pub version: i16,
    /// The request header (correlation id, client id).
    pub header: RequestHeader,
    pub(crate) request: Request,
}

/// Decodes one request frame's body (the bytes after the 4-byte size). An
/// unknown API key, an API or version not served, a body that does not
/// decode or bytes left after the request are errors that end the
/// connection.
pub fn decode_request(mut frame: Bytes) -> Result<DecodedFrame, KafkaError> {
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
    match apis::served_versions(key) {
        Some((min, max)) if (min..=max).contains(&version) => {}
        // A client asks ApiVersions at a version it knows before it knows
        // ours. Only the correlation id is needed, and every header version
        // has it at bytes 4..8; the rest may be a layout not known here.
        _ if key == ApiKey::ApiVersions => {
            let id = frame
                .get(4..8)
                .ok_or_else(|| malformed("no correlation id".into()))?;
            return Ok(DecodedFrame::ApiVersionsTooNew {
                correlation_id: i32::from_be_bytes([id[0], id[1], id[2], id[3]]),
            });
        }
        Some(_) => return Err(malformed("version not served".into())),
        None => return Err(malformed("API not served".into())),
    }
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version))
        .map_err(|e| malformed(format!("request header: {e}")))?;
    check_request(api_key, version, &frame)?;
    let request = Request::decode(key, &mut frame, version).map_err(malformed)?;
    if frame.has_remaining() {
        return Err(malformed(format!(
            "{} bytes after the request",
            frame.remaining()
        )));
    }
    Ok(DecodedFrame::Request(Box::new(DecodedRequest {
        key,
        version,
        header,
        request,
    })))
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::{FetchRequest, MetadataRequest, ProduceRequest, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// A valid frame body of `key` at `version` holding `body`.
    fn frame<B: Encodable>(key: ApiKey, version: i16, body: &B) -> Bytes {
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = 7;
        header.client_id = Some(StrBytes::from_static_str("fuzz"));
        let mut out = BytesMut::new();
        header
            .encode(&mut out, key.request_header_version(version))
            .unwrap();
        body.encode(&mut out, version).unwrap();
        out.freeze()
    }

    /// Valid requests of a few shapes and versions: the seeds the
    /// mutations start from.
    fn seeds() -> Vec<Bytes> {
        let mut metadata = MetadataRequest::default();
        metadata.topics = Some(vec![Default::default(), Default::default()]);
        let mut fetch = FetchRequest::default();
        fetch.topics = vec![Default::default()];
        fetch.topics[0].partitions = vec![Default::default(); 3];
        fetch.topics[0].topic = TopicName(StrBytes::from_static_str("orders"));
        let mut produce = ProduceRequest::default();
        produce.acks = -1;
        produce.topic_data = vec![Default::default()];
        let mut seeds = Vec::new();
        for version in [1, 4, 9, 12] {
            seeds.push(frame(ApiKey::Metadata, version, &metadata));
        }
        for version in [4, 11, 12] {
            seeds.push(frame(ApiKey::Fetch, version, &fetch));
        }
        for version in [3, 9] {
            seeds.push(frame(ApiKey::Produce, version, &produce));
        }
        seeds
    }

    #[test]
    fn the_seeds_decode() {
        for seed in seeds() {
            match decode_request(seed.clone()) {
                Ok(DecodedFrame::Request(request)) => assert_eq!(request.header.correlation_id, 7),
                other => panic!("{seed:?} decoded as {other:?}"),
            }
        }
    }

    /// Truncations, bit flips, overwritten lengths and inserted bytes of
    /// valid requests (a fixed seed, so a failure repeats): every one
    /// returns, most of them as errors.
    #[test]
    fn mutated_requests_never_panic() {
        let mut rng = StdRng::seed_from_u64(0x006b_6166_6b61);
        let seeds = seeds();
        let mut decoded = 0;
        for _ in 0..50_000 {
            let seed = &seeds[rng.random_range(0..seeds.len())];
            let mut bytes = seed.to_vec();
            for _ in 0..rng.random_range(1..4) {
                match rng.random_range(0..4) {
                    0 => bytes.truncate(rng.random_range(0..=bytes.len())),
                    1 if !bytes.is_empty() => {
                        let at = rng.random_range(0..bytes.len());
                        bytes[at] ^= 1 << rng.random_range(0..8);
                    }
                    2 if bytes.len() >= 4 => {
                        // A length or count field made huge or negative.
                        let at = rng.random_range(0..bytes.len() - 3);
                        let value: i32 = if rng.random() { i32::MAX } else { -2 };
                        bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
                    }
                    _ => {
                        let at = rng.random_range(0..=bytes.len());
                        bytes.insert(at, rng.random());
                    }
                }
            }
            if decode_request(Bytes::from(bytes)).is_ok() {
                decoded += 1;
            }
        }
        // Some mutations leave a valid request (a flipped bit in a
        // partition index): the decoder was really reached.
        assert!(decoded > 0);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = StdRng::seed_from_u64(42);
        for _ in 0..50_000 {
            let len = rng.random_range(0..64);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            // Aim at served APIs and versions most of the time.
            if bytes.len() >= 4 && rng.random_bool(0.8) {
                let (key, min, max) = apis::SUPPORTED[rng.random_range(0..apis::SUPPORTED.len())];
                bytes[0..2].copy_from_slice(&(key as i16).to_be_bytes());
                bytes[2..4].copy_from_slice(&rng.random_range(min..=max).to_be_bytes());
            }
            let _ = decode_request(Bytes::from(bytes));
        }
    }

    #[test]
    fn a_too_new_api_versions_is_answered_with_its_correlation_id() {
        let body = Bytes::from_static(&[0, 18, 0, 99, 0, 0, 1, 2, 0xff]);
        match decode_request(body) {
            Ok(DecodedFrame::ApiVersionsTooNew { correlation_id }) => {
                assert_eq!(correlation_id, 258)
            }
            other => panic!("{other:?}"),
        }
    }
}
