//! `ordered: true` across a cluster (issue 27, point 5): deliveries of an ordered flow accepted
//! by different nodes reach its sink in the order the nodes accepted them, one batch at a time,
//! because the node whose queue holds the flow's runs is handed every new one.

use crate::support::cluster::{Node, within};
use crate::support::flows::{SECRET, deliver, install_sink, now};
use crate::support::server::ADMIN;
use plugboard_tests::nats::NatsCluster;
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the sink saw: every record's `seq` in arrival order, and the most batches it held at once.
#[derive(Default)]
struct Seen {
    order: Mutex<Vec<u64>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// A sink that holds each batch 100 ms, so batches run at once would overlap.
async fn slow_sink() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/in",
            axum::routing::post(move |axum::Json(batch): axum::Json<Vec<Value>>| async move {
                let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                seen.most_in_flight.fetch_max(now, Ordering::SeqCst);
                seen.order.lock().expect("lock").extend(batch.iter().filter_map(|r| r["seq"].as_u64()));
                tokio::time::sleep(Duration::from_millis(100)).await;
                seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                "{}"
            }),
        )
    };
    (format!("{}/in", serve(app).await), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_flow_runs_in_acceptance_order_across_nodes() {
    let nats = NatsCluster::single().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = format!("url = \"{}\"\n", nats.nodes[0].url);
    let nodes =
        [Node::start_with(dir.path(), "node0", &cluster).await, Node::start_with(dir.path(), "node1", &cluster).await];
    let (sink, seen) = slow_sink().await;
    let api = &nodes[0].api;
    api.trust_test_key().await;
    install_sink(api, "hook-sink", &sink).await;
    let flow = json!({"name": "in-order", "ordered": true, "triggers": [{"type": "webhook", "tolerance_secs": 300}], "sinks": [{"id": "out", "plugin": "hook-sink"}]});
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = api.put("/v1/flows/in-order/webhook-secret", json!({"secret": SECRET})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The same secret set again through node 1: a revision-checked write, which goes through only
    // once node 1 applied the flow and the first secret.
    within("node 1 up to date", async || {
        nodes[1].api.put("/v1/flows/in-order/webhook-secret", json!({"secret": SECRET})).await.0
            == StatusCode::NO_CONTENT
    })
    .await;

    // 30 deliveries, one after the other, alternating between the nodes: each node's own
    // workers would run its half at the same time as the other's.
    for seq in 0..30u64 {
        let node = &nodes[(seq % 2) as usize];
        let (status, body) = deliver(&node.api, "in-order", SECRET, now(), &json!({"records": [{"seq": seq}]})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "delivery {seq}: {body}");
    }
    within("every record at the sink", async || seen.order.lock().expect("lock").len() >= 30).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*seen.order.lock().expect("lock"), (0..30).collect::<Vec<u64>>(), "in acceptance order, once each");
    assert_eq!(seen.most_in_flight.load(Ordering::SeqCst), 1, "one batch at a time across the nodes");
    // Each node counts only the runs it runs: the one that handed its runs over counts none.
    // Both applied the same log (each reports how far it applied it).
    let mut applied = Vec::new();
    for node in &nodes {
        let mut text = String::new();
        within("an empty queue on every node", async || {
            let metrics = node.api.client.get(node.api.url("/metrics")).send().await.expect("metrics");
            text = metrics.text().await.expect("text");
            text.contains("plugboard_queue_depth 0")
        })
        .await;
        let sequence = text.lines().find_map(|line| line.strip_prefix("plugboard_cluster_applied_sequence "));
        applied.push(sequence.and_then(|n| n.trim().parse::<u64>().ok()).expect("the applied sequence"));
    }
    assert!(applied.iter().all(|&n| n >= 30), "30 deliveries and more applied by each node: {applied:?}");
}
