//! A server killed with SIGKILL in the middle of a flow loses nothing it acknowledged.
//!
//! The server runs in a child process: this test binary again, running only the ignored
//! [`crash_child_serves`] test, which serves until it is killed. The parent sends webhook
//! deliveries (each acknowledged 202 only once durably queued), kills the child while a slow sink
//! is in the middle of a batch, starts a new child on the same data directory and waits until every
//! acknowledged record reached the sink. Duplicates are allowed (delivery is at least once) and
//! counted; a loss fails the test.

use crate::support::flows::{SECRET, deliver, now, webhook_flow};
use crate::support::server::Api;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DATA_ENV: &str = "PLUGBOARD_CRASH_CHILD_DATA";

/// Not a test of its own: the server process the crash test starts and kills.
#[test]
#[ignore = "the crash test runs it in a child process"]
fn crash_child_serves() {
    let Some(data) = std::env::var_os(DATA_ENV).map(PathBuf::from) else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    // The parent holds our stdin: when it goes away (even killed), stop rather than linger.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    runtime.block_on(async move {
        let server = plugboard_host_api::server::start(&Api::config(&data), Default::default()).await.expect("start");
        // Written last and renamed into place, so the parent never reads half an address.
        std::fs::write(data.join("addr.tmp"), server.addr.to_string()).expect("write addr");
        std::fs::rename(data.join("addr.tmp"), data.join("addr")).expect("publish addr");
        server.run(std::future::pending()).await.expect("serve");
    });
}

/// A child process serving `data`, killed when dropped.
struct ChildServer {
    child: Child,
    base: String,
}

