//! The `plugboard` client commands as an operator types them: real argument lists parsed by the
//! real clap types and run end to end by `commands::execute` against a real server, checking the
//! exit status and the printed text (stdout and stderr apart).

use crate::support::cli::{plugboard, plugboard_as};
use crate::support::common::TestServer;
use crate::support::server::{Api, install};
use clap::Parser;
use plugboard_host_api::api::routes::ROUTES;
use plugboard_host_api::cli::Cli;
use plugboard_tests::*;
use serde_json::{Value, json};

/// Every operator route (all but the unauthenticated probes and the webhook) and the command that
/// reaches it; the test below keeps this in step with `ROUTES`.
const ROUTE_COMMANDS: &[(&str, &str, &str)] = &[
    ("post", "/v1/plugins", "push FILE --activate"),
    ("get", "/v1/plugins", "ls"),
    ("get", "/v1/plugins/{name}", "show NAME"),
    ("delete", "/v1/plugins/{name}", "delete NAME"),
    ("delete", "/v1/plugins/{name}/versions/{version}", "delete NAME --version 1.0.0"),
    ("post", "/v1/plugins/{name}/versions/{version}/activate", "activate NAME 1.0.0 --allow-rollback"),
    ("post", "/v1/plugins/{name}/deactivate", "deactivate NAME"),
    (
        "put",
        "/v1/plugins/{name}/grants",
        "grant NAME --allow-host H --bucket B --use-connection C --fuel 1 --timeout-ms 1",
    ),
    ("put", "/v1/plugins/{name}/config", "config set NAME K=V --secret S=V"),
    ("post", "/v1/plugins/{name}/invoke", "invoke NAME --input FILE --cursor C --max-records 5"),
    ("get", "/v1/plugins/{name}/health", "health NAME"),
    ("get", "/v1/keys", "keys ls"),
    ("post", "/v1/keys", "keys add FILE --name N"),
    ("post", "/v1/keys/{id}/revoke", "keys revoke ID"),
    ("post", "/v1/tokens", "tokens create NAME --role invoker"),
    ("get", "/v1/tokens", "tokens ls"),
    ("delete", "/v1/tokens/{name}", "tokens revoke NAME"),
    ("get", "/v1/audit", "audit --limit 10 --cursor 3"),
    ("post", "/v1/flows", "flow apply FILE"),
    ("get", "/v1/flows", "flow ls"),
    ("get", "/v1/flows/{name}", "flow show NAME"),
    ("put", "/v1/flows/{name}", "flow apply FILE"),
    ("delete", "/v1/flows/{name}", "flow delete NAME"),
    ("post", "/v1/flows/{name}/run", "flow run NAME --input FILE"),
    ("get", "/v1/flows/{name}/executions", "flow executions NAME"),
    ("get", "/v1/executions/{id}", "flow execution 7"),
    ("get", "/v1/flows/{name}/dlq", "dlq ls FLOW"),
    ("post", "/v1/flows/{name}/dlq/replay", "dlq replay FLOW 1 2"),
    ("delete", "/v1/flows/{name}/dlq/{id}", "dlq delete FLOW 3"),
    ("get", "/v1/flows/{name}/deliveries/{id}", "flow delivery FLOW 3"),
    ("put", "/v1/flows/{name}/webhook-secret", "flow webhook-secret NAME --secret-file FILE"),
    ("get", "/v1/connections", "connection ls"),
    ("get", "/v1/connections/{name}", "connection show NAME"),
    ("put", "/v1/connections/{name}", "connection put NAME --file FILE"),
    ("delete", "/v1/connections/{name}", "connection rm NAME"),
    ("post", "/v1/connections/{name}/test", "connection test NAME"),
    ("get", "/v1/whoami", "whoami"),
    ("get", "/v1/metrics/history", "metrics --last 5"),
];

