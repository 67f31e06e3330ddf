//! `/v1/connections`: operator-held credentials for plugins' requests (see
//! [`crate::domain::connections`]). Admin only; no answer ever carries a secret.

use super::AppState;
use super::auth::Caller;
use super::body::JsonBody;
use super::error::ApiError;
use super::wire;
use crate::domain::connections::ConnectionDefinition;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use plugboard_api_types::connections::{ConnectionList, ConnectionProbe};
use plugboard_api_types::documents::Connection;

/// `GET /v1/connections`: every connection, without secrets, with the plugins that use it.
pub async fn connections_list(State(state): State<AppState>) -> Result<Json<ConnectionList>, ApiError> {
    let connections = state.services.connections.list()?;
    Ok(Json(ConnectionList { connections: connections.iter().map(wire::document).collect() }))
}

/// `GET /v1/connections/{name}`: one connection, without its secret.
pub async fn connections_get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Connection>, ApiError> {
    Ok(Json(wire::document(&state.services.connections.get(&name)?)))
}

/// `PUT /v1/connections/{name}`: creates or replaces a connection (a replacement without
/// `secret` keeps the stored one; with one, it rotates it). Answers it without its secret.
pub async fn connections_put(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(definition): JsonBody<ConnectionDefinition>,
) -> Result<Json<Connection>, ApiError> {
    Ok(Json(wire::document(&state.services.connections.put(&name, definition, &caller.name).await?)))
}

/// `DELETE /v1/connections/{name}`.
pub async fn connections_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.connections.delete(&name, &caller.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/connections/{name}/test`: fetches a token (OAuth) and calls the connection's
/// `probe_url` with its credential: `{"ok", "status"?, "error"?, "elapsed_ms"}`.
pub async fn connections_test(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ConnectionProbe>, ApiError> {
    let probe = state.services.connections.test(&name).await?;
    Ok(Json(wire::probe(&probe)))
}
