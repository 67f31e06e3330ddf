//! Tokens and the audit log: every administrative action leaves an entry written with it, tokens
//! can be listed and revoked, and a token's name names one token.

use crate::support::common::audit_actions;
use crate::support::flows::{SECRET, deliver, now};
use crate::support::server::{ADMIN, Api};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn has(actions: &[(String, String)], action: &str, target: &str) -> bool {
    actions.iter().any(|(a, t)| a == action && t == target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_unique_listed_and_revocable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let reader = api.token("reader", "invoker").await;
    let (status, body) = api.post("/v1/tokens", ADMIN, json!({"name": "reader", "role": "admin"})).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::CONFLICT, json!("conflict")), "a second `reader`: {body}");

    let (status, listed) = api.get("/v1/tokens", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed["tokens"],
        json!([{"name": "admin", "role": "admin", "scope": null}, {"name": "reader", "role": "invoker", "scope": null}])
    );
    assert!(!listed.to_string().contains(&reader), "no token value is ever answered again");
    assert_eq!(api.get("/v1/tokens", &reader).await.0, StatusCode::FORBIDDEN);

    assert_eq!(api.get("/v1/plugins", &reader).await.0, StatusCode::OK);
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/tokens/reader", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(api.get("/v1/plugins", &reader).await.0, StatusCode::UNAUTHORIZED, "revoked at once");
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/tokens/reader", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/tokens/admin", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "the admin token is replaced at start-up, not revoked");

    let actions = audit_actions(&api).await;
    assert!(has(&actions, "token-create", "reader") && has(&actions, "token-revoke", "reader"), "{actions:?}");
    api.stop().await;

    // The revocation is durable, and replacing the admin token at start-up is audited.
    let mut config = Api::config(dir.path());
    config.admin_token = Some("another-admin-token-3e7a1c5f9b2d4e6a8c0f1b3d5e7a9c4f".into());
    let api = Api::start_configured(config, plugboard_host_api::api::ServerLimits::default()).await;
    assert_eq!(api.get("/v1/plugins", &reader).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.get("/v1/plugins", ADMIN).await.0, StatusCode::UNAUTHORIZED, "the old admin token is gone");
    let (_, audit) = api.get("/v1/audit?limit=1000", "another-admin-token-3e7a1c5f9b2d4e6a8c0f1b3d5e7a9c4f").await;
    let replaced =
        audit["entries"].as_array().map(|e| e.iter().filter(|e| e["action"] == "admin-token-replace").count());
    assert_eq!(replaced, Some(2), "first start and this one: {audit}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_and_dead_letter_actions_are_audited_with_their_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let down = crate::support::common::TestServer::start(|_| (503, "{}".into())).await;
    crate::support::flows::webhook_flow(&api, &down.url("/in")).await;
    let records: Vec<Value> = (0..3).map(|n| json!({"n": n})).collect();
    let (status, execution) = api.post("/v1/flows/hooked/run", ADMIN, json!({"records": records})).await;
    assert_eq!(status, StatusCode::OK, "{execution}");
    let (_, page) = api.get("/v1/flows/hooked/dlq", ADMIN).await;
    let ids: Vec<u64> =
        page["dead_letters"].as_array().expect("letters").iter().filter_map(|l| l["id"].as_u64()).collect();
    assert_eq!(ids.len(), 3);

    let (status, _) =
        api.call(reqwest::Method::DELETE, &format!("/v1/flows/hooked/dlq/{}", ids[0]), Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, replay) = api.post("/v1/flows/hooked/dlq/replay", ADMIN, json!({"ids": [ids[1]]})).await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    // A replay that cannot run (its step no longer exists) keeps its letter and is audited too.
    let renamed = json!({"name": "hooked", "triggers": [{"type": "webhook", "tolerance_secs": 60}], "sinks": [{"id": "renamed", "plugin": "hook-sink"}]});
    assert_eq!(api.call(reqwest::Method::PUT, "/v1/flows/hooked", Some(ADMIN), Some(renamed)).await.0, StatusCode::OK);
    let (status, failed) = api.post("/v1/flows/hooked/dlq/replay", ADMIN, json!({"ids": [ids[2]]})).await;
    assert_ne!(status, StatusCode::OK, "{failed}");
    let (_, page) = api.get("/v1/flows/hooked/dlq", ADMIN).await;
    let left: Vec<u64> =
        page["dead_letters"].as_array().expect("letters").iter().filter_map(|l| l["id"].as_u64()).collect();
    assert!(left.contains(&ids[2]), "the letter of a failed replay stays: {left:?}");
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/flows/hooked", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = deliver(&api, "hooked", SECRET, now(), &json!({"records": []})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, audit) = api.get("/v1/audit?limit=1000", ADMIN).await;
    let entries = audit["entries"].as_array().expect("entries");
    let find = |action: &str| entries.iter().find(|e| e["action"] == action && e["target"] == "hooked").cloned();
    let replays: Vec<String> = entries
        .iter()
        .filter(|e| e["action"] == "dlq-replay")
        .map(|e| e["detail"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(replays.len(), 2, "{replays:?}");
    assert!(replays[0].contains(&ids[1].to_string()) && !replays[0].contains("failed"), "{replays:?}");
    assert!(replays[1].contains(&ids[2].to_string()) && replays[1].contains("failed"), "{replays:?}");
    assert!(find("dlq-delete").is_some(), "{audit}");
    assert!(find("flow-delete").is_some(), "{audit}");
    assert!(find("flow-create").is_some() && find("webhook-secret").is_some(), "{audit}");
    api.stop().await;
}