impl ChildServer {
    async fn start(data: &Path) -> ChildServer {
        let _ = std::fs::remove_file(data.join("addr"));
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(data.join("child.log")).expect("log");
        let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["crash::crash_child_serves", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(DATA_ENV, data)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("spawn the server process");
        let mut server = ChildServer { child, base: String::new() };
        for _ in 0..600 {
            if let Ok(addr) = std::fs::read_to_string(data.join("addr")) {
                server.base = format!("http://{addr}");
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the server process exited ({status}): {}", log(data));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server process did not start: {}", log(data));
    }

    /// SIGKILL: no shutdown, no flush.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log(data: &Path) -> String {
    std::fs::read_to_string(data.join("child.log")).unwrap_or_default()
}

/// A slow outside system: it notes each batch as it arrives, then takes 400 ms to answer.
async fn slow_sink() -> (String, Arc<Mutex<Vec<u64>>>) {
    let arrived: Arc<Mutex<Vec<u64>>> = Arc::default();
    let app = {
        let arrived = arrived.clone();
        axum::Router::new().route(
            "/orders",
            axum::routing::post(move |axum::Json(batch): axum::Json<Vec<Value>>| async move {
                arrived.lock().expect("lock").extend(batch.iter().filter_map(|r| r["seq"].as_u64()));
                tokio::time::sleep(Duration::from_millis(400)).await;
                "{}"
            }),
        )
    };
    (format!("{}/orders", plugboard_tests::serve(app).await), arrived)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_flow_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sink_url, arrived) = slow_sink().await;
    let first = ChildServer::start(dir.path()).await;
    let api = Api::connect(&first.base);
    webhook_flow(&api, &sink_url).await;

    // 20 deliveries of 5 records, each acknowledged; the last ones just before the kill, while the
    // sink is in the middle of a batch and most of the work is still queued.
    let mut acknowledged = Vec::new();
    for delivery in 0..20u64 {
        if delivery == 10 {
            for _ in 0..3000 {
                if arrived.lock().expect("lock").len() >= 10 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(arrived.lock().expect("lock").len() >= 10, "the flow never started: {}", log(dir.path()));
        }
        let records: Vec<Value> = (0..5).map(|i| json!({"seq": delivery * 5 + i})).collect();
        let (status, body) = deliver(&api, "hooked", SECRET, now(), &json!({"records": records})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        acknowledged.extend((0..5).map(|i| delivery * 5 + i));
    }
    first.kill();
    let batches_before = arrived.lock().expect("lock").len() / 5;
    assert!(batches_before < 20, "the kill came after the flow had finished");

    let second = ChildServer::start(dir.path()).await;
    let mut lost = acknowledged.clone();
    for _ in 0..600 {
        let seen = arrived.lock().expect("lock").clone();
        lost.retain(|seq| !seen.contains(seq));
        if lost.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lost.is_empty(), "lost acknowledged records {lost:?}; server log: {}", log(dir.path()));
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for seq in arrived.lock().expect("lock").iter() {
        *counts.entry(*seq).or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "SIGKILL after {batches_before} of 20 batches: {} records acknowledged, 0 lost, {duplicates} delivered twice",
        acknowledged.len()
    );
    assert_eq!(counts.len(), acknowledged.len(), "only acknowledged records arrive");
    drop(second);
}

/// A sink that never answers its first batch (noting it), and answers every later one at once.
async fn sink_stuck_on_its_first_batch() -> (String, Arc<Mutex<Vec<Vec<u64>>>>) {
    let batches: Arc<Mutex<Vec<Vec<u64>>>> = Arc::default();
    let app = {
        let batches = batches.clone();
        axum::Router::new().route(
            "/orders",
            axum::routing::post(move |axum::Json(batch): axum::Json<Vec<Value>>| async move {
                let first = {
                    let mut batches = batches.lock().expect("lock");
                    batches.push(batch.iter().filter_map(|r| r["seq"].as_u64()).collect());
                    batches.len() == 1
                };
                if first {
                    std::future::pending::<()>().await;
                }
                "{}"
            }),
        )
    };
    (format!("{}/orders", plugboard_tests::serve(app).await), batches)
}

/// A stateful step's key-value writes commit with the execution, not when the step ends: killed
/// while the sink holds the first batch (and after another delivery's acknowledgement flushed the
/// database), the restarted server runs that batch again through `dedupe` and every record reaches
/// the sink. Were the step's writes committed at once, the re-run would drop the batch as seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_a_stateful_step_keeps_its_records() {
    use crate::support::server::{ADMIN, install};
    let dir = tempfile::tempdir().expect("tempdir");
    let (sink_url, batches) = sink_stuck_on_its_first_batch().await;
    let first = ChildServer::start(dir.path()).await;
    let api = Api::connect(&first.base);
    api.trust_test_key().await;
    install(&api, plugboard_tests::GUEST_HOSTILE).await;
    let (status, body) = api.put("/v1/plugins/hostile/grants", json!({"key_value": ["seen"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    api.put("/v1/plugins/hostile/config", json!({"values": {"mode": "kv-dedupe"}})).await;
    crate::support::flows::install_sink(&api, "stuck-sink", &sink_url).await;
    let flow = json!({
        "name": "hooked",
        "triggers": [{"type": "webhook", "tolerance_secs": 60}],
        "steps": [{"type": "transform", "id": "dedupe", "plugin": "hostile"}],
        "sinks": [{"id": "out", "plugin": "stuck-sink"}]
    });
    let (status, body) = api.post("/v1/flows", ADMIN, flow).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    api.put("/v1/flows/hooked/webhook-secret", json!({"secret": SECRET})).await;

    let records = |delivery: u64| -> Value {
        let records: Vec<Value> =
            (0..5).map(|i| json!({"id": format!("r{}", delivery * 5 + i), "seq": delivery * 5 + i})).collect();
        json!({"records": records})
    };
    let (status, body) = deliver(&api, "hooked", SECRET, now(), &records(0)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    for _ in 0..3000 {
        if !batches.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(batches.lock().expect("lock").first(), Some(&vec![0, 1, 2, 3, 4]), "{}", log(dir.path()));
    // Acknowledged only once durable: this flushes whatever the first execution wrote so far.
    let (status, body) = deliver(&api, "hooked", SECRET, now(), &records(1)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    first.kill();

    let second = ChildServer::start(dir.path()).await;
    // The first batch was never answered, so it must arrive again; the second may have been
    // delivered before the kill (by another worker) or after.
    let mut missing: Vec<u64> = (0..10).collect();
    for _ in 0..600 {
        let seen = batches.lock().expect("lock").clone();
        let after_restart: Vec<u64> = seen.iter().skip(1).flatten().copied().collect();
        let delivered =
            |seq: &u64| after_restart.contains(seq) || (*seq >= 5 && seen.iter().flatten().any(|s| s == seq));
        missing.retain(|seq| !delivered(seq));
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(missing.is_empty(), "records never delivered after the restart: {missing:?}; log: {}", log(dir.path()));
    drop(second);
}
