//! ApiVersions: what this server speaks.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use tracing::debug;

use super::{Response, SUPPORTED};

/// The served APIs and versions.
pub(crate) fn handle(request: &ApiVersionsRequest) -> ApiVersionsResponse {
    debug!(
        client = request.client_software_name.as_str(),
        version = request.client_software_version.as_str(),
        "kafka client"
    );
    served()
}

fn served() -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.api_keys = SUPPORTED
        .iter()
        .map(|(key, min, max)| {
            let mut version = ApiVersion::default();
            version.api_key = *key as i16;
            version.min_version = *min;
            version.max_version = *max;
            version
        })
        .collect();
    response
}

/// The answer to an ApiVersions request newer than served: the error and
/// the versions served, so the client retries with one of them.
pub(crate) fn unsupported_version() -> Response {
    let mut response = served();
    response.error_code = ResponseError::UnsupportedVersion.code();
    Response::ApiVersions(response)
}
