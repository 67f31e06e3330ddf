//! Failures a flow author must be able to see without the server's log: the panic message and
//! backtrace of a trapped step, the logs of the failing attempt, a denial naming which party lacks
//! the capability, and a failing source named as the failing step.

use crate::support::cli::plugboard;
use crate::support::common::TestServer;
use crate::support::flows::install_sink;
use crate::support::server::{ADMIN, Api, install, install_hostile};
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn step<'a>(execution: &'a Value, id: &str) -> &'a Value {
    execution["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["step"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {execution}"))
}

fn logged(entries: &Value, context: &str, text: &str) -> bool {
    entries.as_array().is_some_and(|logs| {
        logs.iter().any(|e| e["context"] == context && e["message"].as_str().is_some_and(|m| m.contains(text)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_step_records_its_panic_backtrace_and_logs_in_the_execution_and_dead_letters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    install_hostile(&api, "panic", json!({})).await;
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    install_sink(&api, "panic-sink", &sink.url("/in")).await;
    let flow = json!({
        "name": "panics",
        "steps": [{"type": "transform", "id": "explode", "plugin": "hostile"}],
        "sinks": [{"id": "out", "plugin": "panic-sink"}]
    });
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, execution) = api.post("/v1/flows/panics/run", ADMIN, json!({"records": [{"n": 1}, {"n": 2}]})).await;
    assert_eq!(execution["status"], "completed-with-dead-letters", "{execution}");
    let explode = step(&execution, "explode");
    let error = &explode["error"];
    assert_eq!(error["code"], "guest-trap");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("panicked at hostile/src/lib.rs:"), "{message}");
    assert!(message.contains("the hostile guest panics on purpose"), "{message}");
    assert!(error["backtrace"][0].as_str().is_some_and(|f| f.contains("hostile::Hostile")), "{error}");
    assert!(logged(&explode["logs"], "stderr", "panics on purpose"), "{explode}");

    let (_, letters) = api.get("/v1/flows/panics/dlq", ADMIN).await;
    let letters = letters["dead_letters"].as_array().cloned().unwrap_or_default();
    assert_eq!(letters.len(), 2);
    for letter in &letters {
        assert_eq!(letter["error"]["message"], error["message"]);
        assert!(logged(&letter["logs"], "stderr", "panics on purpose"), "{letter}");
    }
    // The same through a direct invocation: the error body carries the backtrace.
    let (status, answer) = api.post("/v1/plugins/hostile/invoke", ADMIN, json!({"records": [{}]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["code"], "guest-trap");
    assert!(answer["backtrace"].as_array().is_some_and(|b| !b.is_empty()), "{answer}");
    // The CLI shows the panic message and the trimmed backtrace, and exits non-zero.
    let input = dir.path().join("one.json");
    std::fs::write(&input, "[{}]").expect("input");
    let printed = plugboard(&api, &["invoke", "hostile", "--input", input.to_str().unwrap_or_default()]).await.failed();
    assert!(
        printed.err.contains("guest-trap: plugin trapped (unreachable): panicked at hostile/src/lib.rs:"),
        "{}",
        printed.err
    );
    assert!(
        printed.err.contains("backtrace:\n    0: <hostile::Hostile as plugboard_plugin_sdk::Transformer>::transform"),
        "{}",
        printed.err
    );
    // And so does `flow execution`, for the trapped step.
    let id = execution["id"].to_string();
    let printed = plugboard(&api, &["flow", "execution", &id]).await.ok();
    assert!(
        printed.out.contains("step `explode` failed: guest-trap: plugin trapped (unreachable): panicked at"),
        "{}",
        printed.out
    );
    assert!(printed.out.contains("backtrace:"), "{}", printed.out);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_is_denied_fails_the_run_as_the_named_step_with_the_denial() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let outside = TestServer::start(|_| (200, json!({"data": [{"id": 1}]}).to_string())).await;
    install(&api, HTTP_SOURCE).await;
    // Configured, but the operator granted no outbound host.
    let config = json!({"values": {"url": outside.url("/orders"), "records_path": "$.data"}});
    let (status, _) = api.put("/v1/plugins/http-source/config", config).await;
    assert_eq!(status, StatusCode::OK);
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    install_sink(&api, "pull-sink", &sink.url("/in")).await;
    let flow = json!({
        "name": "pull",
        "source": {"id": "read", "plugin": "http-source"},
        "sinks": [{"id": "deliver", "plugin": "pull-sink"}]
    });
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, execution) = api.post("/v1/flows/pull/run", ADMIN, json!({})).await;
    assert_eq!(execution["status"], "failed", "{execution}");
    let read = step(&execution, "read");
    assert_eq!(read["error"]["code"], "capability-denied");
    let message = read["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("requested by the plugin's manifest but not granted by the operator"), "{message}");
    assert!(message.contains("plugboard grant"), "{message}");
    assert!(logged(&read["logs"], "host", "outbound request denied"), "{read}");
    assert_eq!(execution["failure"], read["error"]);
    assert!(outside.requests().is_empty());
    api.stop().await;
}
