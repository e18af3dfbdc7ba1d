//! Tributary's HTTP front door: the web SQL console (its files embedded in
//! the binary), the JSON API it uses (`POST /api/sql`, `GET /api/catalog`,
//! `GET /api/jobs`, `GET /api/subscribe` as server-sent events),
//! `/metrics` in Prometheus text format and `/health`. Every statement
//! goes through a [`Session`](tributary_executor::Session) of the same
//! Engine pgwire uses.

mod assets;
mod catalog;
mod error;
mod jobs;
pub mod metrics;
mod rows;
mod sql;
mod subscribe;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tributary_executor::Engine;

pub use error::ApiError;
pub use metrics::MetricsHandle;

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Most rows one statement's result sends (all are counted).
    pub max_rows: usize,
    /// Host names (beside IP addresses and `localhost`) that requests may
    /// be addressed to; `*` allows any. Others are refused, so that a web
    /// page whose name was rebound to this address cannot use the API.
    pub allowed_hosts: Vec<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_rows: 10_000,
            allowed_hosts: Vec::new(),
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    engine: Arc<Engine>,
    config: WebConfig,
    metrics: Option<MetricsHandle>,
}

/// The routes, over `engine`. `metrics` renders the recorded half of
/// `/metrics`; without it only the state read at scrape time is shown.
pub fn router(engine: Arc<Engine>, config: WebConfig, metrics: Option<MetricsHandle>) -> Router {
    let body_limit = config.max_body_bytes;
    let state = AppState {
        engine,
        config,
        metrics,
    };
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{name}", get(assets::file))
        .route("/api/sql", post(sql::run))
        .route("/api/catalog", get(catalog::get))
        .route("/api/jobs", get(jobs::get))
        .route("/api/subscribe", get(subscribe::open))
        .route("/metrics", get(metrics::get))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(record_request))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Serves the console and the API on `listener` until the task is dropped.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    config: WebConfig,
    metrics: Option<MetricsHandle>,
) -> std::io::Result<()> {
    axum::serve(listener, router(engine, config, metrics)).await
}

/// `GET /health`: the server is up and its engine answers.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let streams = state.engine.log().streams().len();
    axum::Json(serde_json::json!({ "status": "ok", "streams": streams }))
}

/// Refuses requests addressed to a host name that is not allowed, and
/// tells browsers not to frame the console, sniff types or load anything
/// from elsewhere.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host_allowed(host, &state.config.allowed_hosts) {
        let name = host_name(host).to_string();
        return ApiError::Rejected {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "requests to host {name:?} are not served: allow it with --http-allowed-hosts {name}"
            ),
        }
        .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The name in a `Host` header, without its port.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [::1]:8080
        return rest.split(']').next().unwrap_or("");
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// Whether a request with this `Host` header is served: IP addresses,
/// `localhost` and its subdomains, and the configured names.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host).to_ascii_lowercase();
    name.parse::<std::net::IpAddr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
        || allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(&name))
}

/// Counts each request and its latency by route and status.
async fn record_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    ::metrics::histogram!(
        "tributary_http_request_duration_seconds",
        "route" => route,
        "status" => response.status().as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_localhost_and_named_hosts_are_served() {
        let allowed = vec!["tributary.example".to_string()];
        for host in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "localhost:8080",
            "a.localhost",
            "10.0.0.5",
            "Tributary.Example:80",
        ] {
            assert!(host_allowed(host, &allowed), "{host}");
        }
        for host in ["evil.example:8080", "", "127.0.0.1.evil.example"] {
            assert!(!host_allowed(host, &allowed), "{host}");
        }
        assert!(host_allowed("anything.example", &["*".to_string()]));
    }
}
