//! API tokens and roles.
//!
//! Roles: `admin` (everything), `publisher` (upload plugins), `invoker` (invoke and read). Tokens
//! are random 32-byte strings; only a keyed hash is stored (`domain::tokens`), and a presented
//! token is compared with every stored hash in constant time. Missing or unknown token: 401;
//! wrong role: 403.

use super::AppState;
use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

pub use crate::domain::access::new_token;
pub use crate::store::Role;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name (for the audit log).
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// Succeeds when the caller's role is admin or one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if self.role == Role::Admin || roles.contains(&self.role) { Ok(()) } else { Err(ApiError::forbidden(what)) }
    }
}

/// The caller a request's `Authorization: Bearer` token names, if it names one. Run once per
/// request, before anything else, so the in-flight pool can be chosen by it.
pub fn authenticate(headers: &HeaderMap, state: &AppState) -> Option<Caller> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    let record = state.services.access.find(token.trim())?;
    Some(Caller { name: record.name, role: record.role })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// The caller [`authenticate`] found (the in-flight layer stores it), or 401.
    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Caller, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(ApiError::unauthorized)
    }
}
