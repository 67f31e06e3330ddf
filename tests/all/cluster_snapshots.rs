//! Snapshots of the cluster's state (issue 27, point 6), with real `plugboard` nodes over a real
//! `nats-server`: a node joining a cluster starts from the latest snapshot and applies only the
//! log after it, ending with the same state (tokens revoked stay revoked, audit ids agree) and
//! following what comes next; a snapshot replaced in the object store by someone without the
//! secrets key (a flipped byte, the chunks of one snapshot behind another's header) is refused,
//! and the joining node applies the whole log instead, with the same result.

use crate::support::cluster::{Node, node_log, within};
use crate::support::server::{ADMIN, Api};
use async_nats::jetstream;
use plugboard_tests::nats::NatsCluster;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

async fn create_token(api: &Api, name: &str) -> String {
    let (status, body) = api.post("/v1/tokens", ADMIN, json!({"name": name, "role": "invoker"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().expect("token").to_string()
}

/// What a node's state looks like from outside: its tokens and its audit log (ids included).
async fn state(api: &Api) -> (Value, Value) {
    let (_, tokens) = api.get("/v1/tokens", ADMIN).await;
    let (_, audit) = api.get("/v1/audit?limit=1000", ADMIN).await;
    (tokens["tokens"].clone(), audit["entries"].clone())
}

async fn snapshot_bytes(store: &jetstream::object_store::ObjectStore) -> Vec<u8> {
    let mut bytes = Vec::new();
    store.get("snapshot").await.expect("snapshot object").read_to_end(&mut bytes).await.expect("read");
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_starts_from_the_snapshot_and_a_tampered_one_is_refused() {
    let nats = NatsCluster::single().await.expect("nats-server");
    let url = &nats.nodes[0].url;
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Node::start_with(dir.path(), "node0", &format!("url = \"{url}\"\nsnapshot_every = 100\n")).await;
    let started = std::time::Instant::now();
    let mut tokens = Vec::new();
    for index in 0..80 {
        tokens.push(create_token(&first.api, &format!("t{index}")).await);
    }
    // A node writes snapshots once it has watched the others' heartbeats for 10 s.
    tokio::time::sleep(std::time::Duration::from_secs(11).saturating_sub(started.elapsed())).await;
    for index in 0..30 {
        let (status, _) =
            first.api.call(reqwest::Method::DELETE, &format!("/v1/tokens/t{index}"), Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    within("a snapshot", async || node_log(dir.path(), "node0").contains("wrote a cluster snapshot")).await;
    let expected = state(&first.api).await;

    // A new node starts from the snapshot, with the same state, and follows what comes after.
    let joined = Node::start_with(dir.path(), "node1", &format!("url = \"{url}\"\nsnapshot_every = 0\n")).await;
    let log = node_log(dir.path(), "node1");
    assert!(log.contains("started from the cluster snapshot"), "{log}");
    assert_eq!(state(&joined.api).await, expected);
    assert_eq!(joined.api.get("/v1/whoami", &tokens[0]).await.0, StatusCode::UNAUTHORIZED, "revoked stays revoked");
    assert_eq!(joined.api.get("/v1/whoami", &tokens[50]).await.0, StatusCode::OK);
    let later = create_token(&first.api, "later").await;
    within("a token created after the snapshot", async || {
        joined.api.get("/v1/whoami", &later).await.0 == StatusCode::OK
    })
    .await;

    // Someone with access to NATS but not the secrets key replaces the snapshot: a byte flipped
    // inside a chunk, then the chunks of one snapshot behind the header (id) of another.
    let js = jetstream::new(async_nats::connect(url).await.expect("connect"));
    let blobs = js.get_object_store("PLUGBOARD_BLOBS").await.expect("object store");
    let genuine = snapshot_bytes(&blobs).await;
    let mut flipped = genuine.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x20;
    let mut other_header = genuine.clone();
    other_header[8..24].copy_from_slice(&[7; 16]);
    let expected = state(&first.api).await;
    for (name, forged) in [("node2", flipped), ("node3", other_header)] {
        blobs.put("snapshot", &mut forged.as_slice()).await.expect("replace the snapshot");
        let node = Node::start_with(dir.path(), name, &format!("url = \"{url}\"\nsnapshot_every = 0\n")).await;
        let log = node_log(dir.path(), name);
        assert!(log.contains("the cluster snapshot was refused"), "{name}: {log}");
        assert!(!log.contains("started from the cluster snapshot"), "{name}: {log}");
        assert_eq!(state(&node.api).await, expected, "{name} applied the whole log");
        assert_eq!(node.api.get("/v1/whoami", &tokens[0]).await.0, StatusCode::UNAUTHORIZED);
    }
}
