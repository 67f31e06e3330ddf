//! Plugins built today keep working: a plugin built from the pinned 0.1.0 WIT
//! (`tests/guests/contract-0-1`, bare wit-bindgen) installs, inspects as a 0.1.0 world and runs in
//! one flow with current (0.2.0) plugins, its errors crossing intact. And the 0.2.0 addition,
//! `retry-after`, reaches the retry: a remote's `Retry-After` (seconds, which the SDK reads, or an
//! HTTP-date, which only the host reads) makes the flow's next attempt wait at least that long.

use crate::support::common::{Reply, TestServer};
use crate::support::flows::{install_sink, posted};
use crate::support::server::{ADMIN, Api, install};
use plugboard_runtime::Contract;
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn inspected(file: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plugin.wasm");
    std::fs::write(&path, file).expect("write");
    let mut out = Vec::new();
    plugboard_host_api::sign::inspect(&path, false, &mut out).expect("inspect");
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn inspect_names_the_world_version_a_plugin_was_built_against() {
    let earlier = inspected(&GUEST_CONTRACT_0_1.signed());
    assert!(earlier.contains("world:     plugboard:plugin/transformer@0.1.0"), "{earlier}");
    let current = inspected(&JSON_MAPPER.signed());
    assert!(current.contains(&format!("world:     plugboard:plugin/transformer@{}", Contract::CURRENT.as_str())));
    let inspection = plugboard_runtime::signing::inspect(&GUEST_CONTRACT_0_1.bytes()).expect("inspect");
    assert_eq!(inspection.world.as_deref(), Some("plugboard:plugin/transformer@0.1.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_against_0_1_0_runs_next_to_current_ones_in_one_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    install(&api, GUEST_CONTRACT_0_1).await;
    install(&api, JSON_MAPPER).await;
    let mapping = json!({"mapping": {"order": "$.id", "built": "$.contract"}});
    api.put("/v1/plugins/json-mapper/config", json!({"values": mapping})).await;
    let receiver = TestServer::start(|_| (200, "{}".into())).await;
    install_sink(&api, "out", &receiver.url("/in")).await;
    let flow = json!({
        "name": "mixed",
        "steps": [
            {"type": "transform", "id": "old", "plugin": "contract-0-1"},
            {"type": "transform", "id": "new", "plugin": "json-mapper"}
        ],
        "sinks": [{"id": "deliver", "plugin": "out"}]
    });
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (_, execution) = api.post("/v1/flows/mixed/run", ADMIN, json!({"records": [{"id": 1}, {"id": 2}]})).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(posted(&receiver), vec![json!({"order": 1, "built": "0.1.0"}), json!({"order": 2, "built": "0.1.0"})]);

    // The 0.1.0 `invalid-input` names one record: that one is dead-lettered with its reason and
    // the others pass through the current plugin, exactly as with a 0.2.0 plugin.
    let input = json!({"records": [{"id": 3}, {"id": 4, "fail": "invalid-input"}, {"id": 5}]});
    let (_, execution) = api.post("/v1/flows/mixed/run", ADMIN, input).await;
    assert_eq!(execution["status"], "completed-with-dead-letters", "{execution}");
    let (_, dlq) = api.get("/v1/flows/mixed/dlq", ADMIN).await;
    let letters = dlq["dead_letters"].as_array().expect("letters").clone();
    assert_eq!(letters.len(), 1, "{dlq}");
    assert_eq!(letters[0]["record"]["value"], json!({"id": 4, "fail": "invalid-input"}), "{dlq}");
    assert!(letters[0]["reasons"].to_string().contains("asked to be invalid"), "{dlq}");
    let delivered: Vec<Value> = posted(&receiver).into_iter().skip(2).collect();
    assert_eq!(delivered, vec![json!({"order": 3, "built": "0.1.0"}), json!({"order": 5, "built": "0.1.0"})]);

    // Its `retryable` is still retried; its `internal` is a guest error like any other.
    let (_, execution) = api.post("/v1/flows/mixed/run", ADMIN, json!({"records": [{"fail": "retryable"}]})).await;
    assert_eq!(execution["steps"][0]["attempts"], 3, "{execution}");
    assert_eq!(execution["steps"][0]["error"]["code"], "guest-error", "{execution}");
    assert!(execution["steps"][0]["error"]["message"].as_str().is_some_and(|m| m.contains("retryable")));
    let (status, out) =
        api.post("/v1/plugins/contract-0-1/invoke", ADMIN, json!({"records": [{"fail": "boom"}]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert_eq!(out["code"], "guest-error", "{out}");
    // The host stayed up and the plugin still works.
    let (status, out) = api.post("/v1/plugins/contract-0-1/invoke", ADMIN, json!({"records": [{"id": 9}]})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["records"][0], json!({"id": 9, "contract": "0.1.0"}), "{out}");
}

/// A receiver that answers the first request `status` with the `Retry-After` that
/// `retry_after` gives at that moment, and 200 after.
async fn busy_once(status: u16, retry_after: impl Fn() -> String + Send + Sync + 'static) -> TestServer {
    let calls = Arc::new(AtomicUsize::new(0));
    TestServer::replying(move |_| -> Reply {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            (status, vec![("retry-after", retry_after())], "{}".into())
        } else {
            (200, Vec::new(), "{}".into())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remotes_retry_after_holds_the_flows_retry_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    // Seconds: http-sink's SDK answers `retry-after`. An HTTP-date: the SDK does not read it, and
    // the host, which saw the answer go by, makes the plain `retryable` wait anyway.
    let in_seconds = busy_once(503, || "1".into()).await;
    // Three seconds ahead, cut to whole seconds by the format: more than two.
    let as_date =
        busy_once(429, || httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3))).await;
    install_sink(&api, "seconds", &in_seconds.url("/in")).await;
    install_sink(&api, "dated", &as_date.url("/in")).await;
    // Without the remote's delay these would retry within 20 ms.
    let retry = json!({"max_attempts": 3, "initial_backoff_ms": 1, "max_backoff_ms": 20_000});
    for (name, sink) in [("seconds-flow", "seconds"), ("dated-flow", "dated")] {
        let flow = json!({"name": name, "sinks": [{"id": "deliver", "plugin": sink, "retry": retry}]});
        let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for (flow, server, at_least) in
        [("seconds-flow", &in_seconds, Duration::from_secs(1)), ("dated-flow", &as_date, Duration::from_secs(1))]
    {
        let (_, execution) = api.post(&format!("/v1/flows/{flow}/run"), ADMIN, json!({"records": [{"n": 1}]})).await;
        assert_eq!(execution["status"], "succeeded", "{execution}");
        assert_eq!(execution["steps"][0]["attempts"], 2, "{execution}");
        let retried = &execution["steps"][0]["retried"][0];
        assert!(retried["message"].as_str().is_some_and(|m| m.contains("retryable after")), "{execution}");
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        let waited = requests[1].at - requests[0].at;
        assert!(waited >= at_least, "{flow}: the retry came after {waited:?}, before the remote's delay");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sdks_connector_answers_a_remotes_retry_after_with_its_delay() {
    let grant = |config: &[(&str, &str)], secrets: &[(&str, &str)]| {
        let mut grant = crate::support::common::config(config);
        grant.secrets = secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        grant.outbound_hosts = vec!["127.0.0.1".into()];
        grant
    };
    let runtime = crate::support::common::cached_runtime();
    let input = crate::support::common::records(&[json!({"id": "A1", "customer": {"name": "Ada"}, "total": 1})]);
    for (plugin, status) in [(HTTP_SINK, 429), (PY_BULK_SINK, 503), (JS_SLACK_NOTIFY, 429)] {
        // Two hours: the host itself takes a remote's delay at an hour at most, so only the SDK
        // can have read this one.
        let server = busy_once(status, || "7200".into()).await;
        let url = server.url("/in");
        let loaded = match plugin.name {
            "js-slack-notify" => plugin.load(&runtime, &grant(&[("template", "{id}")], &[("webhook_url", &url)])),
            _ => plugin.load(&runtime, &grant(&[("url", &url)], &[])),
        };
        match loaded.write(input.clone()).await.into_result() {
            Err(plugboard_runtime::Error::Guest(plugboard_runtime::record::PluginError::RetryAfter(retry))) => {
                assert_eq!(retry.delay_ms, 7_200_000, "{}: {retry:?}", plugin.name)
            }
            other => panic!("{}: expected retry-after, got {other:?}", plugin.name),
        }
        // The remote is ready again: the next write goes through.
        let report = loaded.write(input.clone()).await.into_result().expect("accepted after the wait");
        assert_eq!(report.accepted, 1, "{}", plugin.name);
    }
}
