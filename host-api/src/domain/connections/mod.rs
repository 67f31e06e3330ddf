//! Connections: named credentials the operator holds for a set of hosts — a bearer token, an API
//! key header, basic, OAuth 2.0 client credentials (RFC 6749 §4.4) or an OAuth 2.0 refresh token
//! (§6, rotated when the authorization server returns a new one) — added by the host to a
//! plugin's requests to those hosts, so the plugin never holds them (see
//! `plugboard_runtime::host::credentials`).
//!
//! A definition is stored whole, its secret included, sealed at rest like every secret; the API
//! answers only its [`PublicConnection`] view. A plugin uses a connection when its manifest names
//! it (`connections = ["crm"]`) and its grant binds it; [`credentials::HostCredentials`] is what
//! the runtime asks for each request.

pub mod credentials;
mod figures;

use super::{DomainError, Result};
use crate::store::{AuditAction, AuditEntry, Change, Op, Storage};
use credentials::HostCredentials;
use plugboard_runtime::host::outbound::HostPattern;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The kinds of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionKind {
    /// `Authorization: Bearer SECRET`.
    Bearer,
    /// `HEADER: SECRET` (`header`, default `X-API-Key`).
    ApiKey,
    /// `Authorization: Basic base64(username:SECRET)`.
    Basic,
    /// OAuth 2.0 client credentials: the host fetches an access token from `token_url` with
    /// `client_id` and the secret, caches it until shortly before it expires, fetches a new one
    /// after a `401`, and sends `Authorization: Bearer TOKEN`.
    Oauth2ClientCredentials,
    /// OAuth 2.0 refresh token (RFC 6749 §6): the secret is the refresh token; the host trades it
    /// at `token_url` (as `client_id`, with `client_secret` when the client has one) for access
    /// tokens, as for client credentials, and when the answer carries a new refresh token the
    /// host stores it (sealed, audited) and uses it from then on: servers that rotate refresh
    /// tokens invalidate the old one.
    Oauth2RefreshToken,
}

/// Requests per second (with a burst) and in flight, shared by every invocation using the
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second.
    #[serde(default)]
    pub per_second: Option<f64>,
    /// Requests allowed at once above the sustained rate (default: one second's worth).
    #[serde(default)]
    pub burst: Option<u32>,
    /// Requests in flight at once.
    #[serde(default)]
    pub concurrent: Option<u32>,
}

/// A connection as the operator defines it.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ConnectionDefinition")]
pub struct ConnectionDefinition {
    /// What kind of credential.
    pub kind: ConnectionKind,
    /// Where it is sent: outbound host patterns (`api.example.com`, `*.example.com`,
    /// `https://host:port`); a request elsewhere never carries it.
    pub hosts: Vec<String>,
    /// The secret: the token, the key, the password, the OAuth client secret (client
    /// credentials) or the refresh token. Write-only; left out when replacing a connection, the
    /// stored one is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("writeOnly" = true))]
    pub secret: Option<String>,
    /// `oauth2-refresh-token`: the client's secret, for a confidential client (absent: a public
    /// client, which sends only `client_id`). Write-only and kept on replacement like `secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("writeOnly" = true))]
    pub client_secret: Option<String>,
    /// `api-key`: the header (default `X-API-Key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `basic`: the user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// OAuth: the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// OAuth: the client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// OAuth: scopes asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// OAuth: the `audience` parameter some servers want.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Limits shared by every use of the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// What `POST /v1/connections/{name}/test` calls (`GET`, with the credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_url: Option<String>,
}

/// What the API answers about a connection: never its secret.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(rename = "Connection", transform = without_secrets)]
pub struct PublicConnection {
    /// The name.
    pub name: String,
    /// The definition without its secret.
    #[serde(flatten)]
    pub definition: ConnectionDefinition,
    /// Whether a secret is stored.
    pub has_secret: bool,
    /// Plugins whose grant binds it.
    pub used_by: Vec<String>,
}

/// The schema of [`PublicConnection`] without the definition's write-only fields: [`public`]
/// always clears them, so an answer never has them.
fn without_secrets(schema: &mut Schema) {
    if let Some(properties) = schema.get_mut("properties").and_then(serde_json::Value::as_object_mut) {
        properties.remove("secret");
        properties.remove("client_secret");
    }
}

