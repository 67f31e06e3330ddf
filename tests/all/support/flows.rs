//! Flows, sinks and webhook deliveries as tests set them up: a sink plugin installed against a
//! local server, the records it was posted, a flow with a webhook trigger, a signed delivery, and
//! a sender's own signing code run as a script.

use crate::support::common::TestServer;
use crate::support::server::{ADMIN, Api};
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

/// Installs http-sink under `name`, pointed at `url`.
pub(crate) async fn install_sink(api: &Api, name: &str, url: &str) {
    let manifest = plugboard_runtime::Manifest { name: name.into(), ..HTTP_SINK.manifest() };
    let file = plugboard_runtime::signing::sign(&HTTP_SINK.bytes(), &manifest, test_key()).expect("sign");
    let (status, body) = api.upload(file, "?activate=true", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = api.put(&format!("/v1/plugins/{name}/grants"), json!({"outbound_hosts": ["127.0.0.1"]})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api.put(&format!("/v1/plugins/{name}/config"), json!({"values": {"url": url}})).await;
    assert_eq!(status, StatusCode::OK);
}

pub(crate) fn posted(server: &TestServer) -> Vec<Value> {
    server.requests().iter().flat_map(|r| serde_json::from_slice::<Vec<Value>>(&r.body).unwrap_or_default()).collect()
}

pub(crate) async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

pub(crate) async fn deliver(api: &Api, flow: &str, secret: &str, timestamp: u64, body: &Value) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(body).expect("json");
    let signature = plugboard_host_api::domain::webhook::sign_hook(secret, flow, timestamp, &bytes);
    let response = api
        .client
        .post(api.url(&format!("/v1/hooks/{flow}")))
        .header("x-plugboard-timestamp", timestamp.to_string())
        .header("x-plugboard-signature", signature)
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .expect("deliver");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) const SECRET: &str = "webhook-secret-for-tests";

/// Installs a sink at `sink_url` and the flow `hooked`: webhook → that sink, signed with [`SECRET`].
pub(crate) async fn webhook_flow(api: &Api, sink_url: &str) {
    api.trust_test_key().await;
    install_sink(api, "hook-sink", sink_url).await;
    create_hooked_flow(api).await;
}

/// Runs one of `tests/senders/`'s scripts (`.mjs` with Node, `.py` with the senders' venv) on
/// `input` as JSON, answering its JSON output.
pub(crate) fn sender_script(script: &str, input: &Value) -> Value {
    let mut command =
        if script.ends_with(".mjs") { Command::new("node") } else { Command::new(plugboard_tests::SENDERS_PYTHON) };
    let mut child = command
        .arg(script)
        .current_dir(plugboard_tests::SENDERS_DIR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a sender's script");
    child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("write");
    let output = child.wait_with_output().expect("run");
    assert!(output.status.success(), "{script}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the script's JSON output")
}

pub(crate) async fn create_hooked_flow(api: &Api) {
    let flow = json!({"name": "hooked", "triggers": [{"type": "webhook", "tolerance_secs": 60}], "sinks": [{"id": "out", "plugin": "hook-sink"}]});
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = api.put("/v1/flows/hooked/webhook-secret", json!({"secret": SECRET})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}
