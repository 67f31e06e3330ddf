//! The HTTP control plane end to end: a real server on 127.0.0.1:0 over a temporary data
//! directory, a real HTTP client, real signed plugins.

use crate::support::common::TestServer;
use crate::support::server::*;
use plugboard_host_api::api::ServerLimits;
use plugboard_tests::*;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_activate_invoke_every_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;

    // Transformer: uploaded inactive, then activated.
    let (status, body) = api.upload(JSON_MAPPER.signed(), "", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "inactive");
    assert_eq!(body["key_id"], test_key().public().key_id());
    let (status, _) = api.post("/v1/plugins/json-mapper/invoke", ADMIN, json!({"records": [{}]})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "inactive plugins are not invocable");
    let (status, body) = api.post("/v1/plugins/json-mapper/versions/0.1.0/activate", ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        api.put("/v1/plugins/json-mapper/config", json!({"values": {"mapping": {"id": "$.orderId"}}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        api.post("/v1/plugins/json-mapper/invoke", ADMIN, json!({"records": [{"orderId": "A1"}, {"x": 1}]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records"], json!([{"id": "A1"}, {"id": null}]));
    assert!(body["usage"]["fuel"].as_u64().expect("fuel") > 0);
    assert!(body["usage"]["peak_memory_bytes"].as_u64().expect("memory") > 0);

    // Source and sink against a real local HTTP server.
    let outside = TestServer::start(|request| match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/orders") => (200, json!([{"id": 1}, {"id": 2}]).to_string()),
        ("POST", "/in") => (200, "{}".into()),
        _ => (404, "{}".into()),
    })
    .await;
    for (plugin, path) in [(HTTP_SOURCE, "/orders"), (HTTP_SINK, "/in")] {
        install(&api, plugin).await;
        let (status, body) =
            api.put(&format!("/v1/plugins/{}/grants", plugin.name), json!({"outbound_hosts": ["127.0.0.1"]})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let config = json!({"values": {"url": outside.url(path)}, "secrets": {"auth_header": "Bearer hush"}});
        let (status, body) = api.put(&format!("/v1/plugins/{}/config", plugin.name), config).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["secrets"], json!(["auth_header"]), "secret values are never answered");
    }
    let (status, body) = api.post("/v1/plugins/http-source/invoke", ADMIN, json!({"max_records": 10})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records"], json!([{"id": 1}, {"id": 2}]));
    let (status, body) = api.post("/v1/plugins/http-sink/invoke", ADMIN, json!({"records": [{"a": 1}]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["report"], json!({"accepted": 1, "failed": 0}));
    assert!(
        outside.requests().iter().all(|r| r.headers.get("authorization").map(String::as_str) == Some("Bearer hush"))
    );

    // Reads never echo secrets; the audit log names who did what, with the signer.
    let (_, detail) = api.get("/v1/plugins/http-sink", ADMIN).await;
    assert_eq!(detail["grants"]["secrets"], json!(["auth_header"]));
    assert!(!detail.to_string().contains("hush"));
    let (_, audit) = api.get("/v1/audit", ADMIN).await;
    let actions: Vec<&str> =
        audit["entries"].as_array().expect("entries").iter().map(|e| e["action"].as_str().unwrap_or("")).collect();
    for action in ["key-add", "upload", "activate", "grants", "config"] {
        assert!(actions.contains(&action), "audit lacks {action}: {actions:?}");
    }
    assert!(!audit.to_string().contains("hush"), "secrets never reach the audit log");
    let upload =
        audit["entries"].as_array().expect("entries").iter().find(|e| e["action"] == "upload").expect("upload entry");
    assert_eq!(upload["key_id"], test_key().public().key_id());

    let (status, metrics) = api.call(reqwest::Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().expect("text").to_string();
    assert!(metrics.contains("plugboard_invocations_total{plugin=\"json-mapper\"} 1"), "{metrics}");
    assert!(
        metrics.contains("plugboard_invocation_errors_total{code=\"not-found\"")
            || !metrics.contains("code=\"internal\"")
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_typed_errors_and_the_server_stays_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start_with(dir.path(), ServerLimits { max_upload_bytes: 4 << 20, ..ServerLimits::default() }).await;
    let code = |body: &Value| body["code"].as_str().unwrap_or_default().to_string();

    // 401: no token, or a wrong one.
    let (status, body) = api.call(reqwest::Method::GET, "/v1/plugins", None, None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized".into()));
    let (status, _) = api.get("/v1/plugins", "not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // 422 for every refused upload, with the signature reason.
    let (status, body) = api.upload(FILTER.signed(), "", ADMIN).await;
    assert_eq!(
        (status, code(&body), body["reason"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, "signature".into(), json!("unknown-key"))
    );
    api.trust_test_key().await;
    let mut tampered = FILTER.signed();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    let (status, body) = api.upload(tampered, "", ADMIN).await;
    assert_eq!((status, body["reason"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("digest-mismatch")));
    let (status, body) = api.upload(FILTER.bytes(), "", ADMIN).await;
    assert_eq!((status, body["reason"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("unsigned")));
    let (status, body) = api.upload(b"\0asm\x01\0\0\0".to_vec(), "", ADMIN).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = api.upload(Vec::new(), "", ADMIN).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid-request".into()));
    // 413: larger than the upload limit.
    // (On its own connection: the server answers before reading the whole body, then closes it.)
    let oversized = Client::new().post(api.url("/v1/plugins")).bearer_auth(ADMIN).body(vec![0u8; 5 << 20]).send().await;
    assert_eq!(oversized.expect("answered").status(), StatusCode::PAYLOAD_TOO_LARGE);

    // 409: rollback, a changed file under an existing version, deleting the active version.
    let (status, _) = api.upload(signed_as(FILTER, "0.2.0"), "?activate=true", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = api.upload(signed_as(FILTER, "0.1.0"), "", ADMIN).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "rollback".into()));
    let (status, body) = api.upload(signed_as(FILTER, "0.1.0"), "?allow_rollback=true", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, audit) = api.get("/v1/audit", ADMIN).await;
    assert!(audit["entries"].as_array().expect("entries").iter().any(|e| e["action"] == "rollback-override"));
    let mut other = plugboard_runtime::Manifest { version: semver::Version::new(0, 2, 0), ..FILTER.manifest() };
    other.description = "different content".into();
    let changed = plugboard_runtime::signing::sign(&FILTER.bytes(), &other, test_key()).expect("sign");
    let (status, body) = api.upload(changed, "", ADMIN).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "conflict".into()));
    let (status, body) =
        api.call(reqwest::Method::DELETE, "/v1/plugins/filter/versions/0.2.0", Some(ADMIN), None).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "conflict".into()));

    // 404 and 400.
    let (status, body) = api.post("/v1/plugins/nope/invoke", ADMIN, json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not-found".into()));
    let response = api
        .client
        .post(api.url("/v1/plugins/filter/invoke"))
        .bearer_auth(ADMIN)
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (status, _) = api.post("/v1/plugins/filter/versions/not-semver/activate", ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // 422 for guest failures, 504 for a deadline, each with usage and logs.
    install_hostile(&api, "panic", json!({})).await;
    let (status, body) = api.post("/v1/plugins/hostile/invoke", ADMIN, json!({"records": [1]})).await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "guest-trap".into()));
    assert!(body["logs"].to_string().contains("panics on purpose"));
    let (grants, config) = hostile_grant("loop", json!({"fuel": 5_000_000}));
    api.put("/v1/plugins/hostile/grants", grants).await;
    api.put("/v1/plugins/hostile/config", config).await;
    let (status, body) = api.post("/v1/plugins/hostile/invoke", ADMIN, json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "out-of-fuel".into()));
    assert_eq!(body["usage"]["fuel"], 5_000_000);
    let (grants, _) = hostile_grant("loop", json!({"timeout_ms": 200}));
    api.put("/v1/plugins/hostile/grants", grants).await;
    let (status, body) = api.post("/v1/plugins/hostile/invoke", ADMIN, json!({})).await;
    // Fuel may end the loop first on a fast machine; either way the budget stops it.
    assert!(
        (status, code(&body)) == (StatusCode::GATEWAY_TIMEOUT, "timeout".into())
            || (status, code(&body)) == (StatusCode::UNPROCESSABLE_ENTITY, "out-of-fuel".into()),
        "{status} {body}"
    );

    // Still up and serving.
    let (status, body) = api.post("/v1/plugins/filter/invoke", ADMIN, json!({"records": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "filter without config is invalid-config: {body}");
    let (status, _) = api.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturation_and_slow_requests_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = ServerLimits {
        max_in_flight: 1,
        request_timeout: std::time::Duration::from_millis(2000),
        ..ServerLimits::default()
    };
    let api = Api::start_with(dir.path(), limits).await;
    api.trust_test_key().await;
    install_hostile(&api, "loop", json!({"timeout_ms": 5000, "fuel": 100_000_000_000u64})).await;
    let slow = {
        let client = api.client.clone();
        let url = api.url("/v1/plugins/hostile/invoke");
        tokio::spawn(
            async move { client.post(url).bearer_auth(ADMIN).json(&json!({})).send().await.map(|r| r.status()) },
        )
    };
    // While the slow request holds the only slot, other authenticated requests are refused with
    // 429 (unauthenticated ones draw on a budget of their own).
    let mut refused = None;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let (status, body) = api.get("/v1/plugins", ADMIN).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(body);
            break;
        }
    }
    assert_eq!(refused.map(|body| body["code"].clone()), Some(json!("overloaded")));
    // The slow request hits the request deadline (408) before the plugin's own.
    assert_eq!(slow.await.expect("task").expect("response"), StatusCode::REQUEST_TIMEOUT);
    let mut released = false;
    for _ in 0..60 {
        let (status, _) = api.get("/v1/plugins", ADMIN).await;
        if status == StatusCode::OK {
            released = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(released, "capacity is released");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_limit_what_tokens_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let publisher = api.token("ci", "publisher").await;
    let invoker = api.token("app", "invoker").await;

    let (status, body) = api.upload(JSON_MAPPER.signed(), "", &publisher).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api.upload(FILTER.signed(), "?activate=true", &publisher).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::FORBIDDEN, json!("forbidden")));
    let (status, _) = api.post("/v1/plugins/json-mapper/versions/0.1.0/activate", &publisher, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.post("/v1/plugins/json-mapper/invoke", &publisher, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = api.post("/v1/plugins/json-mapper/versions/0.1.0/activate", ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api.upload(FILTER.signed(), "", &invoker).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.get("/v1/plugins", &invoker).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api.post("/v1/plugins/json-mapper/invoke", &invoker, json!({"records": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "allowed, and the unconfigured plugin answers invalid-config");
    for (method, path) in [
        (reqwest::Method::GET, "/v1/keys"),
        (reqwest::Method::GET, "/v1/audit"),
        (reqwest::Method::POST, "/v1/plugins/json-mapper/deactivate"),
    ] {
        let (status, _) = api.call(method, path, Some(&invoker), Some(json!({}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _) = api.post("/v1/tokens", &publisher, json!({"name": "x", "role": "admin"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no privilege escalation");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_everything_and_recompiles_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    api.install_mapper().await;
    install_hostile(&api, "kv-count", json!({})).await;
    api.put("/v1/plugins/hostile/grants", json!({"key_value": ["counters"]})).await;
    let (_, body) = api.post("/v1/plugins/hostile/invoke", ADMIN, json!({})).await;
    assert_eq!(body["records"], json!([1]));
    let (_, before) = api.get("/v1/plugins", ADMIN).await;
    api.stop().await;

    let api = Api::start(dir.path()).await;
    let (_, after) = api.get("/v1/plugins", ADMIN).await;
    assert_eq!(before, after);
    let (status, body) = api.post("/v1/plugins/json-mapper/invoke", ADMIN, json!({"records": [{"a": 9}]})).await;
    assert_eq!((status, body["records"].clone()), (StatusCode::OK, json!([{"v": 9}])));
    let (_, health) = api.get("/v1/plugins/json-mapper/health", ADMIN).await;
    assert_eq!(health["status"], "ready");
    assert_eq!(health["compiled"], "cached", "loaded from the cached artifact, not recompiled");
    let (_, body) = api.post("/v1/plugins/hostile/invoke", ADMIN, json!({})).await;
    assert_eq!(body["records"], json!([2]), "key-value data survived the restart");
    let (status, _) = api.upload(JSON_MAPPER.signed(), "", ADMIN).await;
    assert_eq!(status, StatusCode::OK, "re-uploading the same file is idempotent");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_and_deletes_end_consistent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let files: Vec<Vec<u8>> = (0..6).map(|n| signed_as(FILTER, &format!("1.0.{n}"))).collect();
    let mut tasks = Vec::new();
    for (n, file) in files.into_iter().enumerate() {
        let client = api.client.clone();
        let upload = api.url("/v1/plugins");
        let delete = api.url(&format!("/v1/plugins/filter/versions/1.0.{}", n.saturating_sub(1)));
        tasks.push(tokio::spawn(async move {
            let up = client.post(upload).bearer_auth(ADMIN).body(file).send().await.expect("upload").status();
            let down = client.delete(delete).bearer_auth(ADMIN).send().await.expect("delete").status();
            (up, down)
        }));
    }
    for task in tasks {
        let (up, down) = task.await.expect("task");
        assert!(up == StatusCode::CREATED || up == StatusCode::CONFLICT, "{up}");
        assert!(down == StatusCode::NO_CONTENT || down == StatusCode::NOT_FOUND, "{down}");
    }
    let (_, listed) = api.get("/v1/plugins/filter", ADMIN).await;
    let listed: Vec<String> = listed["versions"]
        .as_array()
        .map(|v| v.iter().map(|r| r["digest"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default();
    api.stop().await;

    // Every stored blob belongs to a listed version, and every version has its blob.
    let store = reopen(&dir.path().join("db")).await;
    use plugboard_host_api::store::PluginStore;
    let mut blobs = store.blob_digests().expect("blobs");
    let mut versions: Vec<String> = store.all_versions().expect("versions").into_iter().map(|v| v.digest).collect();
    blobs.sort();
    versions.sort();
    let mut listed = listed;
    listed.sort();
    assert_eq!(blobs, versions, "no orphaned blobs, no dangling versions");
    assert_eq!(versions, listed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_does_not_stall_other_invocations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    api.install_mapper().await;
    install_hostile(&api, "loop", json!({"timeout_ms": 2000, "fuel": 100_000_000_000u64})).await;
    let loops: Vec<_> = (0..3)
        .map(|_| {
            let client = api.client.clone();
            let url = api.url("/v1/plugins/hostile/invoke");
            tokio::spawn(async move {
                let response = client.post(url).bearer_auth(ADMIN).json(&json!({})).send().await.expect("response");
                (response.status(), response.text().await.unwrap_or_default())
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for a in 0..10 {
        let (status, body) = api.post("/v1/plugins/json-mapper/invoke", ADMIN, json!({"records": [{"a": a}]})).await;
        assert_eq!((status, body["records"].clone()), (StatusCode::OK, json!([{"v": a}])));
    }
    assert!(loops.iter().any(|l| !l.is_finished()), "the good calls finished while the loops still ran");
    for task in loops {
        let (status, body) = task.await.expect("task");
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_unloads_what_it_signed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    install(&api, FILTER).await;
    let key_id = test_key().public().key_id();
    let (status, body) = api.post(&format!("/v1/keys/{key_id}/revoke"), ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["revoked_at"].is_u64());
    let (status, body) = api.post("/v1/plugins/filter/invoke", ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("revoked"), "{body}");
    let (status, body) = api.upload(FILTER.signed(), "?activate=true", ADMIN).await;
    assert_eq!((status, body["reason"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("revoked-key")), "{body}");
    let (_, health) = api.get("/v1/plugins/filter/health", ADMIN).await;
    assert_eq!(health["status"], "failed");
    let (status, body) = api.upload(signed_as(FILTER, "0.3.0"), "", ADMIN).await;
    assert_eq!((status, body["reason"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("revoked-key")));
    // A new key may not take over the name the revoked key published under.
    let other = plugboard_runtime::signing::SecretKey::generate().expect("key");
    let public: String = other.public().to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    api.post("/v1/keys", ADMIN, json!({"name": "other", "public_key": public})).await;
    let manifest = plugboard_runtime::Manifest { version: semver::Version::new(0, 4, 0), ..FILTER.manifest() };
    let squat = plugboard_runtime::signing::sign(&FILTER.bytes(), &manifest, &other).expect("sign");
    let (status, body) = api.upload(squat, "", ADMIN).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::CONFLICT, json!("conflict")), "{body}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_commands_drive_a_server() {
    use plugboard_api_types::ApiErrorCode;
    use plugboard_host_api::client::{ApiClient, ClientError};
    use plugboard_host_api::render;
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let client = ApiClient::new(&api.base, ADMIN);
    let public = dir.path().join("tests.pub");
    std::fs::write(&public, test_key().public().to_bytes()).expect("write key");
    let added = client.keys_add(&public, "tests").await.expect("keys add");
    assert_eq!(added.key_id, test_key().public().key_id());
    assert!(render::render_keys(&client.keys_list().await.expect("keys ls")).contains("tests"));

    let file = dir.path().join("mapper.wasm");
    std::fs::write(&file, JSON_MAPPER.signed()).expect("write plugin");
    let pushed = client.push(&file, false).await.expect("push");
    assert_eq!(pushed.status, plugboard_api_types::plugins::InstallStatus::Inactive);
    client.activate("json-mapper", "0.1.0", false).await.expect("activate");
    let listing = render::render_plugins(&client.list().await.expect("ls"));
    assert_eq!(listing.lines().nth(1), Some("json-mapper  transformer  0.1.0   0.1.0"), "{listing}");
    match client.invoke("json-mapper", vec![json!({})], None, None).await {
        Err(ClientError::Api { status: 422, code, .. }) => assert_eq!(code, Some(ApiErrorCode::GuestError)),
        other => panic!("an unconfigured mapper is invalid-config: {other:?}"),
    }
    let audit = render::render_audit(&client.audit().await.expect("audit"));
    assert!(audit.contains("upload") && audit.contains("activate") && audit.contains("key-add"), "{audit}");
    match ApiClient::new(&api.base, "wrong").list().await {
        Err(ClientError::Api { status: 401, code, .. }) => assert_eq!(code, Some(ApiErrorCode::Unauthorized)),
        other => panic!("expected 401, got {other:?}"),
    }
    let revoked = client.keys_revoke(&test_key().public().key_id()).await.expect("revoke");
    assert!(revoked.revoked_at.is_some());
    api.stop().await;
    match client.list().await {
        Err(ClientError::Transport(_)) => {}
        other => panic!("a stopped server is a transport error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_covers_every_route_and_every_route_answers() {
    use plugboard_host_api::api::routes::ROUTES;
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let (status, doc) = api.call(reqwest::Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(ROUTES.len(), 44);
    for route in ROUTES {
        let operation = &doc["paths"][route.path][route.method];
        assert_eq!(operation["summary"], route.summary, "{} {}", route.method, route.path);
        assert_eq!(operation["x-plugboard-role"], route.role());
        // Every documented route is served: never a bare 404 or a 405 from the router.
        let path = route.path.replace("{name}", "nope").replace("{version}", "1.0.0").replace("{id}", "1");
        let method = reqwest::Method::from_bytes(route.method.to_uppercase().as_bytes()).expect("method");
        let response = api.client.request(method, api.url(&path)).bearer_auth(ADMIN).send().await.expect("send");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{} {path}", route.method);
        assert!(!(status == StatusCode::NOT_FOUND && body.is_empty()), "{} {path} is not routed", route.method);
    }
    let executions = &doc["paths"]["/v1/flows/{name}/executions"]["get"]["parameters"];
    let names: Vec<&str> =
        executions.as_array().expect("parameters").iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["name", "limit", "cursor", "order"], "paged lists document their paging");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_cannot_run_more_compilations_than_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        plugboard_host_api::server::start(&Api::config(dir.path()), ServerLimits::default()).await.expect("start");
    let plugins = server.state.services.plugins.clone();
    let key = plugboard_runtime::signing::PublicKey::from_bytes(&test_key().public().to_bytes()).expect("key");
    server.state.services.access.add_key("tests", key, "test").await.expect("trust");
    // Each upload is abandoned a moment after it starts, as a request past its deadline is: its
    // compilation cannot be cancelled, so it must keep its place in the bound until it ends.
    for plugin in [FILTER, JSON_MAPPER, HTTP_SINK, HTTP_SOURCE, SCHEMA_VALIDATOR, REDACT, AGGREGATE, CSV_TO_JSON] {
        let install = plugins.install(plugin.signed(), false, false, "test");
        let _ = tokio::time::timeout(std::time::Duration::from_millis(30), install).await;
    }
    let (mut running, _) = plugins.compilations();
    for _ in 0..600 {
        if running == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        running = plugins.compilations().0;
    }
    let (running, peak) = plugins.compilations();
    assert_eq!(running, 0, "every compilation ended");
    assert!((1..=2).contains(&peak), "at most two compilations ran at once, saw {peak}");
}
