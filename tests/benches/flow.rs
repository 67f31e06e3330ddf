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

use plugboard_runtime::flow::Condition;
use plugboard_runtime::{Batch, Runtime, RuntimeConfig};
use plugboard_tests::bench::{CONDITION, counting_sink, order_flow, orders};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const BATCH: usize = 500;

/// The same pipeline in native Rust.
struct Native {
    client: reqwest::Client,
    url: String,
    /// The filter's condition, its paths parsed once (as the `filter` plugin does per batch).
    condition: plugboard_expr::Compiled,
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
            .filter(|mapped| self.condition.matches(mapped, &|_| None))
            .collect();
        let response = self.client.post(&self.url).json(&kept).send().await.unwrap();
        assert!(response.status().is_success());
        response.bytes().await.unwrap();
        kept.len()
    }
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
    let (url, received) = counting_sink().await;
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let native = Native {
        client: reqwest::Client::new(),
        url: url.clone(),
        condition: serde_json::from_str::<Condition>(CONDITION).unwrap().compile().unwrap(),
    };
    let input = orders(BATCH);

    // Both sides deliver the same records.
    let kept = native.run(&input).await;
    let run = order_flow(&runtime, &url);
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
