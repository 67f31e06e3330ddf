//! Python, TypeScript, Rust and JavaScript plugins in one flow on a real server: signed, uploaded
//! over HTTP, granted, and run against real local HTTP servers standing in for a CRM and a chat
//! webhook — plus what the server does with components of tens of MB (uploads past the request
//! deadline, one compile shared through the cache, the world check at upload).

use crate::support::common::{TestServer, shared_compile_cache};
use crate::support::server::{ADMIN, Api, install};
use plugboard_host_api::api::ServerLimits;
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// The CRM's contacts, three per page.
fn contacts(page: &str) -> Value {
    match page {
        "1" => json!({"items": [
            {"name": "  Ada   Lovelace ", "email": " ADA@Example.COM ", "phone": "020 7946 0958", "country": "GB", "plan": "pro"},
            {"name": "Grace Hopper", "email": "grace@navy.mil", "phone": "+1 202 555 0100", "country": "US", "plan": "free"},
            {"name": "Alan Turing", "email": "Alan@Bletchley.uk", "phone": "+44 1908 640404", "country": "GB", "plan": "team"}
        ]}),
        "2" => json!({"items": [
            {"first_name": "Katherine", "last_name": "Johnson", "email": "kj@nasa.gov", "phone": "+1 757 864 1000", "country": "US", "plan": "pro"}
        ]}),
        _ => json!({"items": []}),
    }
}

/// Uploads, activates and configures one plugin: `grants` and `config` as the API takes them.
async fn set_up(api: &Api, plugin: SamplePlugin, grants: Value, config: Value) {
    install(api, plugin).await;
    let (status, body) = api.put(&format!("/v1/plugins/{}/grants", plugin.name), grants).await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", plugin.name);
    let (status, body) = api.put(&format!("/v1/plugins/{}/config", plugin.name), config).await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", plugin.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_flow_runs_python_typescript_rust_and_javascript_plugins_together() {
    let crm = TestServer::start(|request| {
        let page = request.path.split("page=").nth(1).and_then(|rest| rest.split('&').next()).unwrap_or("1");
        (200, contacts(page).to_string())
    })
    .await;
    let chat = TestServer::start(|_| (200, "ok".into())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Every upload must outlive a request deadline far shorter than one compile: uploads have
    // their own. The compile cache is the one every test shares, so each component compiles once.
    let config =
        plugboard_host_api::server::ServeConfig { cache_dir: Some(shared_compile_cache()), ..Api::config(dir.path()) };
    let limits = ServerLimits { request_timeout: Duration::from_millis(1500), ..ServerLimits::default() };
    let api = Api::start_configured(config, limits).await;
    api.trust_test_key().await;

    let local = json!({"outbound_hosts": ["127.0.0.1"]});
    set_up(&api, PY_REST_PAGES, local.clone(), json!({"values": {"url": crm.url("/contacts"), "per_page": "3"}})).await;
    set_up(&api, TS_NORMALIZE_CONTACT, json!({}), json!({"values": {"default_country_code": "44"}})).await;
    set_up(
        &api,
        FILTER,
        json!({}),
        json!({"values": {"condition": {"field": "$.plan", "op": "not-equals", "value": "free"}}}),
    )
    .await;
    let regions = json!({"GB": {"region": "EMEA"}, "US": {"region": "AMER"}});
    set_up(&api, PY_ENRICH, json!({}), json!({"values": {"key": "country", "table": regions.to_string()}})).await;
    set_up(
        &api,
        JS_SLACK_NOTIFY,
        local,
        json!({
            "values": {"template": "{first_name} {last_name} <{email}> {phone} ({region}, {plan})"},
            "secrets": {"webhook_url": chat.url("/hook")}
        }),
    )
    .await;
    let flow = json!({
        "name": "new-contacts",
        "source": {"id": "crm", "plugin": "py-rest-pages", "max_records": 3},
        "steps": [
            {"type": "transform", "id": "normalize", "plugin": "ts-normalize-contact"},
            {"type": "transform", "id": "paying", "plugin": "filter"},
            {"type": "transform", "id": "region", "plugin": "py-enrich"}
        ],
        "sinks": [{"id": "announce", "plugin": "js-slack-notify"}]
    });
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // First run: page 1 (full, so the cursor moves on); the free plan is filtered out.
    let (status, first) = api.post("/v1/flows/new-contacts/run", ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["records_in"], 3);
    assert_eq!(
        messages(&chat),
        vec![
            "Ada Lovelace <ada@example.com> +442079460958 (EMEA, pro)",
            "Alan Turing <alan@bletchley.uk> +441908640404 (EMEA, team)",
        ]
    );
    // Each step ran its own language's plugin at the version the flow pinned.
    let versions = &first["plugin_versions"];
    for plugin in ["py-rest-pages", "ts-normalize-contact", "filter", "py-enrich", "js-slack-notify"] {
        assert_eq!(versions[plugin], "0.1.0", "{plugin} in {first}");
    }

    // Second run: page 2, from the stored cursor.
    let (_, second) = api.post("/v1/flows/new-contacts/run", ADMIN, json!({})).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(
        messages(&chat).last().map(String::as_str),
        Some("Katherine Johnson <kj@nasa.gov> +17578641000 (AMER, pro)")
    );
    let pages: Vec<String> = crm.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(pages, vec!["/contacts?page=1&per_page=3", "/contacts?page=2&per_page=3"]);

    // A restart loads every plugin from the cache: nothing is compiled again.
    api.stop().await;
    let config =
        plugboard_host_api::server::ServeConfig { cache_dir: Some(shared_compile_cache()), ..Api::config(dir.path()) };
    let api = Api::start_configured(config, ServerLimits::default()).await;
    for plugin in ["py-rest-pages", "ts-normalize-contact", "filter", "py-enrich", "js-slack-notify"] {
        let (status, health) = api.get(&format!("/v1/plugins/{plugin}/health"), ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{health}");
        assert_eq!(health["compiled"], "cached", "{plugin} was compiled again: {health}");
    }
    let (_, third) = api.post("/v1/flows/new-contacts/run", ADMIN, json!({})).await;
    assert_eq!(third["status"], "succeeded", "{third}");
    api.stop().await;
}

/// A component for another world is refused at upload, before it compiles, naming both worlds.
#[tokio::test]
async fn an_upload_for_the_wrong_world_names_the_world_it_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    // Signing refuses it, so the file is put together as a tampering publisher would: the
    // transformer's component under a manifest signed for a sink.
    let manifest = plugboard_runtime::Manifest { kind: plugboard_runtime::Kind::Sink, ..PY_ENRICH.manifest() };
    let refused = plugboard_runtime::signing::sign(&PY_ENRICH.bytes(), &manifest, test_key()).expect_err("sign");
    assert_eq!(refused.code(), plugboard_runtime::ErrorCode::WorldMismatch);
    let forged = forge_manifest(&PY_ENRICH.bytes(), &manifest);
    let (status, body) = api.upload(forged, "", ADMIN).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "world-mismatch", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the manifest says `sink` (world `plugboard:plugin/sink@0.2.0`)")
            && message.contains("implements the `transformer` world"),
        "{message}"
    );
    api.stop().await;
}

