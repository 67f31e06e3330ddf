//! What cluster mode costs, and how fast nodes agree, each measured against the embedded store in
//! the same run.
//!
//! `cargo bench -p plugboard-tests --bench cluster` starts Debian's `nats-server` with JetStream on
//! loopback and prints:
//! 1. HTTP invoke requests/s of json-mapper (1 KiB record, 16 connections): one cluster node ÷
//!    the embedded store (invocations read nothing from the store: expected ≈ 1);
//! 2. end-to-end webhook records/s (webhook → json-mapper → filter → http-sink, 64 senders) and
//!    accepted deliveries/s: one cluster node ÷ the embedded store (every acknowledgement is a
//!    JetStream publish acknowledged, instead of a group-committed fsync);
//! 3. propagation to a second node: from the answer of an activation (and of a key revocation)
//!    on node 1 until node 2 invokes the plugin (refuses it), median of several.
//!
//! Everything runs in this process and in one `nats-server` on the same two cores.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use plugboard_host_api::api::ServerLimits;
use plugboard_host_api::store::cluster::ClusterSettings;
use plugboard_tests::bench::{
    ADMIN, MAPPING, RECORDS_PER_DELIVERY, admin_call, bench_config, counting_sink, install_order_webhook,
    plugboard_server_with, send_deliveries, throughput, trusting_client,
};
use plugboard_tests::nats::NatsCluster;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 16;
const SENDERS: usize = 64;
const PROPAGATIONS: usize = 5;
const KEY_FILE: &str = "secrets.key";

/// Figures of one store.
struct Figures {
    invoke: f64,
    end_to_end: f64,
    accepted: f64,
}

/// Settings over `data`; every node of the run shares the secrets key of the run's directory.
fn config(data: &Path, cluster: Option<&str>) -> plugboard_host_api::server::ServeConfig {
    let mut config = bench_config(data);
    config.cluster = cluster.map(|url| ClusterSettings::new(url.into()));
    let root = data.ancestors().find(|dir| dir.join(KEY_FILE).exists() || dir.ends_with("run")).unwrap();
    config.secrets_key_file = Some(root.join(KEY_FILE));
    config
}

async fn measure(data: &Path, cluster: Option<&str>, budget: Duration) -> Figures {
    let limits = ServerLimits { max_in_flight: 4 * SENDERS, ..ServerLimits::default() };
    let (base, stop) = plugboard_server_with(config(data, cluster), limits).await;
    let client = trusting_client(&base).await;
    let (sink, received) = counting_sink().await;
    install_order_webhook(&client, &base, &sink).await;
    let record = json!({"records": [{"orderId": "A1", "payload": "x".repeat(960)}]});
    let invoke =
        throughput(&format!("{base}/v1/plugins/json-mapper/invoke"), Method::POST, Some(record), CONNECTIONS, budget)
            .await;
    let started = Instant::now();
    let (deliveries, kept, sending) = send_deliveries(&base, SENDERS, budget).await;
    while received.load(Ordering::Relaxed) < kept {
        assert!(started.elapsed() < Duration::from_secs(600), "records did not arrive");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let end_to_end = (deliveries as usize * RECORDS_PER_DELIVERY) as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(300)).await;
    Figures { invoke, end_to_end, accepted: deliveries as f64 / sending }
}

async fn invoke_status(client: &reqwest::Client, base: &str, name: &str) -> u16 {
    let answer = client
        .post(format!("{base}/v1/plugins/{name}/invoke"))
        .bearer_auth(ADMIN)
        .json(&json!({"records": [{"orderId": "A1"}]}))
        .send()
        .await
        .unwrap();
    answer.status().as_u16()
}

