//! [`ApiClient`]: the HTTP client behind every `plugboard` command that talks to a server.
//!
//! It connects to `--server`/`PLUGBOARD_SERVER` with `--token`/`PLUGBOARD_TOKEN` and answers the
//! server's answers as their `plugboard-api-types` types, so a field the server renames is a
//! compile error here (or a typed [`ClientError::Decode`] against another server), never a
//! silent `-` in a table. An error answer keeps the server's whole JSON body next to its stable `code`, so
//! `--json` can print exactly what the server said and scripts can branch on the code. One method
//! per operator route; the flow and dead-letter calls live with their commands in
//! `flow_commands.rs`. Rendering answers as tables is `render.rs`'s job.

use plugboard_api_types::access::{
    AddKey, AuditPage, CreateToken, CreatedToken, Key, KeyList, Role, TokenInfo, TokenList, TokenScope,
};
use plugboard_api_types::connections::MetricsHistory;
use plugboard_api_types::plugins::{
    ActiveVersion, ConfigRequest, ConfigView, Grants, Health, Installed, InvokeRequest, Invoked, PluginDetail,
    PluginList,
};
use plugboard_api_types::{ApiErrorCode, ErrorBody};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered an error.
    #[error("{}: {message} (HTTP {status})", .code.map_or("unknown", ApiErrorCode::as_str))]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code; none when the answer was not Plugboard's error body (a proxy's
        /// page, a newer server's code this client does not know).
        code: Option<ApiErrorCode>,
        /// The server's message.
        message: String,
        /// The server's whole error body (`code`, `message`, and for invocations `usage`, `logs`).
        body: Value,
    },
    /// The server answered success with a body that is not the route's type (another server,
    /// or another version of it).
    #[error("the server's answer to {what} is not what this client reads: {source}")]
    Decode {
        /// The request.
        what: String,
        /// Why it does not parse.
        source: serde_json::Error,
    },
    /// The server could not be reached.
    #[error("cannot reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    /// A local file could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// Which file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A client for one server and token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    token: String,
    pub(crate) http: reqwest::Client,
}

impl ApiClient {
    /// A client for `base` (e.g. `http://127.0.0.1:8686`) with `token`.
    pub fn new(base: &str, token: &str) -> ApiClient {
        ApiClient {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Sends `request` with the token; answers its body as `T` (`()` for an empty one).
    pub(crate) async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, ClientError> {
        let request = request.bearer_auth(&self.token).build()?;
        let what = format!("{} {}", request.method(), request.url().path());
        let body = self.exchange(request).await?;
        // An empty answer (204) reads as `null`: what `()` and `Option` take.
        let body = if body == Value::String(String::new()) { Value::Null } else { body };
        serde_json::from_value(body).map_err(|source| ClientError::Decode { what, source })
    }

    /// Sends `request`; answers its JSON body, or the server's error.
    async fn exchange(&self, request: reqwest::Request) -> Result<Value, ClientError> {
        let response = self.http.execute(request).await?;
        let status = response.status();
        let text = response.text().await?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(body);
        }
        let code = serde_json::from_value::<ErrorBody>(body.clone()).ok().map(|error| error.code);
        // A code this client does not know still has the server's message; a page that is not
        // JSON (a proxy's) is its own message.
        let message = match &body {
            Value::String(text) => text.clone(),
            other => other["message"].as_str().unwrap_or_default().to_string(),
        };
        Err(ClientError::Api { status: status.as_u16(), code, message, body })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Uploads a signed plugin file.
    pub async fn push(&self, file: &Path, activate: bool) -> Result<Installed, ClientError> {
        let bytes =
            std::fs::read(file).map_err(|source| ClientError::File { path: file.display().to_string(), source })?;
        self.push_bytes(bytes, activate).await
    }

    /// Uploads a signed plugin.
    pub async fn push_bytes(&self, bytes: Vec<u8>, activate: bool) -> Result<Installed, ClientError> {
        let query = if activate { "?activate=true" } else { "" };
        self.send(
            self.http
                .post(self.url(&format!("/v1/plugins{query}")))
                .header("content-type", "application/wasm")
                .body(bytes),
        )
        .await
    }

    /// Lists plugins.
    pub async fn list(&self) -> Result<PluginList, ClientError> {
        self.send(self.http.get(self.url("/v1/plugins"))).await
    }

    /// One plugin: versions, manifest, grants (secret keys only), health, usage.
    pub async fn plugin(&self, name: &str) -> Result<PluginDetail, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/plugins/{name}")))).await
    }

    /// Whether a plugin's active version is loaded.
    pub async fn health(&self, name: &str) -> Result<Health, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/plugins/{name}/health")))).await
    }

    /// Activates a version; `allow_rollback` activates one below the highest ever installed.
    pub async fn activate(
        &self,
        name: &str,
        version: &str,
        allow_rollback: bool,
    ) -> Result<ActiveVersion, ClientError> {
        let query = if allow_rollback { "?allow_rollback=true" } else { "" };
        self.send(self.http.post(self.url(&format!("/v1/plugins/{name}/versions/{version}/activate{query}")))).await
    }