/// A big component's upload (a slow link, a queue of compiles) may take longer than the request
/// deadline that bounds every other request: uploads have their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_outlives_the_request_deadline_other_requests_keep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = ServerLimits { request_timeout: Duration::from_millis(500), ..ServerLimits::default() };
    let api = Api::start_with(dir.path(), limits).await;
    api.trust_test_key().await;
    let address = api.base.trim_start_matches("http://").to_string();
    let upload = JSON_MAPPER.signed();
    let answer = slow_request(&address, "POST /v1/plugins", "application/wasm", &upload).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let config = json!({"values": {"mapping": {"v": "$.a"}}}).to_string();
    let answer =
        slow_request(&address, "PUT /v1/plugins/json-mapper/config", "application/json", config.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    api.stop().await;
}

/// Sends `body` in two halves a second apart (twice the test server's request deadline); returns
/// the answer's head.
async fn slow_request(address: &str, request_line: &str, content_type: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(address).await.expect("connect");
    let head = format!(
        "{request_line} HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {ADMIN}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    let (first, second) = body.split_at(body.len() / 2);
    socket.write_all(first).await.expect("first half");
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A server that gave up may have closed the connection: the answer it sent still counts.
    let _ = socket.write_all(second).await;
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
}

/// The `text` of every message the chat webhook received, in order.
fn messages(chat: &TestServer) -> Vec<String> {
    chat.requests()
        .iter()
        .map(|request| {
            let body: Value = serde_json::from_slice(&request.body).expect("a JSON message");
            body["text"].as_str().expect("text").to_string()
        })
        .collect()
}

/// `component` with `manifest` embedded and signed by the test key through wasmsign2, without
/// Plugboard's `sign` and its world check.
fn forge_manifest(component: &[u8], manifest: &plugboard_runtime::Manifest) -> Vec<u8> {
    use plugboard_runtime::signing::{MANIFEST_SECTION, sections};
    let mut unsigned = component.to_vec();
    unsigned.extend(sections::custom_section(MANIFEST_SECTION, &serde_json::to_vec(manifest).expect("manifest")));
    let secret = wasmsign2::SecretKey::from_bytes(&test_key().to_bytes()).expect("same key pair encoding");
    let module = wasmsign2::Module::deserialize(&mut std::io::Cursor::new(&unsigned)).expect("wasmsign2 reads it");
    let key_id = test_key().public().key_id_bytes();
    let signed = secret.sign(module, Some(&key_id)).expect("wasmsign2 signs");
    let mut file = Vec::new();
    signed.serialize(&mut file).expect("serialise");
    file
}