impl std::fmt::Debug for ConnectionDefinition {
    /// Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionDefinition")
            .field("kind", &self.kind)
            .field("hosts", &self.hosts)
            .field("has_secret", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

/// Whether `url` is https, or http to this machine (a token endpoint or probe in a test).
fn secure_url(url: &str) -> bool {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    url.starts_with("https://")
        || loopback
            .iter()
            .any(|l| url.strip_prefix(l).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/'])))
}

impl ConnectionDefinition {
    /// Where the secret goes: what must not change without the secret being given again.
    fn destination(&self) -> impl PartialEq + '_ {
        (self.kind, &self.hosts, &self.header, &self.username, &self.token_url, &self.client_id, &self.probe_url)
    }

    /// Checks the definition, naming the field at fault.
    ///
    /// # Errors
    /// [`DomainError::Invalid`].
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(DomainError::Invalid(reason));
        if self.hosts.is_empty() {
            return invalid("a connection names at least one host in `hosts`".into());
        }
        let mut patterns = Vec::new();
        for host in &self.hosts {
            let pattern =
                HostPattern::parse(host).map_err(|reason| DomainError::Invalid(format!("hosts: {reason}")))?;
            if pattern.is_any_host() {
                return invalid(
                    "hosts: `*` would send the credential to every host the plugin may reach; name them".into(),
                );
            }
            patterns.push(pattern);
        }
        if self.secret.as_deref().is_some_and(|s| s.is_empty() || s.len() > 8192) {
            return invalid("`secret` is 1 to 8192 characters".into());
        }
        if self.client_secret.is_some() && self.kind != ConnectionKind::Oauth2RefreshToken {
            return invalid(
                "`client_secret` is for oauth2-refresh-token connections (elsewhere it is `secret`)".into(),
            );
        }
        if self.client_secret.as_deref().is_some_and(|s| s.is_empty() || s.len() > 8192) {
            return invalid("`client_secret` is 1 to 8192 characters".into());
        }
        let needs = |field: &str, value: &Option<String>| match value {
            Some(v) if !v.trim().is_empty() => Ok(()),
            _ => invalid(format!("a {:?} connection needs `{field}`", self.kind)),
        };
        match self.kind {
            ConnectionKind::Bearer => {}
            ConnectionKind::ApiKey => {
                if let Some(header) = &self.header {
                    http::HeaderName::from_bytes(header.as_bytes())
                        .map_err(|_| DomainError::Invalid(format!("header `{header}` is not a header name")))?;
                }
            }
            ConnectionKind::Basic => needs("username", &self.username)?,
            ConnectionKind::Oauth2ClientCredentials | ConnectionKind::Oauth2RefreshToken => {
                needs("token_url", &self.token_url)?;
                needs("client_id", &self.client_id)?;
                let url = self.token_url.as_deref().unwrap_or_default();
                if !secure_url(url) {
                    return invalid(format!("token_url `{url}` must be https (the client secret goes there)"));
                }
            }
        }
        if let Some(limit) = &self.rate_limit {
            if limit.per_second.is_some_and(|r| !(r.is_finite() && r > 0.0 && r <= 100_000.0)) {
                return invalid("rate_limit.per_second is above 0 and at most 100000".into());
            }
            if limit.concurrent == Some(0) || limit.burst == Some(0) {
                return invalid("rate_limit.concurrent and burst are at least 1".into());
            }
        }
        if let Some(url) = &self.probe_url {
            let parsed = reqwest::Url::parse(url)
                .map_err(|_| DomainError::Invalid(format!("probe_url `{url}` is not a URL")))?;
            let host = parsed
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase();
            let port = parsed.port_or_known_default().unwrap_or(0);
            if !patterns.iter().any(|p| p.names(parsed.scheme(), &host, port)) {
                return invalid(format!(
                    "probe_url `{url}` is not among the connection's hosts (it receives the credential)"
                ));
            }
        }
        Ok(())
    }
}

/// Connection names: lower-case letters, digits and dashes, as plugin and flow names.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!("connection name `{name}` must be 1-64 lower-case letters, digits or dashes")))
    }
}

/// The operator's side of connections.
pub struct Connections {
    store: Arc<dyn Storage>,
    credentials: Arc<HostCredentials>,
}

impl Connections {
    /// Over `store`, telling `credentials` of every change.
    pub fn new(store: Arc<dyn Storage>, credentials: Arc<HostCredentials>) -> Connections {
        Connections { store, credentials }
    }

