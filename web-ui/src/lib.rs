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
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_rows: 10_000,
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
