//! Flow throughput against native Rust, measured in the same run.
//!
//! `cargo bench -p plugboard-tests --bench flow` prints records/s of the flow
//! json-mapper → filter → http-sink, run by the flow engine into a local HTTP sink, ÷ the same logic
//! written in native Rust (serde_json reshaping, the host-side [`Condition`] with the filter's
//! operators, one pooled `reqwest` POST per batch) into the same sink. Goal ≥ 0.5.
//!
//! Each side processes batches of [`BATCH`] order records (about 300 bytes each, half of them kept
//! by the filter) back to back for the time budget; the figure is the median batch time. The sink
//! runs in this process and parses every batch it receives on both sides, so both pay for it alike.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use plugboard_runtime::flow::{Condition, FlowDefinition, FlowRun};
use plugboard_runtime::{Batch, Grant, Plugin, Record, Runtime, RuntimeConfig};
use plugboard_tests::{FILTER, HTTP_SINK, JSON_MAPPER};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BATCH: usize = 500;
const MAPPING: &str = r#"{"id": "$.orderId", "customer": "$.customer.id", "status": "$.status", "total": "$.orderTotal", "sku": "$.items[0].sku"}"#;
const CONDITION: &str = r#"{"all": [{"field": "$.status", "op": "equals", "value": "paid"}, {"field": "$.total", "op": "gt", "value": 99}]}"#;

fn orders(batch: usize) -> Batch {
    (0..batch)
        .map(|i| {
            Record::json(&json!({
                "orderId": format!("A-{i:06}"),
                "customer": {"id": i % 97, "name": "Ada Lovelace", "email": "ada@example.com"},
                "status": if i % 2 == 0 { "paid" } else { "open" },
                "orderTotal": 100 + (i * 37) % 900,
                "items": [{"sku": format!("SKU-{}", i % 13), "qty": 1 + i % 4, "price": 19.5}],
                "note": "leave at the door, ring twice"
            }))
        })
        .collect()
}

/// The local outside system: counts the records of every JSON array POSTed to it.
async fn sink() -> (String, Arc<AtomicUsize>) {
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
    (format!("{}/orders", plugboard_tests::serve(app).await), received)
}

/// The same pipeline in native Rust.
struct Native {
    client: reqwest::Client,
    url: String,
    condition: Condition,
    no_headers: Record,
}

impl Native {
    fn reshape(order: &Value) -> Value {
        let at = |pointer: &str| order.pointer(pointer).cloned().unwrap_or(Value::Null);
        json!({
            "id": at("/orderId"),
            "customer": at("/customer/id"),
            "status": at("/status"),
            "total": at("/orderTotal"),
            "sku": at("/items/0/sku"),
        })
    }

    async fn run(&self, batch: &Batch) -> usize {
        let kept: Vec<Value> = batch
            .iter()
            .map(|record| Native::reshape(&serde_json::from_slice(&record.value).unwrap()))
            .filter(|mapped| self.condition.matches(&self.no_headers, mapped))
            .collect();
        let response = self.client.post(&self.url).json(&kept).send().await.unwrap();
        assert!(response.status().is_success());
        response.bytes().await.unwrap();
        kept.len()
    }
}

fn load(runtime: &Runtime, plugin: plugboard_tests::SamplePlugin, config: &[(&str, &str)]) -> Plugin {
    let grant = Grant {
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        outbound_hosts: vec!["127.0.0.1".into()],
        ..Grant::default()
    };
    plugin.load(runtime, &grant)
}

/// Median seconds per call of `a` and of `b`, called in alternation for `budget` after a warm-up, so
/// both see the same machine (the other load on two cores moves both alike).
async fn paired_median_secs<A: AsyncFnMut(), B: AsyncFnMut()>(budget: Duration, mut a: A, mut b: B) -> (f64, f64) {
    for _ in 0..5 {
        a().await;
        b().await;
    }
    let (mut samples_a, mut samples_b) = (Vec::new(), Vec::new());
    let started = Instant::now();
    while started.elapsed() < budget || samples_a.len() < 10 {
        let t = Instant::now();
        a().await;
        samples_a.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        b().await;
        samples_b.push(t.elapsed().as_secs_f64());
    }
    let median = |mut samples: Vec<f64>| {
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    };
    (median(samples_a), median(samples_b))
}

async fn flow_throughput(budget: Duration) {
    let (url, received) = sink().await;
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let plugins: BTreeMap<String, Plugin> = [
        ("json-mapper".to_string(), load(&runtime, JSON_MAPPER, &[("mapping", MAPPING)])),
        ("filter".to_string(), load(&runtime, FILTER, &[("condition", CONDITION)])),
        ("http-sink".to_string(), load(&runtime, HTTP_SINK, &[("url", &url)])),
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
    .unwrap();
    let native = Native {
        client: reqwest::Client::new(),
        url: url.clone(),
        condition: serde_json::from_str(CONDITION).unwrap(),
        no_headers: Record::json(&Value::Null),
    };
    let input = orders(BATCH);

    // Both sides deliver the same records.
    let kept = native.run(&input).await;
    let run = FlowRun::new(flow, plugins.clone());
    let outcome = run.run(input.clone()).await;
    assert!(outcome.dead_letters.is_empty() && outcome.failure.is_none(), "{:?}", outcome.steps);
    assert_eq!(outcome.delivered as usize, kept);
    assert_eq!(received.load(Ordering::Relaxed), 2 * kept, "{:?}", outcome.steps);

    let (native_secs, flow_secs) = paired_median_secs(
        budget,
        async || {
            native.run(&input).await;
        },
        async || {
            let outcome = run.run(input.clone()).await;
            assert_eq!(outcome.delivered as usize, kept);
        },
    )
    .await;
    let rate = |secs: f64| BATCH as f64 / secs;
    let mut per_step: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for _ in 0..51 {
        for step in run.run(input.clone()).await.steps {
            per_step.entry(step.step).or_default().push(step.duration_ms);
        }
    }
    let breakdown: Vec<String> = ["map", "keep", "out"]
        .iter()
        .map(|step| {
            let times = per_step.get_mut(*step).unwrap();
            times.sort_by(f64::total_cmp);
            format!("{step} {:.2} ms", times[times.len() / 2])
        })
        .collect();
    println!("median per step: {}", breakdown.join(", "));
    println!(
        "flow json-mapper → filter → http-sink, {BATCH} records/batch ({kept} kept): plugboard {:.0} records/s, \
         native Rust {:.0} records/s, ratio {:.3} (goal ≥ 0.5)",
        rate(flow_secs),
        rate(native_secs),
        native_secs / flow_secs
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing and should
    // stay quick.
    let full = std::env::args().any(|a| a == "--bench");
    let budget = if full { Duration::from_secs(5) } else { Duration::from_millis(50) };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(flow_throughput(budget));
}
