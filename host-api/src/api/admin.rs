//! Trust store (`/v1/keys`), API tokens (`/v1/tokens`), the audit log (`/v1/audit`), and the
//! liveness/readiness probes.

use super::AppState;
use super::auth::Caller;
use super::body::JsonBody;
use super::error::ApiError;
use super::query::ApiQuery;
use super::wire;
use crate::store::{AuditAction, AuditFilter, PageRequest};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use plugboard_api_types::access::{
    AddKey, AuditPage, CreateToken, CreatedToken, Key, KeyList, Liveness, Readiness, TokenInfo, TokenList,
};
use plugboard_runtime::signing::PublicKey;
use serde::Deserialize;

/// `GET /v1/whoami`: the caller's token name and role, so a client (the dashboard) shows only what
/// that role may do. Any valid token.
pub async fn whoami(caller: Caller) -> Json<TokenInfo> {
    Json(wire::token(&caller.name, caller.role, caller.scope.as_ref()))
}

/// `GET /v1/keys`.
pub async fn keys_list(State(state): State<AppState>) -> Result<Json<KeyList>, ApiError> {
    let trust = state.services.access.trust()?;
    Ok(Json(KeyList { keys: trust.list().map(wire::key).collect() }))
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
    Ok((StatusCode::CREATED, Json(wire::key(&added))))
}

/// `POST /v1/keys/{id}/revoke`: also unloads every active plugin the key signed.
pub async fn keys_revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Key>, ApiError> {
    let revoked = state.services.access.revoke_key(&id, &caller.name).await?;
    Ok(Json(wire::key(&revoked)))
}

/// `POST /v1/tokens`: creates a token; its value is answered once and never stored.
pub async fn tokens_create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateToken>,
) -> Result<impl IntoResponse, ApiError> {
    let role = wire::role_in(body.role);
    let scope = wire::scope_in(body.scope);
    let token = state.services.access.create_token(&body.name, role, scope.clone(), &caller.name).await?;
    let answer = CreatedToken { info: wire::token(&body.name, role, scope.as_ref()), token };
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `GET /v1/tokens`: every token's name, role and scope (never a value or hash).
pub async fn tokens_list(State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    let tokens =
        state.services.access.tokens().iter().map(|t| wire::token(&t.name, t.role, t.scope.as_ref())).collect();
    Ok(Json(TokenList { tokens }))
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
) -> Result<Json<AuditPage>, ApiError> {
    let page = PageQuery { limit: query.limit, cursor: query.cursor, order: query.order }.request();
    let filter = AuditFilter {
        actor: query.actor.filter(|a| !a.is_empty()),
        action: query.action,
        target: query.target.filter(|t| !t.is_empty()),
        since: query.since,
        until: query.until,
    };
    let page = state.services.access.audit(page, &filter)?;
    Ok(Json(AuditPage { entries: page.items.iter().map(wire::audit).collect(), next_cursor: page.next_cursor }))
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
pub async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "ok".into() })
}

/// `GET /readyz`: the database answers and active plugins are loaded.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    state.services.access.trust()?;
    let plugins_loaded = u64::try_from(state.services.plugins.loaded()).unwrap_or(u64::MAX);
    Ok(Json(Readiness { status: "ready".into(), plugins_loaded }))
}