    /// Creates or replaces `name` (a replacement without `secret` keeps the stored one).
    ///
    /// # Errors
    /// `invalid` for a bad definition or a new connection without a secret; storage failures.
    pub async fn put(&self, name: &str, mut definition: ConnectionDefinition, actor: &str) -> Result<PublicConnection> {
        check_name(name)?;
        definition.validate()?;
        let read_at = self.store.position();
        let rotated = definition.secret.is_some();
        if definition.secret.is_none() {
            let Some(stored) = self.stored(name)? else {
                return Err(DomainError::Invalid("a new connection needs its `secret`".into()));
            };
            // Whoever may change a connection may not read its secret: sending the kept one
            // somewhere else needs it given again.
            if stored.destination() != definition.destination() {
                return Err(DomainError::Invalid(
                    "changing where a connection's credential goes (kind, hosts, header, username, token_url, client_id, probe_url) needs its `secret` again".into(),
                ));
            }
            definition.secret = stored.secret;
        }
        if definition.client_secret.is_none()
            && let Some(stored) = self.stored(name)?.filter(|stored| stored.client_secret.is_some())
        {
            if stored.destination() != definition.destination() {
                return Err(DomainError::Invalid(
                    "changing where a connection's credential goes needs its `client_secret` again".into(),
                ));
            }
            definition.client_secret = stored.client_secret;
        }
        let json =
            serde_json::to_string(&definition).map_err(|err| DomainError::internal_in("encoding a connection", err))?;
        let mut audit = AuditEntry::new(actor, AuditAction::ConnectionPut, name);
        audit.detail = format!(
            "{:?} for {}{}",
            definition.kind,
            definition.hosts.join(", "),
            if rotated { "; secret set" } else { "; secret kept" }
        );
        self.store.apply(
            Change::read_at(read_at).with(Op::PutConnection { name: name.into(), definition: json }).audit(audit),
        )?;
        self.store.durable().await?;
        self.credentials.reload();
        self.get(name)
    }

    /// Deletes `name`.
    ///
    /// # Errors
    /// `not-found`; storage failures.
    pub async fn delete(&self, name: &str, actor: &str) -> Result<()> {
        let read_at = self.store.position();
        if self.stored(name)?.is_none() {
            return Err(DomainError::not_found(format!("connection {name}")));
        }
        self.store.apply(Change::read_at(read_at).with(Op::RemoveConnection(name.into())).audit(AuditEntry::new(
            actor,
            AuditAction::ConnectionDelete,
            name,
        )))?;
        self.store.durable().await?;
        self.credentials.reload();
        Ok(())
    }

    /// Every connection, without secrets.
    ///
    /// # Errors
    /// Storage failures.
    pub fn list(&self) -> Result<Vec<PublicConnection>> {
        let users = self.users()?;
        Ok(self
            .store
            .connections()?
            .into_iter()
            .filter_map(|(name, json)| Some((name, serde_json::from_str::<ConnectionDefinition>(&json).ok()?)))
            .map(|(name, definition)| public(name, definition, &users))
            .collect())
    }

    /// One connection, without its secret.
    ///
    /// # Errors
    /// `not-found`; storage failures.
    pub fn get(&self, name: &str) -> Result<PublicConnection> {
        let definition = self.stored(name)?.ok_or_else(|| DomainError::not_found(format!("connection {name}")))?;
        Ok(public(name.to_string(), definition, &self.users()?))
    }

    /// Whether a connection called `name` exists.
    ///
    /// # Errors
    /// Storage failures.
    pub fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.store.connections()?.iter().any(|(n, _)| n == name))
    }

    /// The per-connection figures, as Prometheus text.
    pub fn figures(&self) -> String {
        self.credentials.figures()
    }

    /// Tries `name` as a plugin's request would: fetches a token (OAuth) and calls `probe_url`.
    ///
    /// # Errors
    /// `not-found`; `invalid` without a probe URL for a kind that fetches nothing.
    pub async fn test(&self, name: &str) -> Result<credentials::Probe> {
        let definition = self.stored(name)?.ok_or_else(|| DomainError::not_found(format!("connection {name}")))?;
        Ok(self.credentials.probe(name, &definition).await)
    }

    fn stored(&self, name: &str) -> Result<Option<ConnectionDefinition>> {
        let found = self.store.connections()?.into_iter().find(|(n, _)| n == name);
        Ok(found.and_then(|(_, json)| serde_json::from_str(&json).ok()))
    }

    /// Which plugins' grants bind which connections.
    fn users(&self) -> Result<Vec<(String, Vec<String>)>> {
        let mut names: Vec<String> = self.store.all_versions()?.into_iter().map(|v| v.manifest.name).collect();
        names.dedup();
        names
            .into_iter()
            .map(|name| Ok((name.clone(), self.store.grant(&name)?.connections.into_values().collect())))
            .collect()
    }
}

fn public(name: String, mut definition: ConnectionDefinition, users: &[(String, Vec<String>)]) -> PublicConnection {
    let has_secret = definition.secret.take().is_some();
    definition.client_secret = None;
    let used_by = users.iter().filter(|(_, bound)| bound.contains(&name)).map(|(plugin, _)| plugin.clone()).collect();
    PublicConnection { name, definition, has_secret, used_by }
}

#[cfg(test)]
mod schema_tests;
