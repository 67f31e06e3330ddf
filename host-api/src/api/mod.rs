//! The HTTP control plane (axum), under `/v1`, plus `/healthz`, `/readyz` and `/metrics`.
//!
//! Hardening, outermost first: panics become a 500 without internal detail; every request has a
//! deadline (408 past it, which also bounds slow uploads); the bearer token is checked before
//! anything else, and a request with a valid one counts against [`ServerLimits::max_in_flight`],
//! every other request against the smaller [`ServerLimits::max_public_in_flight`] (429 beyond
//! either) — so no flood of unauthenticated requests, however slow, takes capacity from an
//! operator; `/healthz` and `/readyz` draw on neither, so probes answer during a flood; bodies
//! are capped per route (413), and webhook bodies (the only unauthenticated ones) must arrive
//! within [`ServerLimits::public_body_timeout`] (408).

pub mod access;
pub mod admin;
pub mod auth;
pub mod body;
pub mod connections;
pub mod error;
pub mod flows;
pub mod hooks;
pub mod metrics;
pub mod openapi;
pub mod plugins;
pub mod query;
pub mod routes;
pub mod ui;
mod wire;

use crate::domain::Services;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Request-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Largest plugin upload.
    pub max_upload_bytes: usize,
    /// Largest body of any other request.
    pub max_body_bytes: usize,
    /// Deadline for a whole request, body included (uploads: `upload_timeout`).
    pub request_timeout: Duration,
    /// Deadline for a whole plugin upload, body and compilation included.
    pub upload_timeout: Duration,
    /// Authenticated requests served at once; more get 429.
    pub max_in_flight: usize,
    /// Unauthenticated requests (webhooks, health, metrics) served at once; more get 429.
    pub max_public_in_flight: usize,
    /// How long an unauthenticated request's body may take to arrive (webhooks are the only
    /// unauthenticated requests that have a body).
    pub public_body_timeout: Duration,
    /// Whether `/metrics` needs a token (of any role).
    pub metrics_require_token: bool,
    /// Plugin uploads whose bodies are read at once (each up to `max_upload_bytes`); more wait
    /// for a place with their body unread.
    pub max_concurrent_uploads: usize,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            max_upload_bytes: 64 << 20,
            max_body_bytes: 16 << 20,
            request_timeout: Duration::from_secs(60),
            upload_timeout: Duration::from_secs(300),
            max_in_flight: 256,
            max_public_in_flight: 64,
            public_body_timeout: Duration::from_secs(10),
            metrics_require_token: false,
            max_concurrent_uploads: 4,
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The domain services.
    pub services: Services,
    /// The request limits.
    pub limits: ServerLimits,
    /// Proxies whose `X-Forwarded-For` names a webhook's source (`trusted_proxies`).
    pub trusted_proxies: Arc<Vec<plugboard_runtime::flow::webhook::Cidr>>,
    in_flight: Arc<Semaphore>,
    public_in_flight: Arc<Semaphore>,
    /// Places for plugin uploads being read and installed.
    pub(crate) uploads: Arc<Semaphore>,
}

impl AppState {
    /// State over `services`.
    pub fn new(services: Services, limits: ServerLimits) -> AppState {
        AppState {
            services,
            limits,
            trusted_proxies: Arc::default(),
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            public_in_flight: Arc::new(Semaphore::new(limits.max_public_in_flight)),
            uploads: Arc::new(Semaphore::new(limits.max_concurrent_uploads.max(1))),
        }
    }
}

/// Authenticates the request (see [`auth::authenticate`]) and takes a permit from the pool it
/// belongs to.
async fn limit_in_flight(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // Health checks and the dashboard's files are cheap, read no body and must answer an
    // orchestrator (or an operator opening the dashboard) during a flood.
    let path = request.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/" | "/ui") || path.starts_with("/ui/") {
        return next.run(request).await;
    }
    let caller = auth::authenticate(request.headers(), &state);
    let pool = if caller.is_some() { &state.in_flight } else { &state.public_in_flight };
    let Ok(_permit) = pool.clone().try_acquire_owned() else {
        return error::ApiError::overloaded().into_response();
    };
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    next.run(request).await
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    error::ApiError::internal("a handler panicked").into_response()
}

/// The whole API: the route table's router and the dashboard inside the hardening layers.
pub fn app(state: AppState, limits: ServerLimits) -> Router {
    let dashboard = Router::new()
        .route("/", axum::routing::get(ui::root))
        .route("/ui", axum::routing::get(ui::index))
        .route("/ui/", axum::routing::get(ui::index))
        .route("/ui/{*path}", axum::routing::get(ui::asset))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ));
    routes::router(&limits)
        .merge(dashboard)
        .layer(middleware::from_fn_with_state(state.clone(), limit_in_flight))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(ui::security_headers))
        .with_state(state)
}
