//! The `plugboard` client commands: `push`, `ls`, `activate`, `invoke`, `keys`, `audit`.
//!
//! [`ApiClient`] talks to a server (`--server`/`PLUGBOARD_SERVER`, `--token`/`PLUGBOARD_TOKEN`) and
//! returns the JSON answers; API errors keep their stable `code`. The `render_*` functions turn
//! answers into the readable tables the commands print unless `--json` is given.

use serde_json::{Value, json};
use std::path::Path;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered an error.
    #[error("{code}: {message} (HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The server's message.
        message: String,
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

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        let text = response.text().await?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(body);
        }
        Err(ClientError::Api {
            status: status.as_u16(),
            code: body["code"].as_str().unwrap_or("unknown").to_string(),
            message: body["message"].as_str().unwrap_or_default().to_string(),
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Uploads a signed plugin file.
    pub async fn push(&self, file: &Path, activate: bool) -> Result<Value, ClientError> {
        let bytes =
            std::fs::read(file).map_err(|source| ClientError::File { path: file.display().to_string(), source })?;
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
    pub async fn list(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(self.url("/v1/plugins"))).await
    }

    /// Activates a version.
    /// Activates a version; `allow_rollback` activates one below the highest ever installed.
    pub async fn activate(&self, name: &str, version: &str, allow_rollback: bool) -> Result<Value, ClientError> {
        let query = if allow_rollback { "?allow_rollback=true" } else { "" };
        self.send(self.http.post(self.url(&format!("/v1/plugins/{name}/versions/{version}/activate{query}")))).await
    }

    /// Invokes a plugin with a JSON array of records.
    pub async fn invoke(&self, name: &str, records: Value) -> Result<Value, ClientError> {
        self.send(self.http.post(self.url(&format!("/v1/plugins/{name}/invoke"))).json(&json!({"records": records})))
            .await
    }

    /// Trusts a public key file.
    pub async fn keys_add(&self, public_key: &Path, name: &str) -> Result<Value, ClientError> {
        let bytes = std::fs::read(public_key)
            .map_err(|source| ClientError::File { path: public_key.display().to_string(), source })?;
        let body = json!({"name": name, "public_key": bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()});
        self.send(self.http.post(self.url("/v1/keys")).json(&body)).await
    }

    /// Lists trusted and revoked keys.
    pub async fn keys_list(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(self.url("/v1/keys"))).await
    }

    /// Revokes a key.
    pub async fn keys_revoke(&self, id: &str) -> Result<Value, ClientError> {
        self.send(self.http.post(self.url(&format!("/v1/keys/{id}/revoke")))).await
    }

    /// The audit log.
    pub async fn audit(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(self.url("/v1/audit"))).await
    }
}

/// Formats rows as a left-aligned table with a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.clone()));
    }
    out
}

/// A JSON value as table text (`-` for null).
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `plugboard ls` as a table.
pub fn render_plugins(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["plugins"]
        .as_array()
        .map(|plugins| {
            plugins
                .iter()
                .map(|p| {
                    let versions = p["versions"]
                        .as_array()
                        .map(|v| v.iter().map(text).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    vec![text(&p["name"]), text(&p["kind"]), text(&p["active_version"]), versions]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["name", "kind", "active", "versions"], &rows)
}

/// `plugboard keys ls` as a table.
pub fn render_keys(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .map(|k| {
                    let state = if k["revoked_at"].is_null() { "trusted" } else { "revoked" };
                    vec![text(&k["key_id"]), text(&k["name"]), state.to_string()]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["key id", "name", "state"], &rows)
}

/// `plugboard audit` as a table.
pub fn render_audit(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    vec![
                        text(&e["at"]),
                        text(&e["actor"]),
                        text(&e["action"]),
                        text(&e["target"]),
                        text(&e["key_id"]),
                        text(&e["detail"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["at", "actor", "action", "target", "key id", "detail"], &rows)
}
