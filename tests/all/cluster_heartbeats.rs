//! Heartbeats written by someone with access to NATS but not the secrets key (issue 27, point 4):
//! a live node's beat deleted again and again must not get its queued work adopted (and run
//! twice), and beats forged for a node that died must not strand its work.

use crate::support::cluster::{all_arrive, counting_sink, hooked_flow, node_log, start_nodes, within};
use crate::support::flows::{SECRET, deliver, now};
use crate::support::server::ADMIN;
use async_nats::jetstream;
use plugboard_tests::nats::NatsCluster;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Sends `count` deliveries of 3 records to `api`, numbered from `first`; answers the records'
/// numbers.
async fn send(api: &crate::support::server::Api, first: u64, count: u64) -> Vec<u64> {
    let mut acknowledged = Vec::new();
    for delivery in first..first + count {
        let records: Vec<Value> = (0..3).map(|i| json!({"seq": delivery * 3 + i})).collect();
        let (status, answer) = deliver(api, "hooked", SECRET, now(), &json!({"records": records})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        acknowledged.extend((0..3).map(|i| delivery * 3 + i));
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_beats_adopt_nothing_and_forged_beats_strand_nothing() {
    let nats = NatsCluster::single().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let (sink, arrived) = counting_sink(Duration::from_millis(800)).await;
    let mut nodes = start_nodes(dir.path(), &nats.nodes[0].url, 2, 1).await;
    hooked_flow(&nodes[0].api, &sink).await;
    within("the flow on node 1", async || nodes[1].api.get("/v1/flows/hooked", ADMIN).await.0 == StatusCode::OK).await;
    let victim = std::fs::read_to_string(dir.path().join("node1/node-id")).expect("node id").trim().to_string();
    let js = jetstream::new(async_nats::connect(&nats.nodes[0].url).await.expect("connect"));
    let beats = js.get_key_value("PLUGBOARD_NODES").await.expect("bucket");
    let logs = || (0..2).map(|i| node_log(dir.path(), &format!("node{i}"))).collect::<Vec<_>>().join("\n----\n");

    // Node 1 holds work (sent to it all along, run behind a slow sink) for longer than a node
    // timeout while its beat is deleted every 50 ms: node 0 must not adopt it.
    let mut acknowledged = Vec::new();
    let attacked = Instant::now();
    let mut round = 0;
    while attacked.elapsed() < Duration::from_secs(14) {
        let _ = beats.delete(&victim).await;
        if round % 6 == 0 {
            acknowledged.extend(send(&nodes[1].api, round, 1).await);
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(logs().matches("adopted the queued work").count(), 0, "a live node's work was adopted:\n{}", logs());
    let duplicates = all_arrive(&acknowledged, &arrived, 60, logs).await;
    assert_eq!(duplicates, 0, "records ran twice");

    // Node 1 dies with work queued; beats forged for it (unsealed, and sealed-looking junk) do
    // not keep it alive: node 0 adopts its work and every record arrives.
    acknowledged.extend(send(&nodes[1].api, 10_000, 20).await);
    nodes[1].kill();
    let forged = Instant::now();
    while forged.elapsed() < Duration::from_secs(14) {
        let _ = beats.put(&victim, now().to_string().into()).await;
        let _ = beats.put(&victim, format!("pbsealed1:{}", "0".repeat(60)).into()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    all_arrive(&acknowledged, &arrived, 90, logs).await;
    assert!(logs().contains("adopted the queued work"), "{}", logs());
    drop(nodes);
}
