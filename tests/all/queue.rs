//! The work queue under pressure: bounded depth (429 with `Retry-After`, nothing queued),
//! micro-batched executions that name every delivery they carried, per-flow order, paged lists,
//! and a shutdown that a hanging sink cannot hold past its deadline.

use crate::support::common::TestServer;
use crate::support::flows::{SECRET, deliver, now, posted, wait_for, webhook_flow};
use crate::support::server::{ADMIN, Api};
use plugboard_host_api::api::ServerLimits;
use plugboard_host_api::domain::QueueSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn settings(workers: usize, max_depth_per_flow: usize, batch_records: usize) -> QueueSettings {
    QueueSettings { workers, max_depth_per_flow, batch_records, ..QueueSettings::default() }
}

async fn start(dir: &Path, queue: QueueSettings) -> Api {
    let config = plugboard_host_api::server::ServeConfig { queue, ..Api::config(dir) };
    Api::start_configured(config, ServerLimits::default()).await
}

async fn set_active(api: &Api, plugin: &str, active: bool) {
    let path = if active {
        format!("/v1/plugins/{plugin}/versions/0.1.0/activate")
    } else {
        format!("/v1/plugins/{plugin}/deactivate")
    };
    let (status, body) = api.post(&path, ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Waits until `/metrics` reports an empty work queue (runs leave it just after their execution
/// is stored, a moment after the sink saw their records); fails after 5 s.
async fn wait_until_the_queue_is_empty(api: &Api) {
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = api.client.get(api.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
        if metrics.contains("plugboard_queue_depth 0") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the queue did not drain: {metrics}");
}

/// Every page of `path` (a list answering `key` and `next_cursor`), `limit` items at a time.
async fn all_pages(api: &Api, path: &str, key: &str, limit: usize) -> (Vec<Value>, usize) {
    let (mut items, mut pages, mut cursor) = (Vec::new(), 0, None::<u64>);
    loop {
        let query = match cursor {
            Some(cursor) => format!("{path}?limit={limit}&cursor={cursor}"),
            None => format!("{path}?limit={limit}"),
        };
        let (status, page) = api.get(&query, ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let batch = page[key].as_array().expect("items").clone();
        assert!(batch.len() <= limit, "{page}");
        items.extend(batch);
        pages += 1;
        match page["next_cursor"].as_u64() {
            Some(next) => cursor = Some(next),
            None => return (items, pages),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after_and_queues_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    let api = start(dir.path(), settings(1, 2, 500)).await;
    webhook_flow(&api, &sink.url("/in")).await;
    // With its sink inactive the flow's work waits in the queue.
    set_active(&api, "hook-sink", false).await;
    for n in 0..2 {
        let (status, body) = deliver(&api, "hooked", SECRET, now(), &json!({"records": [{"n": n}]})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let sent = now();
    let response = api
        .client
        .post(api.url("/v1/hooks/hooked"))
        .header("x-plugboard-timestamp", sent.to_string())
        .header(
            "x-plugboard-signature",
            plugboard_host_api::domain::webhook::sign_hook(SECRET, "hooked", sent, b"{\"records\":[{\"n\":2}]}"),
        )
        .body("{\"records\":[{\"n\":2}]}")
        .send()
        .await
        .expect("deliver");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let refusal: Value = response.json().await.expect("json");
    assert_eq!(refusal["code"], "overloaded", "{refusal}");
    let metrics = api.client.get(api.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("plugboard_queue_depth 2"), "{metrics}");

    set_active(&api, "hook-sink", true).await;
    wait_for("the two queued deliveries", || posted(&sink).len() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let numbers: Vec<Value> = posted(&sink).iter().map(|r| r["n"].clone()).collect();
    assert_eq!(numbers, vec![json!(0), json!(1)], "the refused delivery never ran");
    // Room again once the queue drained (the sink sees the records a moment before their
    // execution is stored and the runs leave the queue).
    wait_until_the_queue_is_empty(&api).await;
    let (status, _) = deliver(&api, "hooked", SECRET, now(), &json!({"records": [{"n": 3}]})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_deliveries_run_as_one_execution_that_names_each_of_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    let api = start(dir.path(), settings(1, 100, 500)).await;
    webhook_flow(&api, &sink.url("/in")).await;
    set_active(&api, "hook-sink", false).await;
    let mut queued = Vec::new();
    for n in 0..6 {
        let (status, body) =
            deliver(&api, "hooked", SECRET, now(), &json!({"records": [{"n": n}, {"n": n + 100}]})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        queued.push(body["queued"].clone());
    }
    set_active(&api, "hook-sink", true).await;
    wait_for("all twelve records", || posted(&sink).len() == 12).await;
    let (executions, _) = all_pages(&api, "/v1/flows/hooked/executions", "executions", 100).await;
    assert_eq!(executions.len(), 1, "one micro-batched execution: {executions:?}");
    assert_eq!(executions[0]["queued"], json!(queued), "it names every delivery, in order");
    assert_eq!(executions[0]["records_in"], 12);
    assert_eq!(executions[0]["trigger"], "webhook");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_flow_runs_its_work_in_acceptance_order_with_many_workers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    // One record per execution, four workers: only the flow's order keeps them in sequence.
    let api = start(dir.path(), settings(4, 100, 1)).await;
    webhook_flow(&api, &sink.url("/in")).await;
    let flow = json!({"name": "in-order", "ordered": true, "triggers": [{"type": "webhook", "tolerance_secs": 60}], "sinks": [{"id": "out", "plugin": "hook-sink"}]});
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["ordered"], true);
    let (status, _) = api.put("/v1/flows/in-order/webhook-secret", json!({"secret": SECRET})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    set_active(&api, "hook-sink", false).await;
    for n in 0..12 {
        let (status, body) = deliver(&api, "in-order", SECRET, now(), &json!({"records": [{"n": n}]})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    set_active(&api, "hook-sink", true).await;
    wait_for("twelve records", || posted(&sink).len() == 12).await;
    let numbers: Vec<Value> = posted(&sink).iter().map(|r| r["n"].clone()).collect();
    assert_eq!(numbers, (0..12).map(|n| json!(n)).collect::<Vec<_>>());
    let (executions, _) = all_pages(&api, "/v1/flows/in-order/executions", "executions", 5).await;
    assert_eq!(executions.len(), 12);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_answer_pages_that_together_hold_everything_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    let api = Api::start(dir.path()).await;
    webhook_flow(&api, &sink.url("/in")).await;
    for n in 0..7 {
        let (status, body) = api.post("/v1/flows/hooked/run", ADMIN, json!({"records": [{"n": n}]})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (executions, pages) = all_pages(&api, "/v1/flows/hooked/executions", "executions", 3).await;
    assert_eq!(pages, 3);
    let ids: Vec<u64> = executions.iter().filter_map(|e| e["id"].as_u64()).collect();
    assert_eq!(ids.len(), 7);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first, no repeats: {ids:?}");
    let (entries, pages) = all_pages(&api, "/v1/audit", "entries", 2).await;
    let (everything, _) = all_pages(&api, "/v1/audit", "entries", 1000).await;
    assert_eq!(entries, everything);
    assert!(pages >= 3, "{pages} pages of {} entries", entries.len());
    let (status, bad) = api.get("/v1/audit?limit=ten", ADMIN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    api.stop().await;
}

/// A TCP endpoint that accepts connections and never answers (an outside system that hangs), its
/// address, how many connections it accepted, and its task (abort it to close it).
async fn hanging_sink() -> (std::net::SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (addr, accepted, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_sink_cannot_hold_shutdown_past_its_deadline_and_the_work_stays_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, accepted, hanging) = hanging_sink().await;
    let config = plugboard_host_api::server::ServeConfig { shutdown_deadline_secs: Some(1), ..Api::config(dir.path()) };
    let api = Api::start_configured(config.clone(), ServerLimits::default()).await;
    webhook_flow(&api, &format!("http://{addr}/in")).await;
    let (status, body) = deliver(&api, "hooked", SECRET, now(), &json!({"records": [{"order": 1}]})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_for("the sink to be called", || accepted.load(Ordering::SeqCst) > 0).await;
    // The sink's own timeout is 10 s and it would be retried (about 30 s in all); the deadline is
    // 1 s. A bound of 8 s tells "stopped at the deadline" from "held hostage" with room to spare.
    tokio::time::timeout(Duration::from_secs(8), api.stop()).await.expect("shutdown ends at its deadline");

    // The acknowledged work is still queued: once the outside system answers again, it runs.
    hanging.abort();
    let _ = hanging.await;
    let sink = TestServer::start_at(addr, |_| (200, "{}".into())).await;
    let api = Api::start_configured(config, ServerLimits::default()).await;
    wait_for("the queued work after the restart", || !posted(&sink).is_empty()).await;
    assert_eq!(posted(&sink), vec![json!({"order": 1})]);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_delivery_does_not_fail_the_others_batched_with_it() {
    use crate::support::server::install;
    use plugboard_tests::SCHEMA_VALIDATOR;
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    let api = start(dir.path(), settings(1, 100, 500)).await;
    webhook_flow(&api, &sink.url("/in")).await;
    install(&api, SCHEMA_VALIDATOR).await;
    let schema = json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}});
    let (status, _) = api.put("/v1/plugins/schema-validator/config", json!({"values": {"schema": schema}})).await;
    assert_eq!(status, StatusCode::OK);
    let flow = json!({"name": "strict", "triggers": [{"type": "webhook", "tolerance_secs": 60}],
        "steps": [{"type": "validate", "id": "check", "plugin": "schema-validator", "on_invalid": "fail"}],
        "sinks": [{"id": "out", "plugin": "hook-sink"}]});
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = api.put("/v1/flows/strict/webhook-secret", json!({"secret": SECRET})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    set_active(&api, "hook-sink", false).await;
    for record in [json!({"id": "a"}), json!({"bad": 1}), json!({"id": "b"})] {
        let (status, body) = deliver(&api, "strict", SECRET, now(), &json!({"records": [record]})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    set_active(&api, "hook-sink", true).await;
    wait_for("both valid deliveries", || posted(&sink).len() == 2).await;
    let mut ids: Vec<String> = posted(&sink).iter().filter_map(|r| r["id"].as_str().map(String::from)).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
    // The failed batch, then each delivery on its own: only the bad one fails again.
    let mut executions = Vec::new();
    for _ in 0..100 {
        executions = all_pages(&api, "/v1/flows/strict/executions", "executions", 100).await.0;
        if executions.len() == 4 && executions.iter().all(|e| e["status"] != "running") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let statuses: Vec<&str> = executions.iter().filter_map(|e| e["status"].as_str()).collect();
    assert_eq!(statuses, ["failed", "succeeded", "failed", "succeeded"], "{executions:?}");
    assert_eq!(executions[0]["queued"].as_array().map(Vec::len), Some(3));
    wait_until_the_queue_is_empty(&api).await;
    let (status, refused) = api.post("/v1/tokens", ADMIN, json!({"name": "admin", "role": "invoker"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "the admin token's name is reserved: {refused}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_fails_its_micro_batch_as_a_whole_takes_no_other_delivery_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    let api = start(dir.path(), settings(1, 100, 500)).await;
    webhook_flow(&api, &sink.url("/in")).await;
    // A transform that fails the whole batch (a plugin error naming no record) when one of its
    // records says so: the hostile guest's `kv-script`, where `["fail"]` is such an operation.
    crate::support::server::install(&api, plugboard_tests::GUEST_HOSTILE).await;
    let (status, body) = api.put("/v1/plugins/hostile/grants", json!({"key_value": ["counters"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api.put("/v1/plugins/hostile/config", json!({"values": {"mode": "kv-script"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let flow = json!({"name": "hooked", "triggers": [{"type": "webhook", "tolerance_secs": 60}],
        "steps": [{"type": "transform", "id": "script", "plugin": "hostile", "retry": {"max_attempts": 1}}],
        "sinks": [{"id": "out", "plugin": "hook-sink"}]});
    let (status, body) = api.call(reqwest::Method::PUT, "/v1/flows/hooked", Some(ADMIN), Some(flow)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Three deliveries from three senders wait together, then run as one micro-batch.
    set_active(&api, "hook-sink", false).await;
    for op in [json!(["exists", "a"]), json!(["fail"]), json!(["exists", "b"])] {
        let (status, body) = deliver(&api, "hooked", SECRET, now(), &json!({"records": [op]})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    set_active(&api, "hook-sink", true).await;
    wait_for("the two good deliveries", || posted(&sink).len() == 2).await;
    wait_until_the_queue_is_empty(&api).await;
    assert_eq!(posted(&sink), vec![json!(false), json!(false)]);
    let (_, dlq) = api.get("/v1/flows/hooked/dlq", ADMIN).await;
    let letters = dlq["dead_letters"].as_array().expect("letters");
    assert_eq!(letters.len(), 1, "only the failing delivery's record: {dlq}");
    assert_eq!(letters[0]["record"]["value"], json!(["fail"]));
    let (executions, _) = all_pages(&api, "/v1/flows/hooked/executions", "executions", 100).await;
    let statuses: Vec<&str> = executions.iter().map(|e| e["status"].as_str().unwrap_or_default()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "failed").count(), 1, "the micro-batch: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == "completed-with-dead-letters").count(), 1, "{statuses:?}");
    api.stop().await;
}
