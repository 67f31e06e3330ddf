//! The HTTP control plane (axum), under `/v1`, plus `/healthz`, `/readyz` and `/metrics`.
//!
//! Hardening, outermost first: panics become a 500 without internal detail; every request has a
//! deadline (408 past it, which also bounds slow uploads); at most [`ServerLimits::max_in_flight`]
//! requests run at once (429 beyond); bodies are capped per route (413).

pub mod admin;
pub mod auth;
pub mod error;
pub mod flows;
pub mod metrics;
pub mod openapi;
pub mod plugins;
pub mod routes;

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
    /// The domain services.
    pub services: Services,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    in_flight: Arc<Semaphore>,
}

impl AppState {
    /// State over `services`.
    pub fn new(services: Services, limits: ServerLimits) -> AppState {
        AppState {
            services,
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

/// The whole API: the route table's router inside the hardening layers.
pub fn app(state: AppState, limits: ServerLimits) -> Router {
    routes::router(limits.max_upload_bytes, limits.max_body_bytes)
        .layer(middleware::from_fn_with_state(state.clone(), limit_in_flight))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .with_state(state)
}
