//! Any bytes as the body of a request frame: the decoder returns a request
//! or an error, and neither panics nor allocates by an untrusted count.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tributary_kafka_compat::codec::decode_request(bytes::Bytes::copy_from_slice(data));
});
