//! The HTTP control plane (axum), under `/v1`, plus `/healthz`, `/readyz` and `/metrics`.
//!
//! Hardening, outermost first: panics become a 500 without internal detail; every request has a
//! deadline (408 past it, which also bounds slow uploads); at most [`ServerLimits::max_in_flight`]
//! requests run at once (429 beyond); bodies are capped per route (413).

pub mod admin;
pub mod auth;
pub mod error;
pub mod metrics;
pub mod plugins;

use crate::registry::Registry;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
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
    /// Deadline for a whole request, body included.
    pub request_timeout: Duration,
    /// Requests served at once; more get 429.
    pub max_in_flight: usize,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            max_upload_bytes: 64 << 20,
            max_body_bytes: 16 << 20,
            request_timeout: Duration::from_secs(60),
            max_in_flight: 256,
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// Installed plugins.
    pub registry: Arc<Registry>,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    in_flight: Arc<Semaphore>,
}

impl AppState {
    /// State over `registry`.
    pub fn new(registry: Arc<Registry>, limits: ServerLimits) -> AppState {
        AppState {
            registry,
            metrics: Arc::new(metrics::Metrics::new()),
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
        }
    }
}

async fn limit_in_flight(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.in_flight.clone().try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => error::ApiError::overloaded().into_response(),
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    error::ApiError::internal("a handler panicked").into_response()
}

/// The whole API.
pub fn app(state: AppState, limits: ServerLimits) -> Router {
    let uploads = Router::new()
        .route("/v1/plugins", post(plugins::plugins_upload).get(plugins::plugins_list))
        .layer(DefaultBodyLimit::max(limits.max_upload_bytes));
    let api = Router::new()
        .route("/v1/plugins/{name}", get(plugins::plugins_get).delete(plugins::plugins_delete))
        .route("/v1/plugins/{name}/versions/{version}", axum::routing::delete(plugins::plugins_delete_version))
        .route("/v1/plugins/{name}/versions/{version}/activate", post(plugins::plugins_activate))
        .route("/v1/plugins/{name}/deactivate", post(plugins::plugins_deactivate))
        .route("/v1/plugins/{name}/grants", put(plugins::plugins_grants))
        .route("/v1/plugins/{name}/config", put(plugins::plugins_config))
        .route("/v1/plugins/{name}/invoke", post(plugins::plugins_invoke))
        .route("/v1/plugins/{name}/health", get(plugins::plugins_health))
        .route("/v1/keys", get(admin::keys_list).post(admin::keys_add))
        .route("/v1/keys/{id}/revoke", post(admin::keys_revoke))
        .route("/v1/tokens", post(admin::tokens_create))
        .route("/v1/audit", get(admin::audit_list))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes));
    Router::new()
        .merge(uploads)
        .merge(api)
        .route("/healthz", get(admin::healthz))
        .route("/readyz", get(admin::readyz))
        .route("/metrics", get(metrics::metrics_get))
        .layer(middleware::from_fn_with_state(state.clone(), limit_in_flight))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .with_state(state)
}