#[test]
fn every_operator_route_has_a_command() {
    for route in ROUTES.iter().filter(|r| r.role() != "none") {
        let command = ROUTE_COMMANDS.iter().find(|(method, path, _)| *method == route.method && *path == route.path);
        let Some((_, _, words)) = command else { panic!("{} {} has no command", route.method, route.path) };
        let args = std::iter::once("plugboard").chain(words.split(' ')).chain(["--json"]);
        if let Err(err) = Cli::try_parse_from(args) {
            panic!("`plugboard {words}` does not parse: {err}");
        }
    }
    assert_eq!(ROUTE_COMMANDS.len(), ROUTES.iter().filter(|r| r.role() != "none").count(), "a stale entry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_and_config_set_what_a_source_uses_and_hide_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    install(&api, HTTP_SOURCE).await;
    let pages = TestServer::start(|seen| {
        let reply = if seen.path.contains("page=2") {
            json!({"data": [{"id": 3}], "next": ""})
        } else {
            json!({"data": [{"id": 1}, {"id": 2}], "next": "/orders?page=2"})
        };
        (200, reply.to_string())
    })
    .await;

    let granted = plugboard(
        &api,
        &["grant", "http-source", "--allow-host", "127.0.0.1", "--fuel", "50000000", "--timeout-ms", "5000"],
    )
    .await
    .ok();
    assert_eq!(granted.json()["outbound_hosts"], json!(["127.0.0.1"]));
    assert!(
        granted.out.contains("outbound hosts: 127.0.0.1") && granted.out.contains("fuel=50000000"),
        "{}",
        granted.out
    );
    let url = format!("url={}", pages.url("/orders"));
    let configured = plugboard(
        &api,
        &[
            "config",
            "set",
            "http-source",
            &url,
            "records_path=$.data",
            "next_path=$.next",
            "--secret",
            "auth_header=Bearer s3cret",
        ],
    )
    .await
    .ok();
    assert!(configured.out.contains("secrets (values hidden): auth_header"), "{}", configured.out);
    assert!(!configured.out.contains("s3cret"), "a secret is never printed: {}", configured.out);

    // `show` names the secret's key, never its value; the grant and budget are as given.
    let shown = plugboard(&api, &["show", "http-source"]).await.ok();
    assert!(shown.out.contains("secrets (values hidden): auth_header"), "{}", shown.out);
    assert!(shown.out.contains("timeout_ms=5000"), "{}", shown.out);
    let detail = plugboard(&api, &["show", "http-source", "--json"]).await.ok();
    assert_eq!(detail.json()["grants"]["secrets"], json!(["auth_header"]));
    assert!(!detail.out.contains("s3cret"), "{}", detail.out);
    assert_eq!(detail.json()["grants"]["budget"], json!({"fuel": 50_000_000, "timeout_ms": 5000}));
    // The effective budget is the smallest of host cap, manifest and grant, each limit naming its
    // setter: the grant's fuel, the grant's 5 s deadline (below the manifest's 10 s), the host's
    // memory.
    let effective = &detail.json()["effective"];
    assert_eq!(effective["outbound_hosts"], json!(["127.0.0.1"]));
    assert_eq!(effective["budget"]["fuel"], 50_000_000);
    assert_eq!(effective["budget_set_by"]["fuel"], "grant");
    assert_eq!(effective["budget"]["timeout_ms"], 5000);
    assert_eq!(effective["budget_set_by"]["timeout"], "grant");
    assert_eq!(effective["budget_set_by"]["memory_bytes"], "host");

    // A source invoked with a page size, then from the cursor it answered.
    let first = plugboard(&api, &["invoke", "http-source", "--max-records", "1", "--json"]).await.ok().json();
    assert_eq!(first["records"], json!([{"id": 1}, {"id": 2}]), "{first}");
    let cursor = first["next_cursor"].as_str().expect("a next page").to_string();
    let second = plugboard(&api, &["invoke", "http-source", "--cursor", &cursor]).await.ok();
    assert!(second.out.contains("\"id\": 3") && second.out.contains("usage:"), "{}", second.out);
    let auth: Vec<String> = pages.requests().iter().filter_map(|r| r.headers.get("authorization").cloned()).collect();
    assert_eq!(auth, vec!["Bearer s3cret"; 2], "the secret reached the plugin");

    // Taking the host away again: the source is refused, and the command says so.
    plugboard(&api, &["grant", "http-source"]).await.ok();
    let denied = plugboard(&api, &["invoke", "http-source"]).await.failed();
    let code = denied.json()["code"].as_str().expect("code").to_string();
    assert!(denied.err.starts_with(&format!("error: {code}: ")), "{}", denied.err);
    let usage_error = plugboard(&api, &["config", "set", "http-source", "no-equals-sign"]).await.failed();
    assert!(usage_error.err.contains("expected KEY=VALUE"), "{}", usage_error.err);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let created = plugboard(&api, &["tokens", "create", "ci", "--role", "invoker"]).await.ok();
    let token = created.json()["token"].as_str().expect("token value").to_string();
    assert!(created.out.contains(&token) && created.out.contains("shown only now"), "{}", created.out);
    let scoped =
        plugboard(&api, &["tokens", "create", "ci-orders", "--plugin", "json-mapper", "--flow", "orders"]).await.ok();
    assert!(scoped.out.contains("scoped to plugins json-mapper; flows orders"), "{}", scoped.out);
    assert_eq!(scoped.json()["scope"], serde_json::json!({"plugins": ["json-mapper"], "flows": ["orders"]}));
    let listed = plugboard(&api, &["tokens", "ls"]).await.ok();
    let row = |name: &str| listed.out.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_default();
    assert!(row("ci").contains("invoker") && row("ci").contains("everything its role allows"), "{}", listed.out);
    assert!(row("ci-orders").contains("plugins json-mapper; flows orders"), "{}", listed.out);
    assert!(!listed.out.contains(&token), "values are never listed");

    plugboard_as(&api, &token, &["ls"]).await.ok();
    let forbidden = plugboard_as(&api, &token, &["tokens", "ls"]).await.failed();
    assert!(forbidden.err.starts_with("error: forbidden: "), "{}", forbidden.err);
    plugboard(&api, &["tokens", "revoke", "ci"]).await.ok();
    let refused = plugboard_as(&api, &token, &["ls", "--json"]).await.failed();
    assert_eq!(refused.json()["code"], "unauthorized");
    let printed: Value = serde_json::from_str(&refused.out).expect("--json prints the error body");
    assert_eq!(printed, refused.json());
    assert!(refused.err.contains("(HTTP 401)"), "{}", refused.err);

    // A conflict prints its code once.
    let reserved = plugboard(&api, &["tokens", "revoke", "admin"]).await.failed();
    assert!(reserved.err.starts_with("error: conflict: the `admin` token"), "{}", reserved.err);
    assert!(!reserved.err.contains("conflict: conflict"), "{}", reserved.err);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_install_on_a_normal_server_then_invoke() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let key = dir.path().join("samples-key");
    let key_path = key.to_str().expect("utf-8");

    // A key the user brings is trusted only when asked.
    plugboard_tests_keygen(&key);
    let untrusted = plugboard(&api, &["samples", "install", "--key", key_path, "--only", "filter"]).await.failed();
    assert!(untrusted.err.contains("is not trusted by the server: pass --trust"), "{}", untrusted.err);
    let installed = plugboard(&api, &["samples", "install", "--key", key_path, "--trust"]).await.ok();
    assert!(installed.out.contains("trusted now"), "{}", installed.out);
    let names: Vec<&str> = installed
        .answer
        .as_ref()
        .and_then(|a| a["installed"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"json-mapper") && names.contains(&"http-source"), "{names:?}");
    // Again: the same key is already trusted, the same versions are already there.
    let again = plugboard(&api, &["samples", "install", "--key", key_path, "--only", "json-mapper"]).await.ok();
    assert!(again.out.contains("already trusted"), "{}", again.out);

    let input = dir.path().join("orders.json");
    std::fs::write(&input, r#"[{"orderId": "A1", "customerId": 7, "orderTotal": 1250}]"#).expect("write");
    let mapped =
        plugboard(&api, &["invoke", "json-mapper", "--input", input.to_str().expect("utf-8"), "--json"]).await.ok();
    assert_eq!(mapped.json()["records"], json!([{"id": "A1", "customer": {"id": 7}, "total": 1250}]));
    let listed = plugboard(&api, &["ls"]).await.ok();
    assert!(listed.out.lines().any(|l| l.starts_with("filter ") && l.contains("0.1.0")), "{}", listed.out);

    let missing = plugboard(&api, &["invoke", "no-such-plugin", "--json"]).await.failed();
    assert_eq!(missing.json()["code"], "not-found");
    assert!(missing.out.contains("\"not-found\""), "--json prints the error body: {}", missing.out);
    assert!(!missing.err.contains("not-found: not found"), "{}", missing.err);
    api.stop().await;
}

fn plugboard_tests_keygen(path: &std::path::Path) {
    plugboard_host_api::sign::keygen(path, &mut std::io::sink()).expect("keygen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_invocation_exits_non_zero_with_code_and_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    install(&api, GUEST_HOSTILE).await;
    plugboard(&api, &["config", "set", "hostile", "mode=kv-other-bucket"]).await.ok();
    let input = dir.path().join("one.json");
    std::fs::write(&input, "[{}]").expect("write");
    let failed = plugboard(&api, &["invoke", "hostile", "--input", input.to_str().expect("utf-8")]).await.failed();
    assert_eq!(failed.json()["code"], "capability-denied", "{failed:?}");
    assert!(failed.err.starts_with("error: capability-denied: "), "{}", failed.err);
    assert!(failed.out.is_empty(), "nothing on stdout without --json: {}", failed.out);
    let as_json =
        plugboard(&api, &["invoke", "hostile", "--input", input.to_str().expect("utf-8"), "--json"]).await.failed();
    let body: Value = serde_json::from_str(&as_json.out).expect("the error body on stdout");
    assert_eq!((body["code"].clone(), body["logs"].is_array()), (json!("capability-denied"), true), "{body}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_flow_run_names_the_failing_source_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    install(&api, HTTP_SOURCE).await;
    crate::support::flows::install_sink(&api, "orders-sink", "http://127.0.0.1:9/in").await;
    let outside = TestServer::start(|_| (200, json!({"data": [{"id": 1}]}).to_string())).await;
    let url = format!("url={}", outside.url("/orders"));
    plugboard(&api, &["config", "set", "http-source", &url, "records_path=$.data"]).await.ok();
    // No outbound host granted: the source cannot reach the endpoint.
    let flow = dir.path().join("pull.yaml");
    std::fs::write(
        &flow,
        "name: pull\nsource: {id: read, plugin: http-source}\nsinks: [{id: deliver, plugin: orders-sink}]\n",
    )
    .expect("write");
    plugboard(&api, &["flow", "apply", flow.to_str().expect("utf-8")]).await.ok();

    let run = plugboard(&api, &["flow", "run", "pull"]).await.failed();
    let execution = run.json();
    assert_eq!(execution["status"], "failed", "{execution}");
    let error = if execution["failure"].is_null() {
        execution["steps"][0]["error"].clone()
    } else {
        execution["failure"].clone()
    };
    let code = error["code"].as_str().expect("an error code");
    let named = format!("source `read` (plugin http-source) failed: {code}: ");
    assert!(run.err.contains(&named), "stderr names the source and the code: {}", run.err);
    assert!(run.out.contains(&named), "so does the report: {}", run.out);
    assert!(outside.requests().is_empty(), "the request never left");

    // `--json`: the execution on stdout, still status 1; the table's times are RFC 3339.
    let as_json = plugboard(&api, &["flow", "run", "pull", "--json"]).await.failed();
    assert_eq!(serde_json::from_str::<Value>(&as_json.out).expect("json")["status"], "failed");
    let executions = plugboard(&api, &["flow", "executions", "pull"]).await.ok();
    let started = executions.out.lines().nth(1).and_then(|l| l.split_whitespace().last()).expect("a row");
    chrono::DateTime::parse_from_rfc3339(started).unwrap_or_else(|err| panic!("`{started}`: {err}"));
    let audit = plugboard(&api, &["audit", "--limit", "2"]).await.ok();
    let at = audit.out.lines().nth(1).and_then(|l| l.split_whitespace().next()).expect("a row");
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok() && at.ends_with('Z'), "{}", audit.out);
    assert!(audit.out.contains("(more: --cursor "), "{}", audit.out);
    // The token in use, and the metrics history as a table (with or without a sample yet).
    let me = plugboard(&api, &["whoami"]).await.ok();
    assert_eq!(me.out.trim(), "admin (admin)", "{}", me.out);
    let metrics = plugboard(&api, &["metrics", "--last", "3"]).await.ok();
    assert!(metrics.out.contains("P99 MS") && metrics.out.contains("(one sample every 5 s)"), "{}", metrics.out);
    let history = plugboard(&api, &["metrics", "--json"]).await.ok();
    assert!(serde_json::from_str::<Value>(&history.out).expect("json")["samples"].is_array());
    api.stop().await;
}
