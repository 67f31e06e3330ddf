//! Usage counters in cluster mode (issue 27, point 5 in part): invocations through either node
//! count toward one total that every node answers, and a node that joins later (from the log or
//! a snapshot) answers it too.

use crate::support::cluster::{Node, install_filter, invoke_filter, within};
use crate::support::server::{ADMIN, Api};
use plugboard_tests::nats::NatsCluster;
use reqwest::StatusCode;

/// Invocations of FILTER that succeeded, as `api`'s node counts them.
async fn invocations(api: &Api) -> u64 {
    let (_, plugin) = api.get("/v1/plugins/filter", ADMIN).await;
    let usage = &plugin["usage"];
    usage["invocations"].as_u64().unwrap_or_default() - usage["errors"].as_u64().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_every_nodes_invocations_on_every_node() {
    let nats = NatsCluster::single().await.expect("nats-server");
    let url = &nats.nodes[0].url;
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = format!("url = \"{url}\"\n");
    let (a, b) =
        (Node::start_with(dir.path(), "node0", &cluster).await, Node::start_with(dir.path(), "node1", &cluster).await);
    install_filter(&a.api).await;
    // The probe may reach node 1 before it loaded or configured the plugin: those failed
    // invocations count too, as errors, so the test counts the ones that succeeded.
    within("the plugin on node 1", async || invoke_filter(&b.api).await == StatusCode::OK).await;
    for _ in 0..3 {
        assert_eq!(invoke_filter(&a.api).await, StatusCode::OK);
    }
    for _ in 0..4 {
        assert_eq!(invoke_filter(&b.api).await, StatusCode::OK);
    }
    // 3 through node 0, 4 + 1 (the probe that succeeded) through node 1.
    for api in [&a.api, &b.api] {
        within("every node's invocations counted everywhere", async || invocations(api).await == 8).await;
    }
    let joined = Node::start_with(dir.path(), "node2", &cluster).await;
    assert_eq!(invocations(&joined.api).await, 8, "a node that joins later reads the cluster's totals");
}
