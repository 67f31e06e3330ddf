//! Several Plugboard nodes over real NATS JetStream (`plugboard serve --cluster`): each node is the
//! real `plugboard` binary in its own process with its own data directory, all sharing one
//! `nats-server` (or a 3-server NATS cluster with R3 streams) and one secrets key file.
//!
//! What must hold: a plugin uploaded through one node is invocable through the others; a key
//! revoked through one node stops its plugins on the others; configuration changed at once through
//! several nodes is never overwritten (a loser is told `conflict`, nothing lost); webhooks sent to
//! every node reach the sink, each delivery once, also when a node is SIGKILLed mid-flow (another
//! node adopts its queued work) and when a NATS server dies; a cron due time fires on one node.
//! The propagation times measured are printed (docs/cluster.md quotes them).

use crate::support::cluster::{
    all_arrive, counting_sink, hooked_flow, install_filter, invoke_filter, node_log, start_nodes, within, within_secs,
};
use crate::support::common::plugboard_binary;
use crate::support::flows::{SECRET, deliver, install_sink, now};
use crate::support::server::ADMIN;
use plugboard_tests::nats::NatsCluster;
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_plugins_keys_and_tokens_and_never_overwrite_each_other() {
    let nats = NatsCluster::single().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = start_nodes(dir.path(), &nats.nodes[0].url, 3, 1).await;
    let [a, b, c] = [&nodes[0].api, &nodes[1].api, &nodes[2].api];

    // Upload and activate through node a; invoke through b and c.
    let uploaded = Instant::now();
    install_filter(a).await;
    let mut activation = Vec::new();
    for api in [b, c] {
        activation.push(
            within("the activation reaching another node", async || invoke_filter(api).await == StatusCode::OK).await,
        );
    }
    eprintln!(
        "activation through node a: invocable through b after {:?}, c after {:?} (upload to answer: {:?})",
        activation[0],
        activation[1],
        uploaded.elapsed()
    );
    let (_, listed) = c.get("/v1/plugins", ADMIN).await;
    assert!(listed.to_string().contains("\"filter\""), "{listed}");

    // Revoke through b: refused through a and c.
    let (_, keys) = b.get("/v1/keys", ADMIN).await;
    let key_id = keys["keys"][0]["key_id"].as_str().expect("key id").to_string();
    let (status, body) = b.call(reqwest::Method::POST, &format!("/v1/keys/{key_id}/revoke"), Some(ADMIN), None).await;
    assert!(status.is_success(), "{status} {body}");
    let mut revocation = Vec::new();
    for api in [a, c] {
        revocation.push(
            within("the revocation reaching another node", async || invoke_filter(api).await != StatusCode::OK).await,
        );
    }
    eprintln!("revocation through node b: refused through a after {:?}, c after {:?}", revocation[0], revocation[1]);
    // A revoked key's plugin is not loaded back by anyone.
    let (status, _) =
        c.call(reqwest::Method::POST, "/v1/plugins/filter/versions/0.1.0/activate", Some(ADMIN), None).await;
    assert_ne!(status, StatusCode::OK, "a revoked key's plugin must not activate");

    // Tokens created at once through all three nodes: every one either created or refused with
    // `conflict` (then retried), never silently overwritten by another node's write.
    let mut created: Vec<String> = Vec::new();
    for round in 0..4 {
        let names: Vec<String> = (0..3).map(|n| format!("t{round}-{n}")).collect();
        let answers = futures::future::join_all(
            nodes
                .iter()
                .zip(&names)
                .map(|(node, name)| node.api.post("/v1/tokens", ADMIN, json!({"name": name, "role": "invoker"}))),
        )
        .await;
        for ((status, body), name) in answers.into_iter().zip(&names) {
            match status {
                StatusCode::CREATED => created.push(name.clone()),
                StatusCode::CONFLICT => assert_eq!(body["code"], "conflict", "{body}"),
                other => panic!("creating token {name}: {other} {body}"),
            }
        }
    }
    assert!(!created.is_empty());
    for (index, node) in nodes.iter().enumerate() {
        let started = Instant::now();
        loop {
            let (_, tokens) = node.api.get("/v1/tokens", ADMIN).await;
            let missing: Vec<&String> =
                created.iter().filter(|name| !tokens.to_string().contains(&format!("\"{name}\""))).collect();
            if missing.is_empty() {
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                // Every node's tokens and audit log: whether the log lost a write (all nodes
                // agree) or one node's cache did (the others list it).
                let mut report = String::new();
                for (other, peer) in nodes.iter().enumerate() {
                    let (_, listed) = peer.api.get("/v1/tokens", ADMIN).await;
                    let (_, audit) = peer.api.get("/v1/audit?limit=100&order=asc", ADMIN).await;
                    report.push_str(&format!("node{other} tokens {listed}\naudit {audit}\n"));
                }
                panic!("node{index} lacks tokens {missing:?} after 20 s\n{report}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    // A node with another secrets key cannot open the log: it refuses to start, saying why,
    // rather than serve a partial state.
    let stranger = dir.path().join("stranger");
    let output = tokio::task::spawn_blocking({
        let url = nats.nodes[0].url.clone();
        move || {
            Command::new(plugboard_binary())
                .args(["serve", "--listen", "127.0.0.1:0", "--cluster", &url, "--data"])
                .arg(&stranger)
                .env("PLUGBOARD_ADMIN_TOKEN", ADMIN)
                .stdin(Stdio::null())
                .output()
                .expect("run plugboard")
        }
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a node with another key started");
    assert!(stderr.contains("secrets_key_file"), "{stderr}");
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_spread_over_nodes_survive_a_killed_node_and_run_once() {
    let nats = NatsCluster::single().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let (sink, arrived) = counting_sink(Duration::from_millis(150)).await;
    let mut nodes = start_nodes(dir.path(), &nats.nodes[0].url, 3, 1).await;
    hooked_flow(&nodes[0].api, &sink).await;
    // The flow and its secret reach every node before they are sent to.
    for node in &nodes[1..] {
        within("the flow on every node", async || {
            let (status, _) = node.api.get("/v1/flows/hooked", ADMIN).await;
            status == StatusCode::OK
        })
        .await;
    }

    // One delivery sent to two nodes at once: queued once.
    let body = json!({"records": [{"seq": 1000}]});
    let at = now();
    let (first, second) = tokio::join!(
        deliver(&nodes[0].api, "hooked", SECRET, at, &body),
        deliver(&nodes[1].api, "hooked", SECRET, at, &body)
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::ACCEPTED],
        "one queued, one answered as a duplicate: {first:?} {second:?}"
    );
    let mut acknowledged = vec![1000];

    // 60 deliveries of 3 records, round robin over the nodes; node 2 is killed after 40, with its
    // work still queued behind the slow sink: another node adopts it.
    for delivery in 0..60u64 {
        if delivery == 40 {
            nodes[2].kill();
        }
        let target = if delivery >= 40 { (delivery % 2) as usize } else { (delivery % 3) as usize };
        let records: Vec<Value> = (0..3).map(|i| json!({"seq": delivery * 3 + i})).collect();
        let (status, answer) = deliver(&nodes[target].api, "hooked", SECRET, now(), &json!({"records": records})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        acknowledged.extend((0..3).map(|i| delivery * 3 + i));
    }
    let logs = || (0..3).map(|i| node_log(dir.path(), &format!("node{i}"))).collect::<Vec<_>>().join("\n----\n");
    let duplicates = all_arrive(&acknowledged, &arrived, 90, logs).await;
    let adoptions = logs().matches("adopted the queued work").count();
    eprintln!(
        "3 nodes, node 2 SIGKILLed after 40 of 60 deliveries: {} records acknowledged, 0 lost, {duplicates} delivered twice, {adoptions} adoption(s)",
        acknowledged.len()
    );
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_due_time_fires_on_one_node() {
    let nats = NatsCluster::single().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = start_nodes(dir.path(), &nats.nodes[0].url, 3, 1).await;
    let api = &nodes[0].api;
    api.trust_test_key().await;
    crate::support::server::install(api, FILTER).await;
    let flow = json!({
        "name": "every-second",
        "triggers": [{"type": "cron", "schedule": "* * * * * *"}],
        "steps": [{"type": "transform", "id": "keep", "plugin": "filter"}]
    });
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, _) = api.call(reqwest::Method::DELETE, "/v1/flows/every-second", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let seconds = started.elapsed().as_secs();
    let (_, listed) = nodes[1].api.get("/v1/flows/every-second/executions?limit=100", ADMIN).await;
    let executions = listed["executions"].as_array().map_or(0, Vec::len) as u64;
    eprintln!("cron every second on 3 nodes for {seconds} s: {executions} executions");
    assert!(executions >= 2, "cron fired: {listed}");
    assert!(executions <= seconds + 1, "each due time fires on one node, not on each: {executions} in {seconds} s");
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nats_server_loses_no_acknowledged_record() {
    let mut nats = NatsCluster::start(3).await.expect("3 nats-servers");
    let urls = nats.nodes.iter().map(|n| n.url.clone()).collect::<Vec<_>>().join(",");
    let dir = tempfile::tempdir().expect("tempdir");
    let (sink, arrived) = counting_sink(Duration::from_millis(20)).await;
    let nodes = start_nodes(dir.path(), &urls, 2, 3).await;
    hooked_flow(&nodes[0].api, &sink).await;
    within("the flow on node 1", async || nodes[1].api.get("/v1/flows/hooked", ADMIN).await.0 == StatusCode::OK).await;
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let sending = Instant::now();
    for delivery in 0..60u64 {
        if delivery == 20 {
            nats.nodes[0].kill();
        }
        let records: Vec<Value> = (0..2).map(|i| json!({"seq": delivery * 2 + i})).collect();
        let body = json!({"records": records});
        let at = now();
        // While a node reconnects and the streams elect new leaders a delivery may be refused
        // (never acknowledged); the sender retries it as is, as webhook senders do: a retry of
        // one that was stored after all is answered as a duplicate.
        let started = Instant::now();
        loop {
            let (status, answer) = deliver(&nodes[(delivery % 2) as usize].api, "hooked", SECRET, at, &body).await;
            if status == StatusCode::ACCEPTED || status == StatusCode::OK {
                break;
            }
            refused += 1;
            // Refused as unavailable (nothing stored, retry), never as an internal error.
            assert_eq!(
                (status, answer["code"].as_str()),
                (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")),
                "delivery {delivery}: {answer}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "delivery {delivery} refused for 60 s: {status} {answer}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        acknowledged.extend((0..2).map(|i| delivery * 2 + i));
    }
    let sent = sending.elapsed();
    let logs = || (0..2).map(|i| node_log(dir.path(), &format!("node{i}"))).collect::<Vec<_>>().join("\n----\n");
    let duplicates = all_arrive(&acknowledged, &arrived, 120, logs).await;
    eprintln!(
        "R3, one of 3 nats-servers SIGKILLed: {} records acknowledged in {sent:?}, all at the sink after {:?}; {refused} refusals retried, 0 lost, {duplicates} twice",
        acknowledged.len(),
        sending.elapsed()
    );
    if std::env::var_os("PLUGBOARD_CLUSTER_LOGS").is_some() {
        eprintln!("{}", logs());
    }
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_all_dead_letters_replays_those_other_nodes_stored() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let nats = NatsCluster::single().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = start_nodes(dir.path(), &nats.nodes[0].url, 2, 1).await;
    let [a, b] = [&nodes[0].api, &nodes[1].api];
    let up = Arc::new(AtomicUsize::new(0));
    let outage = {
        let up = up.clone();
        crate::support::common::TestServer::start(move |_| {
            if up.load(Ordering::SeqCst) == 0 { (503, "{}".into()) } else { (200, "{}".into()) }
        })
        .await
    };
    a.trust_test_key().await;
    install_sink(a, "down-sink", &outage.url("/in")).await;
    let flow =
        json!({"name": "outage", "sinks": [{"id": "deliver", "plugin": "down-sink", "retry": {"max_attempts": 1}}]});
    let (status, body) = a.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    within("the flow and its sink ready on node b", async || {
        let (_, sink) = b.get("/v1/plugins/down-sink", ADMIN).await;
        b.get("/v1/flows/outage", ADMIN).await.0 == StatusCode::OK && sink["health"]["status"] == "ready"
    })
    .await;

    // A letter through a (a takes its block of ids), then letters through b, stored later.
    for (api, n) in [(a, 0), (b, 1), (b, 2), (b, 3)] {
        let (_, execution) = api.post("/v1/flows/outage/run", ADMIN, json!({"records": [{"n": n}]})).await;
        assert_eq!(execution["status"], "completed-with-dead-letters", "{execution}");
    }
    within("every letter on node a", async || {
        let (_, dlq) = a.get("/v1/flows/outage/dlq", ADMIN).await;
        dlq["dead_letters"].as_array().is_some_and(|letters| letters.len() == 4)
    })
    .await;

    up.store(1, Ordering::SeqCst);
    let refused = outage.requests().len();
    let (status, replay) = a.post("/v1/flows/outage/dlq/replay", ADMIN, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    let (_, dlq) = a.get("/v1/flows/outage/dlq", ADMIN).await;
    assert_eq!(dlq["dead_letters"], json!([]), "replay-all left letters other nodes stored: {replay}");
    let delivered: Vec<Value> = outage.requests()[refused..]
        .iter()
        .flat_map(|r| serde_json::from_slice::<Vec<Value>>(&r.body).unwrap_or_default())
        .collect();
    assert_eq!(delivered.len(), 4, "{delivered:?}");
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_through_one_node_does_not_wait_for_compilations_on_another() {
    let nats = NatsCluster::single().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = start_nodes(dir.path(), &nats.nodes[0].url, 2, 1).await;
    let [a, b] = [&nodes[0].api, &nodes[1].api];
    a.trust_test_key().await;
    let token = a.token("short-lived", "invoker").await;
    within("the token on node b", async || b.get("/v1/plugins", &token).await.0 == StatusCode::OK).await;

    // A Python plugin (seconds to compile) through a, then at once the token's revocation: b
    // compiles the plugin when it applies its activation, and the revocation must not wait.
    crate::support::server::install(a, PY_ENRICH).await;
    let (status, _) = a.call(reqwest::Method::DELETE, "/v1/tokens/short-lived", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    within("the revocation on node b", async || b.get("/v1/plugins", &token).await.0 == StatusCode::UNAUTHORIZED).await;
    let (_, plugin) = b.get(&format!("/v1/plugins/{}", PY_ENRICH.name), ADMIN).await;
    assert_ne!(plugin["health"]["status"], "ready", "the revocation waited for a compilation: {plugin}");
    // A Python plugin compiles for seconds, longer on a machine busy with other tests.
    within_secs("the plugin compiled on node b", 90, async || {
        let (_, plugin) = b.get(&format!("/v1/plugins/{}", PY_ENRICH.name), ADMIN).await;
        plugin["health"]["status"] == "ready"
    })
    .await;
    drop(nodes);
}
