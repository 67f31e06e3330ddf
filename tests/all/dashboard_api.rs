//! The API the dashboard stands on, over real HTTP: who the token is, audit filters and newest-first
//! pages, flows written in YAML with errors at their line, usage by error code and latency, the
//! sampled metrics history (flow steps counted like direct invocations), and the dashboard's files
//! with their security headers.

use crate::support::server::*;
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_names_the_token_its_role_and_its_scope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let (status, me) = api.get("/v1/whoami", ADMIN).await;
    assert_eq!((status, me["role"].as_str()), (StatusCode::OK, Some("admin")), "{me}");
    let invoker = api.token("viewer", "invoker").await;
    let (_, me) = api.get("/v1/whoami", &invoker).await;
    assert_eq!(me, json!({"name": "viewer", "role": "invoker", "scope": null}), "an unscoped token");
    let (status, body) = api.get("/v1/whoami", "not-a-token").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_filters_by_actor_action_target_and_time_and_pages_newest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    api.install_mapper().await;
    for name in ["alpha", "beta", "gamma"] {
        api.token(name, "invoker").await;
    }
    let entries = |body: &Value| -> Vec<(String, String, String)> {
        body["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                let field = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (field("actor"), field("action"), field("target"))
            })
            .collect()
    };
    let (status, all) = api.get("/v1/audit", ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let total = entries(&all).len();
    assert!(total >= 6, "{all}");

    let (_, tokens) = api.get("/v1/audit?action=token-create", ADMIN).await;
    let targets: Vec<String> = entries(&tokens).into_iter().map(|(_, _, t)| t).collect();
    assert_eq!(targets, ["alpha", "beta", "gamma"]);
    let (_, newest) = api.get("/v1/audit?action=token-create&order=desc&limit=2", ADMIN).await;
    let page: Vec<String> = entries(&newest).into_iter().map(|(_, _, t)| t).collect();
    assert_eq!(page, ["gamma", "beta"]);
    let cursor = newest["next_cursor"].as_u64().expect("a next page");
    let (_, rest) = api.get(&format!("/v1/audit?action=token-create&order=desc&limit=2&cursor={cursor}"), ADMIN).await;
    let page: Vec<String> = entries(&rest).into_iter().map(|(_, _, t)| t).collect();
    assert_eq!((page, &rest["next_cursor"]), (vec!["alpha".to_string()], &Value::Null));

    let (_, by_target) = api.get("/v1/audit?target=json-map", ADMIN).await;
    assert!(!entries(&by_target).is_empty() && entries(&by_target).iter().all(|(_, _, t)| t.contains("json-map")));
    let (_, by_actor) = api.get("/v1/audit?actor=nobody", ADMIN).await;
    assert!(entries(&by_actor).is_empty(), "{by_actor}");
    let (_, future) = api.get("/v1/audit?since=99999999999", ADMIN).await;
    assert!(entries(&future).is_empty(), "{future}");
    let (_, past) = api.get("/v1/audit?until=99999999999", ADMIN).await;
    assert_eq!(entries(&past).len(), total);

    // Every query string that does not parse is the API's JSON `invalid-request`, not axum's text.
    for path in [
        "/v1/audit?action=no-such-action",
        "/v1/audit?bogus=1",
        "/v1/audit?order=sideways",
        "/v1/audit?since=abc",
        "/v1/flows/any/executions?limit=-1",
        "/v1/flows/any/dlq?cursor=x",
        "/v1/plugins?activate=maybe",
    ] {
        let (status, body) = if path.starts_with("/v1/plugins") {
            api.call(reqwest::Method::POST, path, Some(ADMIN), None).await
        } else {
            api.get(path, ADMIN).await
        };
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid-request")),
            "{path}: {body}"
        );
    }
    let invoker = api.token("reader", "invoker").await;
    let (status, _) = api.get("/v1/audit?action=upload", &invoker).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn send_flow(api: &Api, method: reqwest::Method, path: &str, media: &str, text: &str) -> (StatusCode, Value) {
    api.send_raw(method, path, ADMIN, media, text).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_are_written_in_yaml_or_json_and_syntax_errors_point_at_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    api.install_mapper().await;

    let broken = "name: mapped\nsteps:\n  - type: transform\n    id: [map\n";
    let (status, body) = send_flow(&api, reqwest::Method::POST, "/v1/flows", "application/yaml", broken).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("flow-invalid")), "{body}");
    assert!(body["line"].as_u64().is_some_and(|line| line >= 4), "{body}");
    assert!(body["column"].as_u64().is_some(), "{body}");

    let broken_json = "{\n  \"name\": \"mapped\",\n  \"steps\": [,]\n}";
    let (status, body) = send_flow(&api, reqwest::Method::POST, "/v1/flows", "application/json", broken_json).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((body["line"].as_u64(), body["code"].as_str()), (Some(3), Some("flow-invalid")), "{body}");

    // A well-formed flow naming a plugin that is not installed: refused, with no position.
    let unknown = "name: mapped\nsteps:\n  - type: transform\n    id: map\n    plugin: nowhere\n";
    let (status, body) = send_flow(&api, reqwest::Method::POST, "/v1/flows", "application/yaml", unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("nowhere") && body.get("line").is_none(), "{body}");

    let good = "name: mapped\nsteps:\n  - type: transform\n    id: map\n    plugin: json-mapper\n";
    let (status, body) =
        send_flow(&api, reqwest::Method::POST, "/v1/flows", "application/yaml; charset=utf-8", good).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let renamed = good.replace("id: map", "id: mapper");
    let (status, body) = send_flow(&api, reqwest::Method::PUT, "/v1/flows/mapped", "text/yaml", &renamed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, stored) = api.get("/v1/flows/mapped", ADMIN).await;
    assert_eq!(stored["steps"][0]["id"], "mapper", "{stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_flow_steps_by_error_code_and_the_history_samples_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    api.install_mapper().await;
    install(&api, SCHEMA_VALIDATOR).await;
    let (status, _) = api
        .put("/v1/plugins/schema-validator/config", json!({"values": {"schema": {"type": "object", "required": ["v"], "properties": {"v": {"type": "number"}}}}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let flow = json!({"name": "checked", "steps": [
        {"type": "transform", "id": "map", "plugin": "json-mapper"},
        {"type": "validate", "id": "check", "plugin": "schema-validator"}]});
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Two runs, each one step of each plugin; the validator rejects a record of the second.
    for records in [json!([{"a": 1}]), json!([{"a": 1}, {"b": 2}])] {
        let (status, body) = api.post("/v1/flows/checked/run", ADMIN, json!({"records": records})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = api.post("/v1/plugins/json-mapper/invoke", ADMIN, json!({"records": [{"a": 1}]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (_, mapper) = api.get("/v1/plugins/json-mapper", ADMIN).await;
    assert_eq!(mapper["usage"]["invocations"], 3, "{mapper}");
    let latency = &mapper["usage"]["latency_ms"];
    assert!(
        latency["p50"].as_f64().is_some_and(|p| p > 0.0) && latency["p99"].as_f64() >= latency["p50"].as_f64(),
        "{mapper}"
    );
    let (_, validator) = api.get("/v1/plugins/schema-validator", ADMIN).await;
    assert_eq!(validator["usage"]["invocations"], 2, "{validator}");
    assert_eq!(validator["usage"]["errors"], 1, "{validator}");
    assert_eq!(validator["usage"]["errors_by_code"], json!({"guest-error": 1}), "{validator}");

    // The history: a sample every interval; within two intervals one holds the five invocations
    // and the dead letter now stored.
    let started = Instant::now();
    let samples = loop {
        let (status, history) = api.get("/v1/metrics/history", ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{history}");
        let samples = history["samples"].as_array().cloned().unwrap_or_default();
        let invocations: u64 = samples.iter().filter_map(|s| s["invocations"].as_u64()).sum();
        if invocations >= 5 {
            break samples;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no sample counted the invocations: {history}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let errors: u64 = samples.iter().filter_map(|s| s["errors"]["guest-error"].as_u64()).sum();
    assert_eq!(errors, 1, "{samples:?}");
    let last = samples.last().expect("a sample");
    assert_eq!(last["dead_letters"], 1, "{last}");
    assert!(samples.iter().any(|s| s["latency_p99_ms"].as_f64().is_some()), "{samples:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_from_the_binary_with_strict_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let root = client.get(api.url("/")).send().await.expect("GET /");
    assert_eq!((root.status().as_u16(), root.headers()["location"].to_str().ok()), (303, Some("/ui/")));
    for (path, media) in
        [("/ui", "text/html"), ("/ui/", "text/html"), ("/ui/js/app.js", "text/javascript"), ("/ui/app.css", "text/css")]
    {
        let answer = client.get(api.url(path)).send().await.expect("GET");
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        let headers = answer.headers().clone();
        assert!(headers["content-type"].to_str().unwrap_or_default().starts_with(media), "{path}: {headers:?}");
        let csp = headers["content-security-policy"].to_str().unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        // Revalidated by its ETag.
        let etag = headers["etag"].clone();
        let again = client.get(api.url(path)).header("if-none-match", etag).send().await.expect("GET");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    for missing in ["/ui/nope.js", "/ui/../Cargo.toml", "/ui/%2e%2e/Cargo.toml", "/ui/js/../../../Cargo.toml"] {
        let answer = client.get(api.url(missing)).send().await.expect("GET");
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{missing}");
    }
    // The API's answers carry the same headers, and the files need no token.
    let (status, _) = api.get("/healthz", "").await;
    assert_eq!(status, StatusCode::OK);
    let answer = client.get(api.url("/v1/plugins")).send().await.expect("GET");
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers()["x-frame-options"], "DENY");
}
