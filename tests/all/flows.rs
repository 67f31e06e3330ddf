//! Flows end to end: a real server, real plugins, real local HTTP servers as the outside systems.

use crate::support::common::TestServer;
use crate::support::flows::{install_sink, posted, wait_for};
use crate::support::server::{ADMIN, Api, install};
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

async fn order_sync_setup(api: &Api) -> (TestServer, TestServer) {
    api.trust_test_key().await;
    install(api, JSON_MAPPER).await;
    api.put(
        "/v1/plugins/json-mapper/config",
        json!({"values": {"mapping": {"id": "$.orderId", "total": "$.orderTotal"}}}),
    )
    .await;
    install(api, SCHEMA_VALIDATOR).await;
    let schema = json!({"type": "object", "required": ["id", "total"], "properties": {"id": {"type": "string"}, "total": {"type": "number", "minimum": 0}}});
    api.put("/v1/plugins/schema-validator/config", json!({"values": {"schema": schema}})).await;
    let big = TestServer::start(|_| (200, "{}".into())).await;
    let small = TestServer::start(|_| (200, "{}".into())).await;
    install_sink(api, "crm-sink", &big.url("/big")).await;
    install_sink(api, "mail-sink", &small.url("/small")).await;
    (big, small)
}

fn order_sync() -> Value {
    json!({
        "name": "order-sync",
        "steps": [
            {"type": "transform", "id": "map", "plugin": "json-mapper"},
            {"type": "validate", "id": "check", "plugin": "schema-validator"},
            {"type": "route", "id": "by-total", "routes": [{"when": {"field": "$.total", "op": "gte", "value": 1000}, "to": "big"}], "default": "small"}
        ],
        "branches": {
            "big": {"sinks": [{"id": "crm", "plugin": "crm-sink"}]},
            "small": {"sinks": [{"id": "mail", "plugin": "mail-sink"}]}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_sync_routes_records_and_dead_letters_invalid_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let (big, small) = order_sync_setup(&api).await;
    let (status, body) = api.post("/v1/flows", ADMIN, order_sync()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let input = json!({"records": [
        {"orderId": "A1", "orderTotal": 1500},
        {"orderId": "A2", "orderTotal": 20},
        {"orderTotal": 99},
        {"orderId": "A4", "orderTotal": 1000}
    ]});
    let (status, execution) = api.post("/v1/flows/order-sync/run", ADMIN, input).await;
    assert_eq!(status, StatusCode::OK, "{execution}");
    assert_eq!(posted(&big), vec![json!({"id": "A1", "total": 1500}), json!({"id": "A4", "total": 1000})]);
    assert_eq!(posted(&small), vec![json!({"id": "A2", "total": 20})]);
    assert_eq!(execution["status"], "completed-with-dead-letters");
    assert_eq!(execution["records_in"], 4);
    assert_eq!(execution["delivered"], 3);
    let steps: Vec<(&str, u64, u64)> = execution["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap_or(""),
                s["records_in"].as_u64().unwrap_or(0),
                s["records_out"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(steps, vec![("map", 4, 4), ("check", 4, 3), ("by-total", 3, 3), ("crm", 2, 2), ("mail", 1, 1)]);
    assert_eq!(execution["plugin_versions"]["json-mapper"], "0.1.0");

    let (_, dlq) = api.get("/v1/flows/order-sync/dlq", ADMIN).await;
    let letters = dlq["dead_letters"].as_array().expect("letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["step"], "check");
    assert_eq!(letters[0]["record"]["value"], json!({"id": null, "total": 99}));
    assert_eq!(letters[0]["reasons"], json!(["/id: expected string, found null"]));

    let id = execution["id"].as_u64().expect("id");
    let (status, stored) = api.get(&format!("/v1/executions/{id}"), ADMIN).await;
    assert_eq!((status, stored["status"].clone()), (StatusCode::OK, json!("completed-with-dead-letters")));
    let (_, executions) = api.get("/v1/flows/order-sync/executions", ADMIN).await;
    assert_eq!(executions["executions"].as_array().map(Vec::len), Some(1));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_dead_letters_and_replay_deliver_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    // Fails twice, then accepts.
    let calls = Arc::new(AtomicUsize::new(0));
    let flaky = {
        let calls = calls.clone();
        TestServer::start(move |_| {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 { (503, "{}".into()) } else { (200, "{}".into()) }
        })
        .await
    };
    // Down until `up` is set.
    let up = Arc::new(AtomicUsize::new(0));
    let outage = {
        let up = up.clone();
        TestServer::start(move |_| if up.load(Ordering::SeqCst) == 0 { (503, "{}".into()) } else { (200, "{}".into()) })
            .await
    };
    install_sink(&api, "flaky-sink", &flaky.url("/in")).await;
    install_sink(&api, "down-sink", &outage.url("/in")).await;
    let retry = json!({"max_attempts": 3, "initial_backoff_ms": 10, "max_backoff_ms": 50});
    for (name, sink) in [("flaky", "flaky-sink"), ("outage", "down-sink")] {
        let flow = json!({"name": name, "sinks": [{"id": "deliver", "plugin": sink, "retry": retry}]});
        let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let records = json!({"records": [{"n": 1}, {"n": 2}]});

    let (_, execution) = api.post("/v1/flows/flaky/run", ADMIN, records.clone()).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["steps"][0]["attempts"], 3);
    assert_eq!(execution["delivered"], 2);
    // Every attempt's error is in the execution, and every attempt counts in the plugin's usage.
    let retried = execution["steps"][0]["retried"].as_array().expect("retried attempts").clone();
    assert_eq!(retried.len(), 2, "{execution}");
    assert!(retried.iter().all(|e| e["code"] == "guest-error"), "{execution}");
    let (_, sink) = api.get("/v1/plugins/flaky-sink", ADMIN).await;
    assert_eq!(
        (sink["usage"]["invocations"].clone(), sink["usage"]["retries"].clone()),
        (json!(3), json!(2)),
        "{sink}"
    );
    assert_eq!(sink["usage"]["errors_by_code"], json!({"guest-error": 2}), "{sink}");
    let attempts = flaky.requests();
    assert_eq!(attempts.len(), 3, "two 503s, then accepted");
    let accepted: Vec<Value> = serde_json::from_slice(&attempts[2].body).expect("JSON");
    assert_eq!(accepted, vec![json!({"n": 1}), json!({"n": 2})]);

    let (_, execution) = api.post("/v1/flows/outage/run", ADMIN, records).await;
    assert_eq!(execution["status"], "completed-with-dead-letters");
    assert_eq!(execution["steps"][0]["error"]["code"], "guest-error");
    let (_, dlq) = api.get("/v1/flows/outage/dlq", ADMIN).await;
    let letters = dlq["dead_letters"].as_array().expect("letters").clone();
    assert_eq!(letters.len(), 2);
    assert!(letters.iter().all(|l| l["attempts"] == 3 && l["step"] == "deliver"));
    let refused = outage.requests().len();
    assert_eq!(refused, 3, "three attempts, all refused");

    // The outside system recovers; replay delivers and empties the queue.
    up.store(1, Ordering::SeqCst);
    let (status, replay) = api.post("/v1/flows/outage/dlq/replay", ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(replay["executions"][0]["status"], "succeeded");
    assert_eq!(replay["executions"][0]["trigger"], "replay");
    let after: Vec<Value> = outage.requests()[refused..]
        .iter()
        .flat_map(|r| serde_json::from_slice::<Vec<Value>>(&r.body).unwrap_or_default())
        .collect();
    assert_eq!(after, vec![json!({"n": 1}), json!({"n": 2})]);
    let (_, dlq) = api.get("/v1/flows/outage/dlq", ADMIN).await;
    assert_eq!(dlq["dead_letters"], json!([]));
    api.stop().await;
}

/// An outside system that answers 200 only once `parties` requests are waiting at the same time, and
/// 503 to a request left alone for five seconds: it accepts the batches only if they arrive together.
async fn rendezvous(parties: usize) -> (String, Arc<AtomicUsize>) {
    let barrier = Arc::new(tokio::sync::Barrier::new(parties));
    let accepted = Arc::new(AtomicUsize::new(0));
    let app = {
        let accepted = accepted.clone();
        axum::Router::new().route(
            "/{branch}",
            axum::routing::post(move || async move {
                match tokio::time::timeout(std::time::Duration::from_secs(5), barrier.wait()).await {
                    Ok(_) => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        axum::http::StatusCode::OK
                    }
                    Err(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
                }
            }),
        )
    };
    (serve(app).await, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_branches_run_in_parallel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let (base, accepted) = rendezvous(2).await;
    install_sink(&api, "left-sink", &format!("{base}/left")).await;
    install_sink(&api, "right-sink", &format!("{base}/right")).await;
    let once = json!({"max_attempts": 1});
    let flow = json!({
        "name": "both",
        "steps": [{"type": "fan-out", "id": "copy", "to": ["left", "right"]}],
        "branches": {
            "left": {"sinks": [{"id": "left-out", "plugin": "left-sink", "retry": once}]},
            "right": {"sinks": [{"id": "right-out", "plugin": "right-sink", "retry": once}]}
        }
    });
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Run one after the other, the first sink would wait alone and be refused.
    let (_, execution) = api.post("/v1/flows/both/run", ADMIN, json!({"records": [{"n": 1}, {"n": 2}]})).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["delivered"], 4);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    let steps: Vec<&str> =
        execution["steps"].as_array().expect("steps").iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(steps, ["copy", "left-out", "right-out"], "reports stay in branch order");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flows_are_refused_with_the_offending_step_and_nothing_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let (big, small) = order_sync_setup(&api).await;
    let mut missing = order_sync();
    missing["steps"][0]["plugin"] = json!("no-such-plugin");
    let mut sink_as_transform = order_sync();
    sink_as_transform["steps"][0]["plugin"] = json!("crm-sink");
    let mut cycle = order_sync();
    cycle["branches"]["big"] = json!({"steps": [{"type": "fan-out", "id": "loop", "to": ["small"]}]});
    cycle["branches"]["small"] = json!({"steps": [{"type": "route", "id": "back", "routes": [], "default": "big"}]});
    let mut bad_condition = order_sync();
    bad_condition["steps"][2]["routes"][0]["when"]["field"] = json!("total");
    let mut unknown_field = order_sync();
    unknown_field["retries"] = json!(3);
    let mut bad_cron = order_sync();
    bad_cron["triggers"] = json!([{"type": "cron", "schedule": "61 * * * *"}]);
    let mut bad_zone = order_sync();
    bad_zone["triggers"] = json!([{"type": "cron", "schedule": "*/5 * * * *", "timezone": "Mars/Olympus"}]);
    let mut sink_as_source = order_sync();
    sink_as_source["source"] = json!({"id": "pull", "plugin": "crm-sink"});
    let mut missing_branch = order_sync();
    missing_branch["steps"][2]["default"] = json!("nowhere");
    let cases = [
        (missing, "step `map` uses plugin `no-such-plugin`, which is not installed"),
        (sink_as_transform, "step `map` needs a transformer, but `crm-sink` is a sink"),
        (cycle, "branches form a cycle: big -> small -> big"),
        (bad_condition, "step `by-total`: field `total` must be `$.path` or `header:NAME`"),
        (unknown_field, "unknown field `retries`"),
        (missing_branch, "step `by-total` sends records to branch `nowhere`, which does not exist"),
        (sink_as_source, "step `pull` needs a source, but `crm-sink` is a sink"),
        (bad_cron, "invalid cron expression `61 * * * *`"),
        (bad_zone, "unknown time zone `Mars/Olympus`"),
    ];
    for (flow, expected) in cases {
        let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
        assert_eq!((status, body["code"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("flow-invalid")), "{body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(expected), "{body} should say {expected}");
    }
    let (_, flows) = api.get("/v1/flows", ADMIN).await;
    assert_eq!(flows["flows"], json!([]));
    let (status, _) = api.post("/v1/flows/order-sync/run", ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(big.requests().is_empty() && small.requests().is_empty(), "nothing ran");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_feeds_the_flow_and_its_cursor_advances_after_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    let outside = TestServer::start(|request| match request.path.as_str() {
        "/orders" => (200, json!({"data": [{"id": 1}, {"id": 2}], "next": "/orders?page=2"}).to_string()),
        "/orders?page=2" => (200, json!({"data": [{"id": 3}], "next": null}).to_string()),
        _ => (404, "{}".into()),
    })
    .await;
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    install(&api, HTTP_SOURCE).await;
    api.put("/v1/plugins/http-source/grants", json!({"outbound_hosts": ["127.0.0.1"]})).await;
    let config = json!({"values": {"url": outside.url("/orders"), "records_path": "$.data", "next_path": "$.next"}});
    api.put("/v1/plugins/http-source/config", config).await;
    install(&api, FILTER).await;
    api.put(
        "/v1/plugins/filter/config",
        json!({"values": {"condition": {"field": "$.id", "op": "not-equals", "value": 2}}}),
    )
    .await;
    install_sink(&api, "orders-sink", &sink.url("/in")).await;
    let flow = json!({
        "name": "pull",
        "source": {"id": "read", "plugin": "http-source", "max_records": 2},
        "steps": [{"type": "transform", "id": "keep", "plugin": "filter"}],
        "sinks": [{"id": "deliver", "plugin": "orders-sink"}]
    });
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (_, first) = api.post("/v1/flows/pull/run", ADMIN, json!({})).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["records_in"], 2);
    assert_eq!(posted(&sink), vec![json!({"id": 1})]);
    // The second run starts where the first one's delivered page ended.
    let (_, second) = api.post("/v1/flows/pull/run", ADMIN, json!({})).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(posted(&sink), vec![json!({"id": 1}), json!({"id": 3})]);
    let pages: Vec<String> = outside.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(pages, vec!["/orders", "/orders?page=2"]);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_flow_runs_every_second_and_keeps_its_cursor_across_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    api.trust_test_key().await;
    // Page n lists record n and links to page n+1: every run reads one new page.
    let outside = TestServer::start(|request| {
        let page: u64 = request.path.split("page=").nth(1).and_then(|p| p.parse().ok()).unwrap_or(1);
        (200, json!({"data": [{"id": page}], "next": format!("/orders?page={}", page + 1)}).to_string())
    })
    .await;
    let sink = TestServer::start(|_| (200, "{}".into())).await;
    install(&api, HTTP_SOURCE).await;
    api.put("/v1/plugins/http-source/grants", json!({"outbound_hosts": ["127.0.0.1"]})).await;
    let config = json!({"values": {"url": outside.url("/orders"), "records_path": "$.data", "next_path": "$.next"}});
    api.put("/v1/plugins/http-source/config", config).await;
    install(&api, FILTER).await;
    api.put("/v1/plugins/filter/config", json!({"values": {"condition": {"field": "$.id", "op": "exists"}}})).await;
    install_sink(&api, "cron-sink", &sink.url("/in")).await;
    let flow = json!({
        "name": "every-second",
        "triggers": [{"type": "cron", "schedule": "* * * * * *", "timezone": "Europe/Paris"}],
        "source": {"id": "read", "plugin": "http-source", "max_records": 1},
        "steps": [{"type": "transform", "id": "keep", "plugin": "filter"}],
        "sinks": [{"id": "deliver", "plugin": "cron-sink"}]
    });
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    wait_for("three cron runs", || posted(&sink).len() >= 3).await;
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/flows/every-second", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "stop the schedule");
    let delivered = posted(&sink);
    assert_eq!(
        delivered[..3],
        [json!({"id": 1}), json!({"id": 2}), json!({"id": 3})],
        "each run continued at the cursor"
    );
    let (_, executions) = api.get("/v1/flows/every-second/executions", ADMIN).await;
    assert!(executions["executions"].as_array().expect("list").iter().all(|e| e["trigger"] == "cron"));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_many_tiny_records_is_bounded_in_what_it_costs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Api::config(dir.path());
    config.caps.max_records = Some(300);
    let api = Api::start_configured(config, plugboard_host_api::api::ServerLimits::default()).await;
    api.trust_test_key().await;
    let down = TestServer::start(|_| (503, "{}".into())).await;
    install_sink(&api, "down-sink", &down.url("/in")).await;
    let flow =
        json!({"name": "tiny", "sinks": [{"id": "deliver", "plugin": "down-sink", "retry": {"max_attempts": 1}}]});
    assert_eq!(api.post("/v1/flows", ADMIN, flow).await.0, StatusCode::CREATED);

    // More records than the per-batch cap: refused up front, nothing runs, nothing is dead-lettered.
    let many: Vec<Value> = (0..301).map(|_| json!({})).collect();
    let (status, refusal) = api.post("/v1/flows/tiny/run", ADMIN, json!({"records": many})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{refusal}");
    assert_eq!(refusal["code"], "input-too-large");
    assert!(down.requests().is_empty());

    // At the cap, a failing batch leaves one dead letter per record in the queue, but the execution
    // record keeps only the first hundred inline and counts the rest.
    let many: Vec<Value> = (0..300).map(|n| json!({"n": n})).collect();
    let (status, execution) = api.post("/v1/flows/tiny/run", ADMIN, json!({"records": many})).await;
    assert_eq!(status, StatusCode::OK, "{execution}");
    assert_eq!(execution["status"], "completed-with-dead-letters");
    assert_eq!(execution["dead_letter_count"], 300);
    assert_eq!(execution["dead_letters"].as_array().map(Vec::len), Some(100));
    let (_, stored) = api.get(&format!("/v1/executions/{}", execution["id"]), ADMIN).await;
    assert_eq!(stored["dead_letters"].as_array().map(Vec::len), Some(100));
    let (_, page) = api.get("/v1/flows/tiny/dlq?limit=1000", ADMIN).await;
    assert_eq!(page["dead_letters"].as_array().map(Vec::len), Some(300));
    api.stop().await;
}
