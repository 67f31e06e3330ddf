//! [`ApiClient`]: Plugboard's HTTP client, behind every `plugboard` command that talks to a server
//! and usable by any Rust program. Its own crate: it knows the API's types (`plugboard-api-types`)
//! and HTTP, never the server's domain or storage.
//!
//! It connects to `--server`/`PLUGBOARD_SERVER` with `--token`/`PLUGBOARD_TOKEN` and answers the
//! server's answers as their `plugboard-api-types` types, so a field the server renames is a
//! compile error here (or a typed [`ClientError::Decode`] against another server), never a
//! silent `-` in a table. An error answer keeps the server's whole JSON body next to its stable
//! `code`, so `--json` can print exactly what the server said and scripts can branch on the code. One method
//! per operator route, by area: `plugins`, `access` (keys, tokens, audit, who am I, metrics),
//! `flows` (flows, executions, deliveries, dead letters), `connections`. Rendering answers as
//! tables is the CLI's job.

mod access;
mod connections;
mod flows;
mod plugins;

use plugboard_api_types::{ApiErrorCode, ErrorBody};
use serde::de::DeserializeOwned;
use serde_json::Value;

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
}
