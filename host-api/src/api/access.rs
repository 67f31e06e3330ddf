//! Who may call a route, declared once in the route table ([`super::routes`]) and enforced by one
//! layer before the handler runs.
//!
//! Before this, each handler began with its own `caller.require…` call, and the table's role was
//! documentation that could disagree with the code. Now the table's [`Access`] is the check: the
//! layer answers 401 (no valid token) or 403 (wrong role, or a scoped token outside its scope)
//! without running the handler or reading the body, and closes the connection so an unread body
//! (an upload of tens of MB) is never read. The OpenAPI document's `x-plugboard-role` comes from
//! the same value.
//!
//! What the table cannot know stays in the handler: an upload's plugin name (in its signed
//! manifest) and whether `?activate=true` asks for admin; which flow an execution id belongs to;
//! and which items of a list a scoped token sees.

use super::auth::{Caller, Role};
use super::error::ApiError;
use axum::extract::{FromRequestParts, RawPathParams, Request};
use axum::http::HeaderValue;
use axum::http::header::CONNECTION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What the layer checks for a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Nothing: public, or authenticated by the handler (a webhook's signature scheme).
    Public,
    /// Any valid token, scoped or not.
    AnyToken,
    /// The role, and an unscoped token: what the route touches spans more than a scope names.
    Unscoped,
    /// The role only; the handler shows a scoped token only what it [sees](Caller::sees_plugin).
    Listing,
    /// The role, and the plugin named by the `{name}` path segment within the scope.
    Plugin,
    /// The role, and the flow named by the `{name}` path segment within the scope.
    Flow,
}

/// A route's access rule: the roles besides admin that may call it, what else is checked, and
/// the action's words for the 403 message ("this token's role may not {what}").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Roles allowed besides admin (which may call every route).
    pub roles: &'static [Role],
    /// The check.
    pub check: Check,
    /// The action, for messages.
    pub what: &'static str,
}

const INVOKER: &[Role] = &[Role::Invoker];
const PUBLISHER: &[Role] = &[Role::Publisher];

impl Access {
    /// No token needed.
    pub const fn public(what: &'static str) -> Access {
        Access { roles: &[], check: Check::Public, what }
    }

    /// Any valid token.
    pub const fn any_token(what: &'static str) -> Access {
        Access { roles: &[Role::Invoker, Role::Publisher], check: Check::AnyToken, what }
    }

    /// Admin only, unscoped.
    pub const fn admin(what: &'static str) -> Access {
        Access { roles: &[], check: Check::Unscoped, what }
    }

    /// `roles` (or admin), unscoped.
    pub const fn unscoped(roles: &'static [Role], what: &'static str) -> Access {
        Access { roles, check: Check::Unscoped, what }
    }

    /// Invoker (or admin), scoped tokens too; the handler filters what it answers.
    pub const fn invoker_listing(what: &'static str) -> Access {
        Access { roles: INVOKER, check: Check::Listing, what }
    }

    /// Invoker (or admin), and the `{name}` plugin within the scope.
    pub const fn invoker_plugin(what: &'static str) -> Access {
        Access { roles: INVOKER, check: Check::Plugin, what }
    }

    /// Invoker (or admin), and the `{name}` flow within the scope.
    pub const fn invoker_flow(what: &'static str) -> Access {
        Access { roles: INVOKER, check: Check::Flow, what }
    }

    /// Publisher (or admin), scoped tokens too: an upload's name is checked once its manifest
    /// is verified.
    pub const fn publisher_upload(what: &'static str) -> Access {
        Access { roles: PUBLISHER, check: Check::Listing, what }
    }

    /// The least role named in the OpenAPI document: `none`, `invoker`, `publisher` or `admin`.
    pub fn role_name(&self) -> &'static str {
        match (self.check, self.roles) {
            (Check::Public, _) => "none",
            (_, roles) if roles.contains(&Role::Invoker) => "invoker",
            (_, roles) if roles.contains(&Role::Publisher) => "publisher",
            _ => "admin",
        }
    }

    /// Whether `caller` may go on to the handler; `name` is the `{name}` path segment.
    pub fn allows(&self, caller: Option<&Caller>, name: Option<&str>) -> Result<(), ApiError> {
        if self.check == Check::Public {
            return Ok(());
        }
        let caller = caller.ok_or_else(ApiError::unauthorized)?;
        let name = || name.unwrap_or_default();
        match self.check {
            Check::Public | Check::AnyToken => Ok(()),
            Check::Unscoped => caller.require(self.roles, self.what),
            Check::Listing => caller.require_listing(self.roles, self.what),
            Check::Plugin => caller.require_plugin(self.roles, self.what, name()),
            Check::Flow => caller.require_flow(self.roles, self.what, name()),
        }
    }
}

/// The layer: `access` checked against the caller the in-flight layer authenticated.
pub async fn enforce(access: Access, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let params = <RawPathParams as FromRequestParts<()>>::from_request_parts(&mut parts, &()).await.ok();
    let name = params.as_ref().and_then(|params| params.iter().find(|(key, _)| *key == "name").map(|(_, v)| v));
    if let Err(err) = access.allows(parts.extensions.get::<Caller>(), name) {
        let mut response = err.into_response();
        response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    next.run(Request::from_parts(parts, body)).await
}
