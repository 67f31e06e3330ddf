//! Trust store (`/v1/keys`), API tokens (`/v1/tokens`), the audit log (`/v1/audit`), and the
//! liveness/readiness probes.

use super::AppState;
use super::auth::{Caller, Role, TokenScope};
use super::body::JsonBody;
use super::error::ApiError;
use super::query::ApiQuery;
use crate::store::{AuditAction, AuditFilter, PageRequest};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use plugboard_runtime::signing::PublicKey;
use serde::Deserialize;
use serde_json::{Value, json};

fn key_json(key: &plugboard_runtime::signing::TrustedKey) -> Value {
    json!({
        "key_id": key.key_id,
        "name": key.name,
        "public_key": hex::encode(key.key.to_bytes()),
        "added_at": key.added_at,
        "revoked_at": key.revoked_at,
    })
}

/// `GET /v1/whoami`: the caller's token name and role, so a client (the dashboard) shows only what
/// that role may do. Any valid token.
pub async fn whoami(caller: Caller) -> Json<Value> {
    Json(json!({"name": caller.name, "role": caller.role, "scope": caller.scope}))
}

/// `GET /v1/keys`.
pub async fn keys_list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let trust = state.services.access.trust()?;
    Ok(Json(json!({"keys": trust.list().map(key_json).collect::<Vec<_>>()})))
}

/// Body of `POST /v1/keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddKey {
    /// A name for the key.
    name: String,
    /// The public key file's bytes, hex (`0x01 ‖ 32 bytes`, as `plugboard keygen` writes them).
    public_key: String,
}

/// `POST /v1/keys`.
pub async fn keys_add(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<AddKey>,
) -> Result<impl IntoResponse, ApiError> {
    let bytes = hex::decode(body.public_key.trim()).map_err(|_| ApiError::invalid("public_key must be hex"))?;
    let key = PublicKey::from_bytes(&bytes).map_err(|err| ApiError::invalid(err.to_string()))?;
    let added = state.services.access.add_key(&body.name, key, &caller.name).await?;
    Ok((StatusCode::CREATED, Json(key_json(&added))))
}

/// `POST /v1/keys/{id}/revoke`: also unloads every active plugin the key signed.
pub async fn keys_revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let revoked = state.services.access.revoke_key(&id, &caller.name).await?;
    Ok(Json(key_json(&revoked)))
}

/// Body of `POST /v1/tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A name for the audit log.
    name: String,
    /// The role.
    role: Role,
    /// The plugins and flows it is limited to (an invoker or publisher token); none: everything
    /// its role allows.
    #[serde(default)]
    scope: Option<TokenScope>,
}

/// `POST /v1/tokens`: creates a token; its value is answered once and never stored.
pub async fn tokens_create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateToken>,
) -> Result<impl IntoResponse, ApiError> {
    let token = state.services.access.create_token(&body.name, body.role, body.scope.clone(), &caller.name).await?;
    let answer = json!({"name": body.name, "role": body.role, "scope": body.scope, "token": token});
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `GET /v1/tokens`: every token's name, role and scope (never a value or hash).
pub async fn tokens_list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let tokens: Vec<Value> = state
        .services
        .access
        .tokens()
        .iter()
        .map(|t| json!({"name": t.name, "role": t.role, "scope": t.scope}))
        .collect();
    Ok(Json(json!({ "tokens": tokens })))
}

/// `DELETE /v1/tokens/{name}`: revoke a token.
pub async fn tokens_revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.access.revoke_token(&name, &caller.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of `GET /v1/audit`: a page and a filter (fields spelled out: `serde(flatten)` and
/// query strings do not mix).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<usize>,
    cursor: Option<u64>,
    order: Option<Order>,
    actor: Option<String>,
    action: Option<AuditAction>,
    target: Option<String>,
    since: Option<u64>,
    until: Option<u64>,
}

/// `GET /v1/audit[?limit&cursor&order&actor&action&target&since&until]`: a page of the audit
/// entries that match every filter given.
pub async fn audit_list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = PageQuery { limit: query.limit, cursor: query.cursor, order: query.order }.request();
    let filter = AuditFilter {
        actor: query.actor.filter(|a| !a.is_empty()),
        action: query.action,
        target: query.target.filter(|t| !t.is_empty()),
        since: query.since,
        until: query.until,
    };
    let page = state.services.access.audit(page, &filter)?;
    Ok(Json(json!({"entries": page.items, "next_cursor": page.next_cursor})))
}

/// The order of a paged list.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first (the default).
    Asc,
    /// Newest first.
    Desc,
}

/// `limit`, `cursor` and `order` of a paged list.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct PageQuery {
    /// Most items (default 100, at most 1000).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<u64>,
    /// `asc` (default) or `desc`.
    pub order: Option<Order>,
}

impl PageQuery {
    /// The page to read.
    pub fn request(&self) -> PageRequest {
        PageRequest {
            cursor: self.cursor,
            limit: self.limit.unwrap_or(100).clamp(1, 1000),
            newest_first: self.order == Some(Order::Desc),
        }
    }
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers and active plugins are loaded.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.services.access.trust()?;
    Ok(Json(json!({"status": "ready", "plugins_loaded": state.services.plugins.loaded()})))
}
