//! The control-plane test harness: a real `plugboard serve` on 127.0.0.1:0 over a temporary data
//! directory, a real HTTP client, and helpers to install signed plugins.

use plugboard_host_api::api::ServerLimits;
use plugboard_host_api::server::{self, ServeConfig};
use plugboard_tests::*;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::path::Path;

/// The admin token of test servers (strong enough for the start-up check: 128 bits at least).
pub const ADMIN: &str = "test-admin-token-5c1f9e3a7b2d8f4c6e0a1b3d5f7e9c2a";

/// A running server and a client for it.
pub struct Api {
    pub base: String,
    pub client: Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Api {
    pub async fn start(data: &Path) -> Api {
        Api::start_with(data, ServerLimits::default()).await
    }

    pub async fn start_with(data: &Path, limits: ServerLimits) -> Api {
        Api::start_configured(Api::config(data), limits).await
    }

    /// A server with `config` (start from [`Api::config`]).
    pub async fn start_configured(config: ServeConfig, limits: ServerLimits) -> Api {
        // A server stopped a moment ago may still hold the database lock (sled's flusher thread).
        let mut attempts = 0;
        let server = loop {
            match server::start(&config, limits).await {
                Ok(server) => break server,
                Err(err) if attempts < 50 => {
                    attempts += 1;
                    let _ = err;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(err) => panic!("server does not start: {err:#}"),
            }
        };
        let base = format!("http://{}", server.addr);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Api { base, client: Client::new(), stop: Some(stop), task: Some(task) }
    }

    /// A client for a server running elsewhere (another process); `stop` leaves it running.
    pub fn connect(base: &str) -> Api {
        Api { base: base.to_string(), client: Client::new(), stop: None, task: None }
    }

    /// The settings every test server uses, over `data`.
    pub fn config(data: &Path) -> ServeConfig {
        ServeConfig {
            data: Some(data.to_path_buf()),
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            admin_token: Some(ADMIN.into()),
            allow_unsigned: false,
            // Fuel high enough that deadlines, not fuel, stop the looping test guests.
            caps: plugboard_runtime::BudgetLimits { fuel: Some(u64::MAX / 2), ..Default::default() },
            ..ServeConfig::default()
        }
    }

    /// Graceful shutdown: in-flight requests finish, the database is flushed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("clean shutdown");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `POST` of raw `text` as `media` (a body that is not JSON, or JSON that does not parse).
    pub async fn post_raw(&self, path: &str, token: &str, media: &str, text: &str) -> (StatusCode, Value) {
        self.send_raw(reqwest::Method::POST, path, token, media, text).await
    }

    /// A request with raw `text` as `media` for its body.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        media: &str,
        text: &str,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("content-type", media)
            .body(text.to_string())
            .send()
            .await
            .expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(token), Some(body)).await
    }

    /// `PUT` as admin.
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PUT, path, Some(ADMIN), Some(body)).await
    }

    /// Installs json-mapper, active, mapping `{"v": "$.a"}`.
    pub async fn install_mapper(&self) {
        install(self, JSON_MAPPER).await;
        let (status, body) =
            self.put("/v1/plugins/json-mapper/config", json!({"values": {"mapping": {"v": "$.a"}}})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn upload(&self, file: Vec<u8>, query: &str, token: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url(&format!("/v1/plugins{query}")))
            .bearer_auth(token)
            .header("content-type", "application/wasm")
            .body(file)
            .send()
            .await
            .expect("upload");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Trusts the test publisher key.
    pub async fn trust_test_key(&self) {
        let public = hex_bytes(&test_key().public().to_bytes());
        let (status, body) = self.post("/v1/keys", ADMIN, json!({"name": "tests", "public_key": public})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    pub async fn token(&self, name: &str, role: &str) -> String {
        let (status, body) = self.post("/v1/tokens", ADMIN, json!({"name": name, "role": role})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("token").to_string()
    }
}

pub fn hex_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn install(api: &Api, plugin: SamplePlugin) {
    let (status, body) = api.upload(plugin.signed(), "?activate=true", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "active");
}

/// `plugin` signed as `version` (same component, manifest version changed).
pub fn signed_as(plugin: SamplePlugin, version: &str) -> Vec<u8> {
    let manifest =
        plugboard_runtime::Manifest { version: semver::Version::parse(version).expect("semver"), ..plugin.manifest() };
    plugboard_runtime::signing::sign(&plugin.bytes(), &manifest, test_key()).expect("sign")
}

pub fn hostile_grant(mode: &str, budget: Value) -> (Value, Value) {
    (json!({"budget": budget}), json!({"values": {"mode": mode}}))
}

pub async fn install_hostile(api: &Api, mode: &str, budget: Value) {
    install(api, GUEST_HOSTILE).await;
    let (grants, config) = hostile_grant(mode, budget);
    let (status, body) = api.put("/v1/plugins/hostile/grants", grants).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api.put("/v1/plugins/hostile/config", config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Opens a stopped server's database; sled's flusher thread may hold its lock for a moment after
/// the server stopped.
pub async fn reopen(path: &Path) -> plugboard_host_api::store::sled::SledStore {
    use plugboard_host_api::store::{sealed::SecretsKey, sled::SledStore};
    // The server's key file sits beside its database (`DATA/db`, `DATA/secrets.key`).
    let key_file = path.parent().expect("data directory").join("secrets.key");
    let key = || SecretsKey::load_or_create(&key_file).expect("secrets key");
    for _ in 0..50 {
        if let Ok(store) = SledStore::open(path, key()) {
            return store;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    SledStore::open(path, key()).expect("reopen")
}