/// Time from now until node `base` answers an invocation of `name` with a status `wanted` accepts.
async fn until(client: &reqwest::Client, base: &str, name: &str, wanted: impl Fn(u16) -> bool) -> Duration {
    let started = Instant::now();
    while !wanted(invoke_status(client, base, name).await) {
        assert!(started.elapsed() < Duration::from_secs(30), "the change never reached the other node");
    }
    started.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Activations (upload + activate + configure) and key revocations through node 1, timed from
/// node 1's last answer until node 2 invokes (refuses) the plugin.
async fn propagation(dir: &Path, nats: &str) -> (Duration, Duration, Duration) {
    let (one, stop_one) = plugboard_server_with(config(&dir.join("one"), Some(nats)), ServerLimits::default()).await;
    let (two, stop_two) = plugboard_server_with(config(&dir.join("two"), Some(nats)), ServerLimits::default()).await;
    let client = reqwest::Client::new();
    let mut activations = Vec::new();
    let mut revocations = Vec::new();
    let mut compile_activation = Duration::ZERO;
    for round in 0..PROPAGATIONS {
        // A fresh key and plugin name each round: revoked keys stay revoked, names stay theirs.
        let key = plugboard_runtime::signing::SecretKey::generate().unwrap();
        let public = hex::encode(key.public().to_bytes());
        let added = client
            .post(format!("{one}/v1/keys"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": format!("k{round}"), "public_key": public}))
            .send()
            .await
            .unwrap();
        assert!(added.status().is_success(), "{}", added.status());
        let key_id = added.json::<Value>().await.unwrap()["key_id"].as_str().unwrap().to_string();
        let name = format!("mapper-{round}");
        let plugin = plugboard_tests::JSON_MAPPER;
        let manifest = plugboard_runtime::Manifest { name: name.clone(), ..plugin.manifest() };
        let signed = plugboard_runtime::signing::sign(&plugin.bytes(), &manifest, &key).unwrap();
        let upload = client
            .post(format!("{one}/v1/plugins?activate=true"))
            .bearer_auth(ADMIN)
            .body(signed)
            .send()
            .await
            .unwrap();
        assert!(upload.status().is_success(), "{}", upload.status());
        // json-mapper needs its mapping: the activation is complete once it is configured.
        let mapping: Value = serde_json::from_str(MAPPING).unwrap();
        let path = format!("/v1/plugins/{name}/config");
        admin_call(&client, &one, Method::PUT, &path, json!({"values": {"mapping": mapping}})).await;
        let seen = until(&client, &two, &name, |status| status == 200).await;
        if round == 0 {
            // The first one includes compiling the component on node 2 (later ones hit its cache).
            compile_activation = seen;
        } else {
            activations.push(seen);
        }
        let revoke = client.post(format!("{one}/v1/keys/{key_id}/revoke")).bearer_auth(ADMIN).send().await.unwrap();
        assert!(revoke.status().is_success(), "{}", revoke.status());
        revocations.push(until(&client, &two, &name, |status| status != 200).await);
    }
    let _ = (stop_one.send(()), stop_two.send(()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    (compile_activation, median(activations), median(revocations))
}

async fn run(budget: Duration) {
    let nats = NatsCluster::single().await.expect("nats-server (apt-get install nats-server)");
    let url = nats.nodes[0].url.clone();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("run");
    let embedded = measure(&dir.join("embedded"), None, budget).await;
    let cluster = measure(&dir.join("cluster"), Some(&url), budget).await;
    let (first, activation, revocation) = propagation(&dir.join("propagation"), &url).await;

    println!("plugboard cluster benchmarks (one nats-server on loopback, JetStream file storage)");
    let row = |what: &str, embedded: f64, cluster: f64, unit: &str| {
        println!("{what:<52} {embedded:>9.0} {cluster:>9.0} {unit:<10} {:>6.3}", cluster / embedded);
    };
    println!("{:<52} {:>9} {:>9} {:<10} {:>6}", "", "embedded", "cluster", "", "÷");
    row("HTTP invoke json-mapper 1 KiB, 16 connections", embedded.invoke, cluster.invoke, "req/s");
    row("webhook → 3-step flow, end to end, 64 senders", embedded.end_to_end, cluster.end_to_end, "records/s");
    row("accepted webhook deliveries", embedded.accepted, cluster.accepted, "/s");
    println!(
        "{:<52} {:>9.1} ms (first, compiling on node 2: {:.0} ms)",
        "activation on node 1 → invocable on node 2 (median)",
        activation.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3
    );
    println!(
        "{:<52} {:>9.1} ms",
        "key revocation on node 1 → refused on node 2 (median)",
        revocation.as_secs_f64() * 1e3
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let budget = if full { Duration::from_secs(10) } else { Duration::from_millis(300) };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(budget));
}
