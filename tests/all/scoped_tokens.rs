//! Scoped tokens against the real server: an invoker limited to named plugins and flows invokes,
//! lists and reads only those (their executions, deliveries and dead letters), is refused what
//! spans everything (server metrics), and a publisher limited to named plugins uploads only
//! those. The token list, `whoami` and the audit log name the scope; the scope survives a restart.

use crate::support::server::{ADMIN, Api, install, reopen, signed_as};
use plugboard_host_api::store::AccessStore;
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn flow(name: &str) -> Value {
    json!({"name": name, "steps": [{"type": "transform", "id": "map", "plugin": "json-mapper"}]})
}

/// Asserts a 403 whose message names the scope.
fn out_of_scope(what: &str, (status, body): (StatusCode, Value)) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
    assert_eq!(body["code"], "forbidden", "{what}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("scoped to plugins json-mapper; flows mine"), "{what}: {message}");
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list[key].as_array().into_iter().flatten().filter_map(|item| item["name"].as_str().map(String::from)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_invoker_reaches_only_its_plugins_and_flows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    api.install_mapper().await;
    install(&api, FILTER).await;
    for name in ["mine", "theirs"] {
        let (status, body) = api.post("/v1/flows", ADMIN, flow(name)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, theirs) = api.post("/v1/flows/theirs/run", ADMIN, json!({"records": [{"a": 1}]})).await;
    assert_eq!(status, StatusCode::OK, "{theirs}");

    let scope = json!({"plugins": ["json-mapper"], "flows": ["mine"]});
    let (status, created) =
        api.post("/v1/tokens", ADMIN, json!({"name": "scoped", "role": "invoker", "scope": scope})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["scope"], scope);
    let token = created["token"].as_str().expect("token").to_string();

    let (_, me) = api.get("/v1/whoami", &token).await;
    assert_eq!(me["scope"], scope, "{me}");

    // Its plugin, not another.
    let (status, body) = api.post("/v1/plugins/json-mapper/invoke", &token, json!({"records": [{"a": 2}]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    out_of_scope("invoke filter", api.post("/v1/plugins/filter/invoke", &token, json!({"records": []})).await);
    out_of_scope("read filter", api.get("/v1/plugins/filter", &token).await);
    out_of_scope("filter's health", api.get("/v1/plugins/filter/health", &token).await);
    let (status, plugins) = api.get("/v1/plugins", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&plugins, "plugins"), ["json-mapper"], "{plugins}");
    let (_, all) = api.get("/v1/plugins", ADMIN).await;
    assert_eq!(names(&all, "plugins").len(), 2, "the admin still sees both: {all}");

    // Its flow, its executions and dead letters; not another's, not even by execution id.
    let (status, mine) = api.post("/v1/flows/mine/run", &token, json!({"records": [{"a": 3}]})).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let (status, read) = api.get(&format!("/v1/executions/{}", mine["id"]), &token).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    for path in ["/v1/flows/mine", "/v1/flows/mine/executions", "/v1/flows/mine/dlq"] {
        let (status, body) = api.get(path, &token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (_, flows) = api.get("/v1/flows", &token).await;
    assert_eq!(names(&flows, "flows"), ["mine"], "{flows}");
    out_of_scope("run theirs", api.post("/v1/flows/theirs/run", &token, json!({})).await);
    for path in [
        "/v1/flows/theirs".to_string(),
        "/v1/flows/theirs/executions".into(),
        "/v1/flows/theirs/dlq".into(),
        "/v1/flows/theirs/deliveries/1".into(),
    ] {
        out_of_scope(&path, api.get(&path, &token).await);
    }
    // By id, another flow's execution reads as missing: walking ids lists no hidden flow.
    let (status, body) = api.get(&format!("/v1/executions/{}", theirs["id"]), &token).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not-found")), "{body}");
    assert!(!body.to_string().contains("theirs"), "{body}");
    // Server-wide metrics span every plugin and flow.
    let (status, body) = api.get("/v1/metrics/history", &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // What its role never allowed stays refused.
    let (status, _) = api.post("/v1/flows", &token, flow("more")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The token list and the audit log name the scope.
    let (_, tokens) = api.get("/v1/tokens", ADMIN).await;
    let listed = tokens["tokens"].as_array().into_iter().flatten().find(|t| t["name"] == "scoped").cloned();
    assert_eq!(listed.map(|t| t["scope"].clone()), Some(scope.clone()), "{tokens}");
    let (_, audit) = api.get("/v1/audit?action=token-create&target=scoped", ADMIN).await;
    let detail = audit["entries"][0]["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains("scoped to plugins json-mapper; flows mine"), "{audit}");

    // Stored so that a Plugboard from before scopes, which would read it as unscoped, matches
    // nothing with it (a hash it takes for a legacy one that is no hex): it fails closed there.
    api.stop().await;
    let store = reopen(&dir.path().join("db")).await;
    let records = store.tokens().expect("tokens");
    let stored = records.iter().find(|record| record.name == "scoped").map(|record| record.hash.clone());
    assert!(stored.as_deref().is_some_and(|hash| hash.starts_with("scoped:hmac-sha256:")), "{stored:?}");
    drop(store);

    // A restart keeps the scope.
    let api = Api::start(dir.path()).await;
    out_of_scope("invoke filter after a restart", api.post("/v1/plugins/filter/invoke", &token, json!({})).await);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_publisher_uploads_only_its_plugins_and_scopes_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let scope = json!({"plugins": ["json-mapper"]});
    let (status, created) =
        api.post("/v1/tokens", ADMIN, json!({"name": "mapper-ci", "role": "publisher", "scope": scope})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let publisher = created["token"].as_str().expect("token").to_string();

    let (status, body) = api.upload(JSON_MAPPER.signed(), "", &publisher).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api.upload(signed_as(JSON_MAPPER, "9.0.0"), "", &publisher).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api.upload(FILTER.signed(), "", &publisher).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("upload plugins (filter)"), "{body}");
    let (status, _) = api.get("/v1/plugins/filter", ADMIN).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing of the refused upload is stored");
    // A tampered file is refused for its signature, as any upload, before its name counts.
    let mut tampered = FILTER.signed();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    let (status, body) = api.upload(tampered, "", &publisher).await;
    assert_eq!(body["code"], "signature", "{status} {body}");

    // What a scope cannot be.
    for (role, scope, why) in [
        ("admin", json!({"plugins": ["json-mapper"]}), "an admin token cannot be scoped"),
        ("invoker", json!({"plugins": [], "flows": []}), "at least one plugin or flow"),
        ("publisher", json!({"flows": ["mine"]}), "the plugins it may upload"),
        ("invoker", json!({"plugins": [""]}), "is not a plugin or flow name"),
    ] {
        let (status, body) = api.post("/v1/tokens", ADMIN, json!({"name": "bad", "role": role, "scope": scope})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{role} {scope}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(why), "{body}");
    }
    let (status, body) =
        api.post("/v1/tokens", ADMIN, json!({"name": "bad", "role": "invoker", "scope": {"plugin": ["x"]}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a misspelt scope key is refused: {body}");
    api.stop().await;
}
