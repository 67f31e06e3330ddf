//! How long a node joining a cluster takes to start, against the length of the cluster's
//! history: replaying the whole change log, and starting from the latest snapshot.
//!
//! `cargo test -p plugboard-tests --bench cluster_start -- --bench` starts Debian's `nats-server`
//! with JetStream on loopback, twice: once with snapshots off and once with a snapshot every
//! [`SNAPSHOT_EVERY`] changes. A first node takes webhook deliveries (webhook → json-mapper →
//! filter → http-sink, 64 senders) until the change log holds each history length; then a new node
//! with an empty data directory starts, and the time from `server::start` to its answer (open,
//! import, catch up, listen) is printed, with the ratio of the two.
//!
//! `-- --bench --long` measures instead a node joining after 1,000,000 tiny changes over a small
//! state (see [`long_history`]; `--changes=N` for another length).
//!
//! Everything runs in this process and in one `nats-server` on the same two cores.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use async_nats::jetstream;
use plugboard_host_api::api::ServerLimits;
use plugboard_host_api::store::cluster::ClusterSettings;
use plugboard_tests::bench::{
    ADMIN, RECORDS_PER_DELIVERY, bench_config, counting_sink, install_order_webhook, plugboard_server_with,
    send_deliveries_from, trusting_client,
};
use plugboard_tests::nats::NatsCluster;
use std::path::Path;
use std::time::{Duration, Instant};

const SENDERS: usize = 64;
/// Changes between snapshots in the second run.
const SNAPSHOT_EVERY: u64 = 5_000;
const KEY_FILE: &str = "secrets.key";

fn config(dir: &Path, name: &str, url: &str, snapshot_every: u64) -> plugboard_host_api::server::ServeConfig {
    let mut config = bench_config(&dir.join(name));
    let mut cluster = ClusterSettings::new(url.into());
    cluster.snapshot_every = snapshot_every;
    config.cluster = Some(cluster);
    config.secrets_key_file = Some(dir.join(KEY_FILE));
    config
}

/// The change log's length now.
async fn history(url: &str) -> u64 {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let stream = js.get_stream("PLUGBOARD_CHANGES").await.unwrap();
    stream.get_info().await.unwrap().state.last_sequence
}

/// Start-up times of a joining node at each of `lengths` changes of history.
async fn run(lengths: &[u64], snapshot_every: u64) -> Vec<(u64, Duration)> {
    let nats = NatsCluster::single().await.expect("nats-server (apt-get install nats-server)");
    let url = nats.nodes[0].url.clone();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let limits = ServerLimits { max_in_flight: 4 * SENDERS, ..ServerLimits::default() };
    let (base, stop) = plugboard_server_with(config(dir, "first", &url, snapshot_every), limits).await;
    let client = trusting_client(&base).await;
    let (sink, _) = counting_sink().await;
    install_order_webhook(&client, &base, &sink).await;
    let mut figures = Vec::new();
    let mut sent = 0;
    for (index, length) in lengths.iter().enumerate() {
        while history(&url).await < *length {
            let (deliveries, _, _) =
                send_deliveries_from(&base, SENDERS, Duration::from_millis(500), sent * RECORDS_PER_DELIVERY).await;
            // Each sender numbers its records from the offset: move past the most any sent.
            sent += usize::try_from(deliveries).unwrap();
        }
        // The last snapshot due has been written (the writer uploads in the background).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let at = history(&url).await;
        let started = Instant::now();
        let (joined, stop_joined) =
            plugboard_server_with(config(dir, &format!("joined{index}"), &url, 0), ServerLimits::default()).await;
        let elapsed = started.elapsed();
        let ready = reqwest::Client::new().get(format!("{joined}/v1/whoami")).bearer_auth(ADMIN).send().await.unwrap();
        assert!(ready.status().is_success());
        let _ = stop_joined.send(());
        figures.push((at, elapsed));
    }
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(300)).await;
    figures
}

