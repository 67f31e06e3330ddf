//! Connections: credentials the host holds and adds to a plugin's outgoing requests, so the
//! plugin never sees them.
//!
//! A manifest names the connections it uses (`connections = ["crm"]`), the operator binds them in
//! the grant, and the host's [`Credentials`] (the control plane's connection store) knows each
//! connection's kind, secret and hosts. When a plugin sends a request that the allow-list let
//! through, [`OutboundPolicy`](super::outbound::OutboundPolicy) asks the credentials for one of
//! the plugin's connections bound to that destination; if there is one, its header replaces
//! whatever the plugin set under that name, after the plugin handed the request over. The plugin
//! reads nothing back: the request is gone from its memory by then, so a plugin that logs or
//! echoes its own headers shows none, and a request to any other host carries nothing.
//!
//! A credential goes only where its connection's pattern names the destination strictly
//! (`HostPattern::names`: no scheme means https, no port the default one), and never with a
//! `TRACE` or `CONNECT`, which would echo it back or tunnel past it.
//!
//! The same call waits for the connection's rate limit (requests per second with a burst, and
//! requests in flight), shared by every invocation and flow using it; the place in flight is held
//! until the response's connection is done. [`Credentials::answered`] hears the status, so a `401`
//! can drop a cached OAuth token and the next attempt fetches a fresh one.

use std::future::Future;
use std::pin::Pin;

/// A boxed future, as trait objects return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The credential of one request.
pub struct Authorization {
    /// The connection it comes from.
    pub connection: String,
    /// The header it goes in (`authorization`, or an API key's header).
    pub header: http::HeaderName,
    /// Its value (marked sensitive).
    pub value: http::HeaderValue,
    /// Which credential of the connection it was (an OAuth token's generation), so an answer
    /// about an old one does not drop a newer one.
    pub generation: u64,
    /// Held until the exchange is done: the connection's place in flight.
    pub hold: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the value.
        f.debug_struct("Authorization").field("connection", &self.connection).field("header", &self.header).finish()
    }
}

/// Why a request gets no credential, and so is not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not now (a token endpoint that failed, hung or answered garbage): retrying may succeed,
    /// so the plugin sees a failed exchange (its SDK's `retryable`), not a denial.
    #[error("{0}")]
    Unavailable(String),
    /// Not at all (a connection bound to the plugin that does not exist, a credential that is
    /// not a header value): the plugin sees a denied request.
    #[error("{0}")]
    Refused(String),
}

/// Where credentials come from; the control plane implements it over its connections.
pub trait Credentials: Send + Sync + std::fmt::Debug {
    /// The credential for a request to `scheme://host:port` by a plugin granted `connections`,
    /// if one of them is bound to that destination; waits for that connection's rate limit.
    ///
    /// # Errors
    /// Why no credential could be had ([`CredentialError`]): the request is then not sent
    /// without it.
    fn authorize<'a>(
        &'a self,
        connections: &'a [String],
        scheme: &'a str,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Option<Authorization>, CredentialError>>;

    /// The remote answered `status` to a request `authorization` authorized.
    fn answered(&self, authorization: &Authorization, status: u16);
}
