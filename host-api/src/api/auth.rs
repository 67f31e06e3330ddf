//! API tokens and roles.
//!
//! Roles: `admin` (everything), `publisher` (upload plugins), `invoker` (invoke and read). Tokens
//! are random 32-byte strings; only their SHA-256 is stored, and a presented token is compared
//! with every stored hash in constant time. Missing or unknown token: 401; wrong role: 403.

use super::AppState;
use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::domain::access::{new_token, token_hash};
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

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthorized)?;
        let presented = Sha256::digest(token.trim().as_bytes());
        let tokens = state.services.access.tokens();
        let mut found = None;
        for record in &tokens {
            let stored = hex::decode(&record.hash).unwrap_or_default();
            if bool::from(stored.ct_eq(presented.as_slice())) {
                found = Some(Caller { name: record.name.clone(), role: record.role });
            }
        }
        found.ok_or_else(ApiError::unauthorized)
    }
}
