//! Pieces the benchmarks share: the order records and flow configuration of the flow benchmarks,
//! a counting HTTP sink, a real `plugboard serve` in this process, and the load generators (HTTP
//! requests back to back, signed webhook deliveries).

use crate::{FILTER, HTTP_SINK, JSON_MAPPER};
use plugboard_host_api::api::ServerLimits;
use plugboard_host_api::domain::webhook::sign_hook;
use plugboard_host_api::server::{self, ServeConfig};
use plugboard_runtime::flow::{FlowDefinition, FlowRun};
use plugboard_runtime::{Batch, Grant, Plugin, Record, Runtime};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Records per webhook delivery of the webhook benchmarks.
pub const RECORDS_PER_DELIVERY: usize = 5;

/// The webhook secret of the benchmarks' `orders` flow.
pub const WEBHOOK_SECRET: &str = "bench-webhook-secret-0123456789";

/// The admin token of benchmark servers.
pub const ADMIN: &str = "bench-admin-token-8d2b6f0a4c9e1f3b5d7a0c2e4f6b8d1a";

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
    plugboard_server_with(bench_config(data), limits).await
}

/// The settings of benchmark servers, over `data`.
pub fn bench_config(data: &std::path::Path) -> ServeConfig {
    ServeConfig {
        data: Some(data.to_path_buf()),
        listen: Some("127.0.0.1:0".parse().expect("address")),
        admin_token: Some(ADMIN.into()),
        ..ServeConfig::default()
    }
}

/// [`plugboard_server`] with `config`.
pub async fn plugboard_server_with(
    config: ServeConfig,
    limits: ServerLimits,
) -> (String, tokio::sync::oneshot::Sender<()>) {
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

/// One request, asserting success.
async fn send(client: &reqwest::Client, url: &str, method: &reqwest::Method, payload: Option<&Value>) {
    let mut request = client.request(method.clone(), url).bearer_auth(ADMIN);
    if let Some(payload) = payload {
        request = request.json(payload);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.bytes().await.unwrap();
}

/// Requests per second against `url` over `budget` from `connections` keep-alive connections,
/// each sending back to back (after 50 warm-up requests).
pub async fn throughput(
    url: &str,
    method: reqwest::Method,
    payload: Option<Value>,
    connections: usize,
    budget: Duration,
) -> f64 {
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build().unwrap();
    for _ in 0..50 {
        send(&client, url, &method, payload.as_ref()).await;
    }
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, method, payload) = (client.clone(), url.to_string(), method.clone(), payload.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while started.elapsed() < budget {
                    send(&client, &url, &method, payload.as_ref()).await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Installs json-mapper → filter → http-sink as the webhook flow `orders` (secret
/// [`WEBHOOK_SECRET`]) on the server at `base`, the sink posting to `sink_url`.
pub async fn install_order_webhook(client: &reqwest::Client, base: &str, sink_url: &str) {
    for plugin in [JSON_MAPPER, FILTER, HTTP_SINK] {
        let response = client
            .post(format!("{base}/v1/plugins?activate=true"))
            .bearer_auth(ADMIN)
            .body(plugin.signed())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
    let mapping: Value = serde_json::from_str(MAPPING).unwrap();
    let condition: Value = serde_json::from_str(CONDITION).unwrap();
    let put = Method::PUT;
    admin_call(client, base, put.clone(), "/v1/plugins/json-mapper/config", json!({"values": {"mapping": mapping}}))
        .await;
    admin_call(client, base, put.clone(), "/v1/plugins/filter/config", json!({"values": {"condition": condition}}))
        .await;
    admin_call(client, base, put.clone(), "/v1/plugins/http-sink/grants", json!({"outbound_hosts": ["127.0.0.1"]}))
        .await;
    admin_call(client, base, put.clone(), "/v1/plugins/http-sink/config", json!({"values": {"url": sink_url}})).await;
    let flow = json!({
        "name": "orders",
        "triggers": [{"type": "webhook", "tolerance_secs": 300}],
        "steps": [
            {"type": "transform", "id": "map", "plugin": "json-mapper"},
            {"type": "transform", "id": "keep", "plugin": "filter"}
        ],
        "sinks": [{"id": "out", "plugin": "http-sink"}]
    });
    admin_call(client, base, Method::POST, "/v1/flows", flow).await;
    admin_call(client, base, put, "/v1/flows/orders/webhook-secret", json!({"secret": WEBHOOK_SECRET})).await;
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Sends signed deliveries of [`RECORDS_PER_DELIVERY`] orders to the flow `orders` from `senders`
/// tasks for `budget` (retrying 429s); answers acknowledged deliveries, the records they carried
/// that the filter keeps, and the seconds spent sending.
pub async fn send_deliveries(base: &str, senders: usize, budget: Duration) -> (u64, usize, f64) {
    send_deliveries_from(base, senders, budget, 0).await
}

/// [`send_deliveries`] with record numbers from `offset` on (within each sender's million), so a
/// later call sends new deliveries rather than duplicates.
pub async fn send_deliveries_from(base: &str, senders: usize, budget: Duration, offset: usize) -> (u64, usize, f64) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(senders).build().unwrap();
    let acknowledged = Arc::new(AtomicU64::new(0));
    let kept = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|sender| {
            let (client, url) = (client.clone(), format!("{base}/v1/hooks/orders"));
            let (acknowledged, kept) = (acknowledged.clone(), kept.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while started.elapsed() < budget {
                    let first = (sender * 1_000_000) + offset + n * RECORDS_PER_DELIVERY;
                    let records: Vec<Value> = (first..first + RECORDS_PER_DELIVERY).map(order).collect();
                    let body = serde_json::to_vec(&json!({"records": records})).unwrap();
                    let timestamp = unix_now();
                    loop {
                        let response = client
                            .post(&url)
                            .header("x-plugboard-timestamp", timestamp.to_string())
                            .header("x-plugboard-signature", sign_hook(WEBHOOK_SECRET, "orders", timestamp, &body))
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await
                            .unwrap();
                        let status = response.status().as_u16();
                        // Read the answer, so the connection goes back to the pool.
                        response.bytes().await.unwrap();
                        match status {
                            202 => break,
                            429 => tokio::time::sleep(Duration::from_millis(50)).await,
                            status => panic!("webhook answered {status}"),
                        }
                    }
                    acknowledged.fetch_add(1, Ordering::Relaxed);
                    kept.fetch_add(
                        (first..first + RECORDS_PER_DELIVERY).filter(|i| i % 2 == 0).count(),
                        Ordering::Relaxed,
                    );
                    n += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (acknowledged.load(Ordering::Relaxed), kept.load(Ordering::Relaxed), started.elapsed().as_secs_f64())
}
