//! Webhook throughput end to end and durable acknowledgement rate, each a ratio against a
//! baseline measured in the same run.
//!
//! `cargo bench -p plugboard-tests --bench webhook` prints:
//! 1. records/s of webhook → json-mapper → filter → http-sink through a real `plugboard serve`,
//!    with [`RECORDS_PER_DELIVERY`]-record deliveries from [`SENDERS`] concurrent senders, counted
//!    from the first delivery until the sink received every record the filter keeps, ÷ records/s
//!    of the same flow on the same records run in process by the flow engine (the flow
//!    benchmark's figure). Goal ≥ 0.3.
//! 2. accepted webhook deliveries/s (each answered 202 only once durably queued) ÷ `GET /healthz`
//!    requests/s on the same server with as many connections. Goal ≥ 0.25.
//! 3. fsyncs per acknowledged delivery: how many acknowledgements share one group commit.
//!
//! Everything runs in this process on loopback and shares the two cores, the server and the load
//! generator alike.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use plugboard_host_api::api::ServerLimits;
use plugboard_runtime::{Runtime, RuntimeConfig};
use plugboard_tests::bench::{
    RECORDS_PER_DELIVERY, counting_sink, install_order_webhook, order_flow, orders, plugboard_server, send_deliveries,
    trusting_client,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SENDERS: usize = 64;
const BATCH: usize = 500;

/// Records/s of the flow run in process on batches of [`BATCH`] orders, over `budget`.
async fn in_process(budget: Duration) -> f64 {
    let (url, _) = counting_sink().await;
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let run = order_flow(&runtime, &url);
    let input = orders(BATCH);
    for _ in 0..3 {
        run.run(input.clone()).await;
    }
    let started = Instant::now();
    let mut records = 0;
    while started.elapsed() < budget || records < 10 * BATCH {
        let outcome = run.run(input.clone()).await;
        assert!(outcome.dead_letters.is_empty() && outcome.failure.is_none());
        records += BATCH;
    }
    records as f64 / started.elapsed().as_secs_f64()
}

/// `GET /healthz` requests/s from [`SENDERS`] connections over `budget`.
async fn healthz_rate(base: &str, budget: Duration) -> f64 {
    let client = reqwest::Client::builder().pool_max_idle_per_host(SENDERS).build().unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (client, url, done) = (client.clone(), format!("{base}/healthz"), done.clone());
            tokio::spawn(async move {
                while started.elapsed() < budget {
                    let response = client.get(&url).send().await.unwrap();
                    assert!(response.status().is_success());
                    response.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines().find_map(|line| line.strip_prefix(name)?.trim().parse().ok()).unwrap_or(f64::NAN)
}

async fn webhook_end_to_end(budget: Duration) {
    let baseline = in_process(budget).await;
    let dir = std::env::temp_dir().join(format!("plugboard-bench-webhook-{}", std::process::id()));
    let limits = ServerLimits { max_in_flight: 4 * SENDERS, ..ServerLimits::default() };
    let (base, stop) = plugboard_server(&dir, limits).await;
    let client = trusting_client(&base).await;
    let (sink_url, received) = counting_sink().await;
    install_order_webhook(&client, &base, &sink_url).await;
    let metrics = async || client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let before = metrics().await;

    let started = Instant::now();
    let (deliveries, kept, sending) = send_deliveries(&base, SENDERS, budget).await;
    let waiting = Instant::now();
    while received.load(Ordering::Relaxed) < kept {
        assert!(
            waiting.elapsed() < Duration::from_secs(300),
            "{} of {kept} records arrived",
            received.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let end_to_end = (deliveries as usize * RECORDS_PER_DELIVERY) as f64 / started.elapsed().as_secs_f64();
    let after = metrics().await;
    let accepted = deliveries as f64 / sending;
    let healthz = healthz_rate(&base, budget).await;
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    let fsyncs = delta("plugboard_store_fsyncs_total");
    let (commits, flushing) =
        (delta("plugboard_store_commits_total"), delta("plugboard_store_flush_microseconds_total"));

    println!("plugboard webhook benchmarks ({SENDERS} senders, {RECORDS_PER_DELIVERY} records per delivery, loopback)");
    println!("{:<64} {:>10.0} records/s", "in-process flow json-mapper → filter → http-sink", baseline);
    println!("{:<64} {:>10.0} records/s", "webhook → same flow via plugboard serve, end to end", end_to_end);
    println!("{:<64} {:>10.3}   (goal ≥ 0.3)", "end to end ÷ in process", end_to_end / baseline);
    println!("{:<64} {:>10.0} /s", "accepted webhook deliveries (durable 202)", accepted);
    println!("{:<64} {:>10.0} /s", "GET /healthz", healthz);
    println!("{:<64} {:>10.3}   (goal ≥ 0.25)", "accepted deliveries ÷ /healthz", accepted / healthz);
    println!(
        "{:<64} {:>10.3}   ({fsyncs} fsyncs for {deliveries} deliveries)",
        "fsyncs per acknowledged delivery",
        fsyncs / deliveries as f64
    );
    println!(
        "{:<64} {:>10.1}   (flusher busy {:.0}% of the time, {:.2} ms per flush)",
        "durability waits per fsync (acknowledgements and executions)",
        commits / fsyncs,
        flushing / 1e4 / started.elapsed().as_secs_f64(),
        flushing / 1e3 / fsyncs
    );
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let budget = if full { Duration::from_secs(10) } else { Duration::from_millis(300) };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(webhook_end_to_end(budget));
}
