//! Plugins' key-value data in cluster mode (issue 27, point 5): one state across nodes, written
//! through the change log. A `dedupe` step on one node drops what another node acknowledged a
//! moment before; the quota holds exactly over commits made on different nodes at once; a node
//! that joins later holds the data; and a commit JetStream never stored fails the invocation
//! instead of being acknowledged.

use crate::support::cluster::{Node, within};
use crate::support::server::{ADMIN, Api};
use plugboard_tests::nats::{HeldProxy, NatsCluster};
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn invoke(api: &Api, records: Value) -> (StatusCode, Value) {
    api.post("/v1/plugins/hostile/invoke", ADMIN, json!({"records": records})).await
}

/// Switches the hostile plugin to `mode` through `admin` and waits until `other` runs it so:
/// `probe` succeeds there with records that `expected` accepts.
async fn switch_mode(admin: &Api, other: &Api, mode: &str, probe: Value, expected: impl Fn(&Value) -> bool) {
    let (status, body) = admin.put("/v1/plugins/hostile/config", json!({"values": {"mode": mode}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    within(&format!("mode {mode} on the other node"), async || {
        let (status, body) = invoke(other, probe.clone()).await;
        status == StatusCode::OK && expected(&body["records"])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_value_data_is_one_state_on_every_node() {
    let nats = NatsCluster::single().await.expect("nats-server");
    let url = nats.nodes[0].url.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = format!("url = \"{url}\"\n");
    // Node 1 reaches NATS through a proxy the test can hold, to make it lag behind the log.
    let proxy = HeldProxy::start(url.trim_start_matches("nats://")).await;
    let (a, b) = (
        Node::start_with(dir.path(), "node0", &cluster).await,
        Node::start_with(dir.path(), "node1", &format!("url = \"{}\"\n", proxy.url)).await,
    );
    a.api.trust_test_key().await;
    crate::support::server::install(&a.api, GUEST_HOSTILE).await;
    let (status, body) = a.api.put("/v1/plugins/hostile/grants", json!({"key_value": ["seen", "counters"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Dedupe: a record one node kept, the other drops at once, whichever node saw it first.
    let at_most_one = |records: &Value| records.as_array().is_some_and(|kept| kept.len() <= 1);
    switch_mode(&a.api, &b.api, "kv-dedupe", json!([{"id": "probe"}, {"id": "probe"}]), at_most_one).await;
    for round in 0..10 {
        let (first, second) = if round % 2 == 0 { (&a.api, &b.api) } else { (&b.api, &a.api) };
        let record = json!([{"id": format!("r{round}")}]);
        let (status, body) = invoke(first, record.clone()).await;
        assert_eq!((status, &body["records"]), (StatusCode::OK, &record), "round {round}: {body}");
        let (status, body) = invoke(second, record).await;
        assert_eq!((status, &body["records"]), (StatusCode::OK, &json!([])), "round {round}, the other node: {body}");
    }

    // Node 1 lagging behind the log (its connection held) still drops the record node 0 kept:
    // it catches up with the log before invoking (released after 500 ms here), instead of
    // reading its stale replica.
    proxy.hold(true);
    let record = json!([{"id": "while-node-1-lags"}]);
    assert_eq!(invoke(&a.api, record.clone()).await.1["records"], record);
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        proxy.hold(false);
    };
    let ((status, body), ()) = tokio::join!(invoke(&b.api, record), release);
    assert_eq!((status, &body["records"]), (StatusCode::OK, &json!([])), "the lagging node: {body}");

    // The quota (10,000 keys) over two nodes' commits at once: each invocation stages 6,000
    // keys, then waits for key `go`, which a third invocation commits; both then commit. Every
    // replica applies them in log order, so exactly one passes, everywhere.
    switch_mode(&a.api, &b.api, "kv-script", json!([["get", "probe"]]), |records| *records == json!([null])).await;
    let staging = |prefix: &str| -> Value {
        let mut ops: Vec<Value> = (0..6000).map(|i| json!(["set", format!("{prefix}-{i}"), "v"])).collect();
        ops.push(json!(["wait", "go"]));
        Value::Array(ops)
    };
    let (on_a, on_b) = (staging("a"), staging("b"));
    let (from_a, from_b, go) = tokio::join!(invoke(&a.api, on_a), invoke(&b.api, on_b), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        invoke(&a.api, json!([["set", "go", "1"]])).await
    });
    assert_eq!(go.0, StatusCode::OK, "{}", go.1);
    let mut statuses = [from_a.0, from_b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "a: {} b: {}", from_a.1, from_b.1);
    let refused = if from_a.0 == StatusCode::CONFLICT { &from_a.1 } else { &from_b.1 };
    assert_eq!(refused["code"], "key-value-quota", "{refused}");
    let keys = async |api: &Api| {
        let (status, body) = invoke(api, json!([["list"]])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["records"][0].as_array().map_or(0, Vec::len)
    };
    assert_eq!((keys(&a.api).await, keys(&b.api).await), (6001, 6001), "the same data on both nodes");

    // A node that joins later reads the data the others wrote.
    let c = Node::start_with(dir.path(), "node2", &cluster).await;
    within("the plugin on the joined node", async || invoke(&c.api, json!([["get", "go"]])).await.0 == StatusCode::OK)
        .await;
    assert_eq!(invoke(&c.api, json!([["get", "go"]])).await.1["records"], json!(["1"]));
    assert_eq!(keys(&c.api).await, 6001);

    // A commit JetStream never stored is not acknowledged: node 1 runs an invocation that writes
    // and waits for a key; once it waits (past its catch-up), its publishes are held, node 0
    // commits the key, node 1's guest returns and its commit never reaches JetStream — the
    // invocation fails, and the write is nowhere.
    let held_write = invoke(&b.api, json!([["set", "lost", "1"], ["wait", "go-lost"]]));
    let hold_then_go = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        proxy.hold_upstream(true);
        assert_eq!(invoke(&a.api, json!([["set", "go-lost", "1"]])).await.0, StatusCode::OK);
    };
    let ((status, body), ()) = tokio::join!(held_write, hold_then_go);
    // (The node answers once JetStream's acknowledgement did not come in time: 10 s.)
    assert!(status.is_server_error(), "an unstored commit is not acknowledged: {status} {body}");
    assert_eq!(invoke(&a.api, json!([["get", "lost"]])).await.1["records"], json!([null]));
    drop(proxy);
}
