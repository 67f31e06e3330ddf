//! Cluster nodes as child processes: each the real `plugboard serve --cluster` binary with its own
//! data directory, sharing one NATS; helpers to wait for what propagates between them.

use crate::support::common::plugboard_binary;
use crate::support::flows::{SECRET, install_sink};
use crate::support::server::{ADMIN, Api};
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One `plugboard serve --cluster` process.
pub(crate) struct Node {
    child: Child,
    pub(crate) api: Api,
}

impl Node {
    /// Starts a node over `dir/name`, joined to `nats`, with `replicas` copies of what it creates.
    async fn start(dir: &Path, name: &str, nats: &str, replicas: usize) -> Node {
        Node::start_with(dir, name, &format!("url = \"{nats}\"\nreplicas = {replicas}\n")).await
    }

    /// The node's process over `dir/name`, with `cluster` as its `[cluster]` table.
    fn spawn(dir: &Path, name: &str, cluster: &str) -> Child {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).expect("data dir");
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "admin_token = \"{ADMIN}\"\nsecrets_key_file = \"{}\"\nshutdown_deadline_secs = 2\n\n[caps]\nfuel = 1000000000\n\n[queue]\nworkers = 2\n\n[cluster]\n{cluster}",
                dir.join("secrets.key").display()
            ),
        )
        .expect("config");
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
        Command::new(plugboard_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn plugboard")
    }

    /// A node that must not start with `cluster` as its `[cluster]` table: waits for it to exit
    /// (at most 60 s) and answers its log.
    pub(crate) async fn refused(dir: &Path, name: &str, cluster: &str) -> String {
        let mut child = Node::spawn(dir, name, cluster);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(!status.success(), "node {name} exited 0");
                return node_log(dir, name);
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("node {name} was not refused within 60 s: {}", node_log(dir, name));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts a node over `dir/name` with `cluster` as its `[cluster]` table.
    pub(crate) async fn start_with(dir: &Path, name: &str, cluster: &str) -> Node {
        let mut child = Node::spawn(dir, name, cluster);
        let stdout = child.stdout.take().expect("stdout");
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("plugboard listening on ") {
                    let _ = found.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
            }
        });
        let started = Instant::now();
        loop {
            if let Ok(base) = address.try_recv() {
                return Node { child, api: Api::connect(&base) };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("node {name} exited ({status}): {}", node_log(dir, name));
            }
            assert!(started.elapsed() < Duration::from_secs(60), "node {name} did not start: {}", node_log(dir, name));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: what a dead machine does.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn node_log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

pub(crate) async fn start_nodes(dir: &Path, nats: &str, count: usize, replicas: usize) -> Vec<Node> {
    let mut nodes = Vec::new();
    for index in 0..count {
        nodes.push(Node::start(dir, &format!("node{index}"), nats, replicas).await);
    }
    nodes
}

/// Trusts the test key, installs and activates FILTER and configures it to pass records that
/// have a `total`: the plugin most cluster tests invoke through another node.
pub(crate) async fn install_filter(api: &Api) {
    api.trust_test_key().await;
    crate::support::server::install(api, FILTER).await;
    configure_filter(api).await;
}

/// Configures FILTER to pass records that have a `total`.
pub(crate) async fn configure_filter(api: &Api) {
    let (status, body) = api
        .put("/v1/plugins/filter/config", json!({"values": {"condition": {"field": "$.total", "op": "exists"}}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

pub(crate) async fn invoke_filter(api: &Api) -> StatusCode {
    api.post("/v1/plugins/filter/invoke", ADMIN, json!({"records": [{"total": 500}]})).await.0
}

/// Polls `check` until it holds (at most 20 s); answers how long it took.
pub(crate) async fn within(what: &str, check: impl AsyncFnMut() -> bool) -> Duration {
    within_secs(what, 20, check).await
}

/// Polls `check` until it holds (at most `limit` seconds); answers how long it took.
pub(crate) async fn within_secs(what: &str, limit: u64, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(limit), "{what} did not happen within {limit} s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

/// A sink that notes every record's `seq` and answers after `delay`.
pub(crate) async fn counting_sink(delay: Duration) -> (String, Arc<Mutex<Vec<u64>>>) {
    let arrived: Arc<Mutex<Vec<u64>>> = Arc::default();
    let app = {
        let arrived = arrived.clone();
        axum::Router::new().route(
            "/in",
            axum::routing::post(move |axum::Json(batch): axum::Json<Vec<Value>>| async move {
                arrived.lock().expect("lock").extend(batch.iter().filter_map(|r| r["seq"].as_u64()));
                tokio::time::sleep(delay).await;
                "{}"
            }),
        )
    };
    (format!("{}/in", serve(app).await), arrived)
}

pub(crate) async fn hooked_flow(api: &Api, sink: &str) {
    api.trust_test_key().await;
    install_sink(api, "hook-sink", sink).await;
    let flow = json!({"name": "hooked", "triggers": [{"type": "webhook", "tolerance_secs": 300}], "sinks": [{"id": "out", "plugin": "hook-sink"}]});
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = api.put("/v1/flows/hooked/webhook-secret", json!({"secret": SECRET})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// Waits until every acknowledged record reached the sink; answers how many arrived twice.
pub(crate) async fn all_arrive(
    acknowledged: &[u64],
    arrived: &Mutex<Vec<u64>>,
    within_secs: u64,
    logs: impl Fn() -> String,
) -> usize {
    let started = Instant::now();
    loop {
        let seen = arrived.lock().expect("lock").clone();
        let missing: Vec<u64> = acknowledged.iter().copied().filter(|seq| !seen.contains(seq)).collect();
        if missing.is_empty() {
            let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
            for seq in seen {
                *counts.entry(seq).or_default() += 1;
            }
            assert_eq!(counts.len(), acknowledged.len(), "only acknowledged records arrive");
            return counts.values().map(|n| n - 1).sum();
        }
        assert!(
            started.elapsed() < Duration::from_secs(within_secs),
            "lost acknowledged records {missing:?}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