async fn bench(lengths: &[u64]) {
    let replayed = run(lengths, 0).await;
    let snapshotted = run(lengths, SNAPSHOT_EVERY).await;
    println!("plugboard cluster start-up against history (one nats-server on loopback)");
    println!(
        "{:>10} {:>16} {:>10} {:>24} {:>8}",
        "changes", "whole log (ms)", "changes", "snapshot every 5k (ms)", "÷"
    );
    for ((replay_at, replay), (snapshot_at, snapshot)) in replayed.iter().zip(&snapshotted) {
        let (replay, snapshot) = (replay.as_secs_f64() * 1e3, snapshot.as_secs_f64() * 1e3);
        println!("{replay_at:>10} {replay:>16.0} {snapshot_at:>10} {snapshot:>24.0} {:>8.3}", snapshot / replay);
    }
}

/// A long history over a small state: `changes` tiny changes (one flow cursor set again and
/// again), published straight to the log, sealed as a node would, by a writer named `history`
/// (`--long`: 1,000,000). The first node applies them and writes its snapshots; then a new node
/// joins. Its start-up is bounded by the state and the log after the latest snapshot, not by
/// the history: printed beside the time the first node took to apply the history.
async fn long_history(changes: u64) {
    let nats = NatsCluster::single().await.expect("nats-server (apt-get install nats-server)");
    let url = nats.nodes[0].url.clone();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let snapshot_every = 20_000;
    let (base, stop) = plugboard_server_with(config(dir, "first", &url, snapshot_every), ServerLimits::default()).await;
    let key = plugboard_host_api::store::sealed::SecretsKey::load_or_create(&dir.join(KEY_FILE)).unwrap();
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    let subject = "plugboard.changes.work";
    let started = Instant::now();
    let mut acks = Vec::new();
    for counter in 1..=changes {
        let plain = serde_json::json!({"Inline": {"node": "history", "counter": counter, "expected": null,
            "body": {"Change": {"ops": [{"PutCursor": {"flow": "history", "cursor": counter.to_string()}}]}}}});
        let sealed = plugboard_host_api::store::cluster::envelope::seal_message(
            &key,
            subject,
            &serde_json::to_vec(&plain).unwrap(),
        )
        .unwrap();
        acks.push(js.publish(subject, sealed.into()).await.unwrap());
        if acks.len() == 4096 {
            for ack in acks.drain(..) {
                ack.await.unwrap();
            }
        }
    }
    for ack in acks {
        ack.await.unwrap();
    }
    let published = started.elapsed();
    let at = history(&url).await;
    // The first node has applied the history once its metric says so.
    let client = reqwest::Client::new();
    let applied_by_first = loop {
        let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        let applied = metrics
            .lines()
            .find_map(|line| line.strip_prefix("plugboard_cluster_applied_sequence "))
            .and_then(|value| value.trim().parse::<u64>().ok());
        if applied.is_some_and(|applied| applied >= at) {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let joining = Instant::now();
    let (joined, stop_joined) = plugboard_server_with(config(dir, "joined", &url, 0), ServerLimits::default()).await;
    let join = joining.elapsed();
    let ready = reqwest::Client::new().get(format!("{joined}/v1/whoami")).bearer_auth(ADMIN).send().await.unwrap();
    assert!(ready.status().is_success());
    println!("plugboard cluster start-up after a long history over a small state (one nats-server on loopback)");
    println!(
        "  history: {at} changes, published in {:.1} s, applied by the first node after {:.1} s",
        published.as_secs_f64(),
        applied_by_first.as_secs_f64()
    );
    println!("  a node joining then (snapshot every {snapshot_every}): ready in {:.0} ms", join.as_secs_f64() * 1e3);
    let _ = (stop_joined.send(()), stop.send(()));
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if args.iter().any(|a| a == "--long") {
        let given = args.iter().find_map(|a| a.strip_prefix("--changes=")).and_then(|n| n.parse().ok());
        runtime.block_on(long_history(given.unwrap_or(if full { 1_000_000 } else { 20_000 })));
        return;
    }
    let lengths: &[u64] = if full { &[10_000, 30_000, 60_000] } else { &[1_000, 6_000] };
    runtime.block_on(bench(lengths));
}
