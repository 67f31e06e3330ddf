//! `plugboard flow …` and `plugboard dlq …` as a user types them: real argument lists parsed by the
//! real clap types, run against a real server, rendered as the command prints them.

use crate::common::TestServer;
use crate::flows::{install_sink, posted};
use crate::server::{ADMIN, Api, install};
use clap::Parser;
use plugboard_host_api::cli::{Cli, Command};
use plugboard_host_api::client::ClientError;
use plugboard_host_api::flow_commands::{self, FlowCommandError};
use plugboard_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Parses `words` as `plugboard WORDS --server … --token …` and runs it; answers the JSON and the
/// printed text.
async fn plugboard(api: &Api, words: &[&str]) -> Result<(Value, String), FlowCommandError> {
    let mut args = vec!["plugboard"];
    args.extend_from_slice(words);
    args.extend_from_slice(&["--server", &api.base, "--token", ADMIN]);
    let cli = Cli::try_parse_from(&args).unwrap_or_else(|err| panic!("`{}` does not parse: {err}", words.join(" ")));
    let (answer, render) = match cli.command {
        Command::Flow { command, connection } => {
            flow_commands::flow(&connection.client().expect("client"), &command).await?
        }
        Command::Dlq { command, connection } => {
            flow_commands::dlq(&connection.client().expect("client"), &command).await?
        }
        _ => panic!("not a flow command"),
    };
    Ok((answer.clone(), render(&answer)))
}

fn api_code(result: Result<(Value, String), FlowCommandError>) -> String {
    match result {
        Err(FlowCommandError::Client(ClientError::Api { code, .. })) => code,
        other => panic!("expected an API error, got {other:?}"),
    }
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
    let (_, printed) = plugboard(&api, &["flow", "apply", path]).await.expect("apply");
    assert_eq!(printed, "flow paid-orders created");
    let (_, printed) = plugboard(&api, &["flow", "apply", path]).await.expect("apply again");
    assert_eq!(printed, "flow paid-orders updated");
    let (_, printed) = plugboard(&api, &["flow", "ls"]).await.expect("ls");
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
    let (execution, printed) =
        plugboard(&api, &["flow", "run", "paid-orders", "--input", input.to_str().expect("utf-8")]).await.expect("run");
    assert_eq!(execution["status"], "completed-with-dead-letters", "{execution}");
    assert!(printed.contains("paid-only") && printed.contains("guest-error"), "{printed}");
    assert_eq!(warehouse.requests().len(), 1, "one attempt, with both paid orders");
    let (letters, printed) = plugboard(&api, &["dlq", "ls", "paid-orders"]).await.expect("dlq ls");
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
    let (replayed, _) = plugboard(&api, &["dlq", "replay", "paid-orders", &first]).await.expect("replay one");
    assert_eq!(replayed["executions"].as_array().map(Vec::len), Some(1));
    assert_eq!(accepted(), vec![json!({"id": 1, "status": "paid", "total": 150})]);
    let (_, printed) = plugboard(&api, &["dlq", "replay", "paid-orders"]).await.expect("replay rest");
    assert!(printed.contains("succeeded"), "{printed}");
    assert_eq!(
        accepted(),
        vec![json!({"id": 1, "status": "paid", "total": 150}), json!({"id": 3, "status": "paid", "total": 120})]
    );
    let (_, printed) = plugboard(&api, &["dlq", "ls", "paid-orders"]).await.expect("dlq ls");
    assert_eq!(printed.lines().count(), 1, "only the header is left: {printed}");
    let (executions, printed) = plugboard(&api, &["flow", "executions", "paid-orders"]).await.expect("executions");
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
    match plugboard(&api, &["flow", "apply", &broken]).await {
        Err(FlowCommandError::Input { reason, .. }) => assert!(reason.starts_with("invalid YAML"), "{reason}"),
        other => panic!("expected an input error, got {other:?}"),
    }
    let nameless = file("nameless.json", r#"{"steps": []}"#);
    assert!(matches!(plugboard(&api, &["flow", "apply", &nameless]).await, Err(FlowCommandError::Input { .. })));
    let missing = dir.path().join("missing.yaml");
    assert!(matches!(
        plugboard(&api, &["flow", "apply", missing.to_str().expect("utf-8")]).await,
        Err(FlowCommandError::Input { .. })
    ));
    let unknown_plugin = file("unknown.yml", "name: x\nsinks: [{id: out, plugin: nowhere}]\n");
    assert_eq!(api_code(plugboard(&api, &["flow", "apply", &unknown_plugin]).await), "flow-invalid");
    assert_eq!(api_code(plugboard(&api, &["flow", "run", "x"]).await), "not-found");
    let not_records = file("input.json", r#"{"rows": []}"#);
    assert!(matches!(
        plugboard(&api, &["flow", "run", "x", "--input", &not_records]).await,
        Err(FlowCommandError::Input { .. })
    ));
    let (flows, _) = plugboard(&api, &["flow", "ls"]).await.expect("ls");
    assert_eq!(flows["flows"], json!([]), "nothing was created");
    assert!(Cli::try_parse_from(["plugboard", "dlq", "replay", "x", "not-a-number"]).is_err());
    api.stop().await;
}