    /// Deactivates a plugin.
    pub async fn deactivate(&self, name: &str) -> Result<ActiveVersion, ClientError> {
        self.send(self.http.post(self.url(&format!("/v1/plugins/{name}/deactivate")))).await
    }

    /// Deletes an inactive plugin, or one inactive version of it.
    pub async fn delete(&self, name: &str, version: Option<&str>) -> Result<(), ClientError> {
        let path = match version {
            Some(version) => format!("/v1/plugins/{name}/versions/{version}"),
            None => format!("/v1/plugins/{name}"),
        };
        self.send(self.http.delete(self.url(&path))).await
    }

    /// Replaces a plugin's grants.
    pub async fn set_grants(&self, name: &str, grants: &Grants) -> Result<Grants, ClientError> {
        self.send(self.http.put(self.url(&format!("/v1/plugins/{name}/grants"))).json(grants)).await
    }

    /// Replaces a plugin's config values and secrets.
    pub async fn set_config(
        &self,
        name: &str,
        values: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, String>,
    ) -> Result<ConfigView, ClientError> {
        let values = values.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let body = ConfigRequest { values, secrets: secrets.clone() };
        self.send(self.http.put(self.url(&format!("/v1/plugins/{name}/config"))).json(&body)).await
    }

    /// Invokes a plugin: `records` for transformers and sinks, `cursor` and `max_records` for
    /// sources.
    pub async fn invoke(
        &self,
        name: &str,
        records: Vec<Value>,
        cursor: Option<&str>,
        max_records: Option<u32>,
    ) -> Result<Invoked, ClientError> {
        let body = InvokeRequest { records, cursor: cursor.map(str::to_string), max_records };
        self.send(self.http.post(self.url(&format!("/v1/plugins/{name}/invoke"))).json(&body)).await
    }

    /// Trusts a public key file.
    pub async fn keys_add(&self, public_key: &Path, name: &str) -> Result<Key, ClientError> {
        let bytes = std::fs::read(public_key)
            .map_err(|source| ClientError::File { path: public_key.display().to_string(), source })?;
        self.keys_add_bytes(&bytes, name).await
    }

    /// Trusts a public key given as its file's bytes.
    pub async fn keys_add_bytes(&self, public_key: &[u8], name: &str) -> Result<Key, ClientError> {
        let body = AddKey { name: name.to_string(), public_key: hex::encode(public_key) };
        self.send(self.http.post(self.url("/v1/keys")).json(&body)).await
    }

    /// Lists trusted and revoked keys.
    pub async fn keys_list(&self) -> Result<KeyList, ClientError> {
        self.send(self.http.get(self.url("/v1/keys"))).await
    }

    /// Revokes a key.
    pub async fn keys_revoke(&self, id: &str) -> Result<Key, ClientError> {
        self.send(self.http.post(self.url(&format!("/v1/keys/{id}/revoke")))).await
    }

    /// Creates an API token with `role`, limited to `plugins` and `flows` when either is given;
    /// the answer holds its value, shown only this once.
    pub async fn tokens_create(
        &self,
        name: &str,
        role: Role,
        plugins: &[String],
        flows: &[String],
    ) -> Result<CreatedToken, ClientError> {
        let scope = (!plugins.is_empty() || !flows.is_empty())
            .then(|| TokenScope { plugins: plugins.to_vec(), flows: flows.to_vec() });
        let body = CreateToken { name: name.to_string(), role, scope };
        self.send(self.http.post(self.url("/v1/tokens")).json(&body)).await
    }

    /// Lists API tokens (names and roles).
    pub async fn tokens_list(&self) -> Result<TokenList, ClientError> {
        self.send(self.http.get(self.url("/v1/tokens"))).await
    }

    /// Revokes an API token.
    pub async fn tokens_revoke(&self, name: &str) -> Result<(), ClientError> {
        self.send(self.http.delete(self.url(&format!("/v1/tokens/{name}")))).await
    }

    /// A page of the audit log, oldest first.
    pub async fn audit_page(&self, limit: Option<usize>, cursor: Option<u64>) -> Result<AuditPage, ClientError> {
        let mut query = Vec::new();
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_string()));
        }
        self.send(self.http.get(self.url("/v1/audit")).query(&query)).await
    }

    /// The first page of the audit log.
    pub async fn audit(&self) -> Result<AuditPage, ClientError> {
        self.audit_page(None, None).await
    }

    /// The caller's token name and role.
    pub async fn whoami(&self) -> Result<TokenInfo, ClientError> {
        self.send(self.http.get(self.url("/v1/whoami"))).await
    }

    /// The server's metrics history (the last hour of samples).
    pub async fn metrics_history(&self) -> Result<MetricsHistory, ClientError> {
        self.send(self.http.get(self.url("/v1/metrics/history"))).await
    }
}
