//! Pieces the benchmarks share: the order records and flow configuration of the flow benchmarks,
//! a counting HTTP sink, and a real `plugboard serve` in this process.

use plugboard_host_api::api::ServerLimits;
use plugboard_host_api::server::{self, ServeConfig};
use plugboard_runtime::flow::{FlowDefinition, FlowRun};
use plugboard_runtime::{Batch, Grant, Plugin, Record, Runtime};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The admin token of benchmark servers.
pub const ADMIN: &str = "bench-admin-token";

/// The json-mapper mapping of the flow benchmarks.
pub const MAPPING: &str = r#"{"id": "$.orderId", "customer": "$.customer.id", "status": "$.status", "total": "$.orderTotal", "sku": "$.items[0].sku"}"#;

/// The filter condition of the flow benchmarks: paid orders over 99 (half of [`order`]s).
pub const CONDITION: &str = r#"{"all": [{"field": "$.status", "op": "equals", "value": "paid"}, {"field": "$.total", "op": "gt", "value": 99}]}"#;

/// Order `i`, about 300 bytes of JSON; even ones pass [`CONDITION`].
pub fn order(i: usize) -> Value {
    json!({
        "orderId": format!("A-{i:06}"),
        "customer": {"id": i % 97, "name": "Ada Lovelace", "email": "ada@example.com"},
        "status": if i.is_multiple_of(2) { "paid" } else { "open" },
        "orderTotal": 100 + (i * 37) % 900,
        "items": [{"sku": format!("SKU-{}", i % 13), "qty": 1 + i % 4, "price": 19.5}],
        "note": "leave at the door, ring twice"
    })
}

/// `count` orders as records.
pub fn orders(count: usize) -> Batch {
    (0..count).map(|i| Record::json(&order(i))).collect()
}

/// The local outside system: counts the records of every JSON array POSTed to `/orders`; answers
/// its URL and the count.
pub async fn counting_sink() -> (String, Arc<AtomicUsize>) {
    let received = Arc::new(AtomicUsize::new(0));
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/orders",
            axum::routing::post(move |axum::Json(batch): axum::Json<Vec<Value>>| async move {
                received.fetch_add(batch.len(), Ordering::Relaxed);
                "{}"
            }),
        )
    };
    (format!("{}/orders", crate::serve(app).await), received)
}

/// A real `plugboard serve` over `data` on 127.0.0.1:0 in this process, with [`ADMIN`] as its
/// admin token; answers its base URL and a sender that stops it.
pub async fn plugboard_server(
    data: &std::path::Path,
    limits: ServerLimits,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = ServeConfig {
        data: Some(data.to_path_buf()),
        listen: Some("127.0.0.1:0".parse().expect("address")),
        admin_token: Some(ADMIN.into()),
        ..ServeConfig::default()
    };
    let server = server::start(&config, limits).await.expect("the server starts");
    let base = format!("http://{}", server.addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    (base, stop)
}

/// A client, after trusting the test publisher key on the server at `base`.
pub async fn trusting_client(base: &str) -> reqwest::Client {
    let client = reqwest::Client::new();
    let public = hex::encode(crate::test_key().public().to_bytes());
    let response = client
        .post(format!("{base}/v1/keys"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "bench", "public_key": public}))
        .send()
        .await
        .expect("trust the test key");
    assert!(response.status().is_success(), "{}", response.status());
    client
}

/// `method` `path` on the server at `base` as admin with a JSON `body`, asserting success.
pub async fn admin_call(client: &reqwest::Client, base: &str, method: reqwest::Method, path: &str, body: Value) {
    let response =
        client.request(method, format!("{base}{path}")).bearer_auth(ADMIN).json(&body).send().await.expect("request");
    let status = response.status();
    assert!(status.is_success(), "{path}: {status} {}", response.text().await.unwrap_or_default());
}

fn load(runtime: &Runtime, plugin: crate::SamplePlugin, config: &[(&str, &str)]) -> Plugin {
    let grant = Grant {
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        outbound_hosts: vec!["127.0.0.1".into()],
        ..Grant::default()
    };
    plugin.load(runtime, &grant)
}

/// The flow benchmarks' pipeline, json-mapper ([`MAPPING`]) → filter ([`CONDITION`]) → http-sink
/// into `sink_url`, run in this process by the flow engine.
pub fn order_flow(runtime: &Runtime, sink_url: &str) -> FlowRun {
    let plugins: BTreeMap<String, Plugin> = [
        ("json-mapper".to_string(), load(runtime, crate::JSON_MAPPER, &[("mapping", MAPPING)])),
        ("filter".to_string(), load(runtime, crate::FILTER, &[("condition", CONDITION)])),
        ("http-sink".to_string(), load(runtime, crate::HTTP_SINK, &[("url", sink_url)])),
    ]
    .into();
    let flow: FlowDefinition = serde_json::from_value(json!({
        "name": "bench",
        "steps": [
            {"type": "transform", "id": "map", "plugin": "json-mapper"},
            {"type": "transform", "id": "keep", "plugin": "filter"}
        ],
        "sinks": [{"id": "out", "plugin": "http-sink"}]
    }))
    .expect("a valid flow");
    FlowRun::new(flow, plugins)
}
