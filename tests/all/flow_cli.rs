//! `plugboard flow …` and `plugboard dlq …` as a user types them: real argument lists parsed by the
//! real clap types, run against a real server, rendered as the command prints them.

use crate::support::cli::{Printed, plugboard};
use crate::support::common::TestServer;
use crate::support::flows::{install_sink, posted};
use crate::support::server::{Api, install};
use clap::Parser;
use plugboard_host_api::cli::Cli;
use plugboard_host_api::commands::Exit;
use plugboard_tests::*;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The error code of a command the server refused (status 1, the body kept as the answer).
fn api_code(printed: Printed) -> String {
    assert_eq!(printed.exit, Exit::Failure, "{printed:?}");
    printed
        .answer
        .as_ref()
        .and_then(|body| body["code"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("expected an API error, got {printed:?}"))
}

/// A local input error: status 1, nothing sent, stderr says why.
fn input_error(printed: Printed) -> String {
    assert_eq!((printed.exit, printed.answer.is_none()), (Exit::Failure, true), "{printed:?}");
    printed.err
}

const PAID_ORDERS: &str = r#"# Paid orders over 100 go to the warehouse.
name: paid-orders
steps:
  - type: transform
    id: paid-only
    plugin: filter
sinks:
  - id: warehouse
    plugin: warehouse-sink
    retry: {max_attempts: 1}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_and_dlq_commands_apply_run_list_and_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    install(&api, FILTER).await;
    let condition = r#"{"all": [{"field": "$.status", "op": "equals", "value": "paid"}, {"field": "$.total", "op": "gt", "value": 100}]}"#;
    api.put("/v1/plugins/filter/config", json!({"values": {"condition": condition}})).await;
    let up = Arc::new(AtomicBool::new(false));
    let warehouse = {
        let up = up.clone();
        TestServer::start(move |_| if up.load(Ordering::SeqCst) { (200, "{}".into()) } else { (503, "{}".into()) })
            .await
    };
    install_sink(&api, "warehouse-sink", &warehouse.url("/orders")).await;

    let yaml = dir.path().join("paid-orders.yaml");
    std::fs::write(&yaml, PAID_ORDERS).expect("write");
    let path = yaml.to_str().expect("utf-8");
    let printed = plugboard(&api, &["flow", "apply", path]).await.ok().out;
    assert_eq!(printed, "flow paid-orders created\n");
    let printed = plugboard(&api, &["flow", "apply", path]).await.ok().out;
    assert_eq!(printed, "flow paid-orders updated\n");
    let printed = plugboard(&api, &["flow", "ls"]).await.ok().out;
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    assert!(lines[1].starts_with("paid-orders") && lines[1].contains("paid-only"), "{printed}");

    // The warehouse is down: the matching orders become dead letters.
    let input = dir.path().join("orders.json");
    let orders = json!([
        {"id": 1, "status": "paid", "total": 150},
        {"id": 2, "status": "open", "total": 900},
        {"id": 3, "status": "paid", "total": 120}
    ]);
    std::fs::write(&input, orders.to_string()).expect("write");
    let run = plugboard(&api, &["flow", "run", "paid-orders", "--input", input.to_str().expect("utf-8")]).await.ok();
    let (execution, printed) = (run.json(), run.out);
    assert_eq!(execution["status"], "completed-with-dead-letters", "{execution}");
    assert!(printed.contains("paid-only") && printed.contains("guest-error"), "{printed}");
    assert_eq!(warehouse.requests().len(), 1, "one attempt, with both paid orders");
    let listing = plugboard(&api, &["dlq", "ls", "paid-orders"]).await.ok();
    let (letters, printed) = (listing.json(), listing.out);
    let ids: Vec<u64> =
        letters["dead_letters"].as_array().expect("letters").iter().filter_map(|l| l["id"].as_u64()).collect();
    assert_eq!(ids.len(), 2, "{printed}");
    assert_eq!(printed.lines().count(), 3, "{printed}");
    assert!(printed.contains(r#"{"id":1,"status":"paid","total":150}"#), "{printed}");

    // It recovers: replay one selected letter, then the rest.
    up.store(true, Ordering::SeqCst);
    let refused = warehouse.requests().len();
    let accepted = || posted(&warehouse)[refused * 2..].to_vec();
    let first = ids[0].to_string();
    let replayed = plugboard(&api, &["dlq", "replay", "paid-orders", &first]).await.ok().json();
    assert_eq!(replayed["executions"].as_array().map(Vec::len), Some(1));
    assert_eq!(accepted(), vec![json!({"id": 1, "status": "paid", "total": 150})]);
    let printed = plugboard(&api, &["dlq", "replay", "paid-orders"]).await.ok().out;
    assert!(printed.contains("succeeded"), "{printed}");
    assert_eq!(
        accepted(),
        vec![json!({"id": 1, "status": "paid", "total": 150}), json!({"id": 3, "status": "paid", "total": 120})]
    );
    let printed = plugboard(&api, &["dlq", "ls", "paid-orders"]).await.ok().out;
    assert_eq!(printed.lines().count(), 1, "only the header is left: {printed}");
    let listing = plugboard(&api, &["flow", "executions", "paid-orders"]).await.ok();
    let (executions, printed) = (listing.json(), listing.out);
    let triggers: Vec<&str> =
        executions["executions"].as_array().expect("list").iter().filter_map(|e| e["trigger"].as_str()).collect();
    assert_eq!(triggers, ["manual", "replay", "replay"], "{printed}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_commands_refuse_bad_files_and_bad_flows_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("utf-8").to_string()
    };

    let broken = file("broken.yaml", "name: x\nsteps: [\n");
    let error = input_error(plugboard(&api, &["flow", "apply", &broken]).await);
    assert!(error.contains("broken.yaml: invalid YAML"), "{error}");
    let nameless = file("nameless.json", r#"{"steps": []}"#);
    assert!(input_error(plugboard(&api, &["flow", "apply", &nameless]).await).contains("needs a `name`"));
    let missing = dir.path().join("missing.yaml");
    input_error(plugboard(&api, &["flow", "apply", missing.to_str().expect("utf-8")]).await);
    let unknown_plugin = file("unknown.yml", "name: x\nsinks: [{id: out, plugin: nowhere}]\n");
    assert_eq!(api_code(plugboard(&api, &["flow", "apply", &unknown_plugin]).await), "flow-invalid");
    assert_eq!(api_code(plugboard(&api, &["flow", "run", "x"]).await), "not-found");
    // An array, `{"records": [...]}` and one object (a webhook event) are records; a number is not.
    let not_records = file("input.json", "42");
    input_error(plugboard(&api, &["flow", "run", "x", "--input", &not_records]).await);
    let flows = plugboard(&api, &["flow", "ls"]).await.ok().json();
    assert_eq!(flows["flows"], json!([]), "nothing was created");
    assert!(Cli::try_parse_from(["plugboard", "dlq", "replay", "x", "not-a-number"]).is_err());
    api.stop().await;
}
