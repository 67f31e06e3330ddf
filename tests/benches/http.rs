//! Control-plane benchmarks, each a ratio against a baseline measured in the same run.
//!
//! `cargo bench -p plugboard-tests --bench http` prints:
//! 1. HTTP invoke throughput of json-mapper on a 1 KiB record through `plugboard serve` ÷ a bare
//!    axum handler doing the same wasmtime call (goal ≥ 0.85), and ÷ an axum hello-world
//!    (goal ≥ 0.5);
//! 2. restart time with 200 installed plugins (goal < 1 s).
//!
//! The load generator runs in this process on loopback: [`WORKERS`] keep-alive connections, each
//! sending requests back to back for the time budget. It shares the two cores with the servers,
//! the same way for every server, so the ratios compare like with like.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use axum::Json;
use axum::routing::{get, post};
use plugboard_host_api::api::ServerLimits;
use plugboard_runtime::signing::{self, VerifyOptions};
use plugboard_runtime::{Grant, Manifest, Plugin, Record, Runtime, RuntimeConfig};
use plugboard_tests::bench::{ADMIN, plugboard_server, throughput, trusting_client};
use plugboard_tests::{JSON_MAPPER, test_key, test_trust};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const WORKERS: usize = 16;
const MAPPING: &str = r#"{"id": "$.id", "name": "$.name", "tags": "$.tags[*]", "payload": "$.payload"}"#;

fn body() -> Value {
    json!({"records": [{"id": 42, "name": "order", "tags": ["a", "b"], "payload": "x".repeat(960)}]})
}

fn mapper(runtime: &Runtime) -> Plugin {
    let grant = Grant { config: [("mapping".to_string(), MAPPING.to_string())].into(), ..Grant::default() };
    runtime.load_signed(&JSON_MAPPER.signed(), &test_trust(), &grant, VerifyOptions::default()).unwrap()
}

async fn http_invoke(budget: Duration) {
    let dir = std::env::temp_dir().join(format!("plugboard-bench-http-{}", std::process::id()));
    let (base, stop) = plugboard_server(&dir, ServerLimits::default()).await;
    let client = trusting_client(&base).await;
    let upload = client
        .post(format!("{base}/v1/plugins?activate=true"))
        .bearer_auth(ADMIN)
        .body(JSON_MAPPER.signed())
        .send()
        .await
        .unwrap();
    assert!(upload.status().is_success(), "{}", upload.status());
    client
        .put(format!("{base}/v1/plugins/json-mapper/config"))
        .bearer_auth(ADMIN)
        .json(&json!({"values": {"mapping": serde_json::from_str::<Value>(MAPPING).unwrap()}}))
        .send()
        .await
        .unwrap();

    // The same wasmtime call behind a bare axum handler.
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let plugin = mapper(&runtime);
    let bare = axum::Router::new().route(
        "/invoke",
        post(move |Json(body): Json<Value>| {
            let plugin = plugin.clone();
            async move {
                let records: Vec<Record> = body["records"].as_array().unwrap().iter().map(Record::json).collect();
                let out = plugin.transform(records).await.into_result().unwrap();
                Json(json!({"records": out.iter().map(|r| r.to_json().unwrap()).collect::<Vec<_>>()}))
            }
        }),
    );
    let bare_base = plugboard_tests::serve(bare).await;
    let hello_base = plugboard_tests::serve(axum::Router::new().route("/", get(|| async { "hello" }))).await;

    let plugboard = throughput(
        &format!("{base}/v1/plugins/json-mapper/invoke"),
        reqwest::Method::POST,
        Some(body()),
        WORKERS,
        budget,
    )
    .await;
    let bare = throughput(&format!("{bare_base}/invoke"), reqwest::Method::POST, Some(body()), WORKERS, budget).await;
    let hello = throughput(&format!("{hello_base}/"), reqwest::Method::GET, None, WORKERS, budget).await;
    println!("{:<58} {:>9.0} req/s", "HTTP invoke json-mapper 1 KiB via plugboard serve", plugboard);
    println!("{:<58} {:>9.0} req/s", "same wasmtime call in a bare axum handler", bare);
    println!("{:<58} {:>9.0} req/s", "axum hello-world", hello);
    println!("{:<58} {:>9.3}   (goal ≥ 0.85)", "plugboard ÷ bare axum + wasmtime", plugboard / bare);
    println!("{:<58} {:>9.3}   (goal ≥ 0.5)", "plugboard ÷ axum hello-world", plugboard / hello);
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn restart(plugins: usize) {
    let dir = std::env::temp_dir().join(format!("plugboard-bench-restart-{}", std::process::id()));
    let (base, stop) = plugboard_server(&dir, ServerLimits::default()).await;
    let client = trusting_client(&base).await;
    let bytes = JSON_MAPPER.bytes();
    let installing = Instant::now();
    for n in 0..plugins {
        let manifest = Manifest { name: format!("mapper-{n:03}"), ..JSON_MAPPER.manifest() };
        let signed = signing::sign(&bytes, &manifest, test_key()).unwrap();
        let response = client
            .post(format!("{base}/v1/plugins?activate=true"))
            .bearer_auth(ADMIN)
            .body(signed)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
    let install_time = installing.elapsed();
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let (base, stop) = plugboard_server(&dir, ServerLimits::default()).await;
    let ready = started.elapsed();
    let health: Value = client.get(format!("{base}/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["plugins_loaded"], plugins);
    println!(
        "{:<58} {:>9.3} s   (goal < 1 s; installing them took {:.1} s)",
        format!("restart with {plugins} active plugins, until ready"),
        ready.as_secs_f64(),
        install_time.as_secs_f64()
    );
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let budget = if full { Duration::from_secs(5) } else { Duration::from_millis(200) };
    let plugins = if full { 200 } else { 3 };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("plugboard HTTP benchmarks ({WORKERS} connections, loopback)");
    runtime.block_on(http_invoke(budget));
    runtime.block_on(restart(plugins));
}
