//! API tokens and roles.
//!
//! Roles: `admin` (everything), `publisher` (upload plugins), `invoker` (invoke and read). Tokens
//! are random 32-byte strings; only a keyed hash is stored (`domain::tokens`), and a presented
//! token is compared with every stored hash in constant time. Missing or unknown token: 401;
//! wrong role: 403.
//!
//! A token may be scoped to named plugins and flows (`store::TokenScope`). Deny by default: a
//! handler that checks only the role ([`Caller::require`]) refuses every scoped token, so a route
//! added without thinking of scopes cannot leak what a scope hides. Handlers that act on one
//! plugin or flow check it ([`Caller::require_plugin`], [`Caller::require_flow`]); lists check the
//! role ([`Caller::require_listing`]) and show only what the caller [`sees`](Caller::sees_flow).

use super::AppState;
use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

pub use crate::domain::access::new_token;
pub use crate::store::{Role, TokenScope};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name (for the audit log).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// What it is limited to, if anything.
    pub scope: Option<TokenScope>,
}

impl Caller {
    /// Succeeds when the caller's role is admin or one of `roles` and the token is not scoped:
    /// what this guards spans more than any scope names.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        self.require_listing(roles, what)?;
        match &self.scope {
            Some(scope) => Err(ApiError::out_of_scope(what, scope)),
            None => Ok(()),
        }
    }

    /// The role check alone, for a list the handler then filters by [`Caller::sees_plugin`] or
    /// [`Caller::sees_flow`].
    pub fn require_listing(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if self.role == Role::Admin || roles.contains(&self.role) { Ok(()) } else { Err(ApiError::forbidden(what)) }
    }

    /// The role check, and the plugin `name` within the scope.
    pub fn require_plugin(&self, roles: &[Role], what: &str, name: &str) -> Result<(), ApiError> {
        self.require_listing(roles, what)?;
        self.within(self.sees_plugin(name), &format!("{what} ({name})"))
    }

    /// The role check, and the flow `name` within the scope.
    pub fn require_flow(&self, roles: &[Role], what: &str, name: &str) -> Result<(), ApiError> {
        self.require_listing(roles, what)?;
        self.within(self.sees_flow(name), &format!("{what} (flow {name})"))
    }

    /// Whether the plugin `name` is within the scope (always, unscoped).
    pub fn sees_plugin(&self, name: &str) -> bool {
        self.scope.as_ref().is_none_or(|scope| scope.plugins.iter().any(|p| p == name))
    }

    /// Whether the flow `name` is within the scope (always, unscoped).
    pub fn sees_flow(&self, name: &str) -> bool {
        self.scope.as_ref().is_none_or(|scope| scope.flows.iter().any(|f| f == name))
    }

    fn within(&self, inside: bool, what: &str) -> Result<(), ApiError> {
        match &self.scope {
            Some(scope) if !inside => Err(ApiError::out_of_scope(what, scope)),
            _ => Ok(()),
        }
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
    Some(Caller { name: record.name, role: record.role, scope: record.scope })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// The caller [`authenticate`] found (the in-flight layer stores it), or 401.
    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Caller, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(ApiError::unauthorized)
    }
}
