//! API tokens and roles.
//!
//! Roles: `admin` (everything), `publisher` (upload plugins), `invoker` (invoke and read). Tokens
//! are random 32-byte strings; only their SHA-256 is stored, and a presented token is compared
//! with every stored hash in constant time. Missing or unknown token: 401; wrong role: 403.

use super::AppState;
use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Upload plugins.
    Publisher,
    /// Invoke and read.
    Invoker,
}

/// A fresh random token.
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(format!("pb_{}", hex::encode(bytes)))
}

/// Hex SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

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
        let tokens = state.registry.tokens();
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
