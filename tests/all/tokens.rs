//! API tokens at rest and at start-up: stored only as hashes keyed by the server's secrets key (a
//! copy of the database allows no offline guessing), records from before keyed hashes still
//! authenticate, and a configured admin token too weak to resist guessing stops the server from
//! starting, saying how to make one.

use crate::support::common::plugboard_binary;
use crate::support::server::{ADMIN, Api, reopen};
use plugboard_host_api::store::{AccessStore, Change, Op, Role, Storage, TokenRecord};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_stored_as_keyed_hashes_and_legacy_ones_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(dir.path()).await;
    let reader = api.token("reader", "invoker").await;
    api.stop().await;

    let store = reopen(&dir.path().join("db")).await;
    let records = store.tokens().expect("tokens");
    assert_eq!(records.len(), 2, "{records:?}");
    for (record, token) in records.iter().zip([ADMIN, reader.as_str()]) {
        assert!(record.hash.starts_with("hmac-sha256:"), "{record:?}");
        let plain = hex::encode(Sha256::digest(token.as_bytes()));
        assert!(!records.iter().any(|r| r.hash == plain), "no unkeyed hash of a token is stored");
    }
    // A record written before keyed hashes (plain SHA-256) still authenticates.
    let legacy = "pb_legacy_token_written_by_an_earlier_version_0123456789abcdef";
    let mut with_legacy = records.clone();
    with_legacy.push(TokenRecord {
        name: "old".into(),
        role: Role::Invoker,
        hash: hex::encode(Sha256::digest(legacy.as_bytes())),
        scope: None,
    });
    store.apply(Change::new().with(Op::PutTokens(with_legacy))).expect("apply");
    store.durable().await.expect("durable");
    drop(store);

    let api = Api::start(dir.path()).await;
    for token in [reader.as_str(), legacy] {
        let (status, body) = api.get("/v1/whoami", token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _) = api.get("/v1/whoami", "pb_not_a_token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_configured_admin_token_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(plugboard_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .env("PLUGBOARD_ADMIN_TOKEN", "admin123")
            .stdin(Stdio::null())
            .output()
            .expect("run plugboard")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a server with a weak admin token started");
    assert!(stderr.contains("too weak") && stderr.contains("openssl rand -hex 32"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_start_fails_after_opening_its_store_exits_promptly() {
    // The port is taken: the store and workers open, then the bind fails. The process must end
    // with an error, not hang on the work it had started.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let listen = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(plugboard_binary())
        .args(["serve", "--listen", &listen, "--data"])
        .arg(dir.path())
        .env("PLUGBOARD_ADMIN_TOKEN", ADMIN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run plugboard");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let status = status.expect("the server exited after failing to start");
    assert!(!status.success(), "{status}");
    drop(taken);
}
