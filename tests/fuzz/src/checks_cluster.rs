//! The `cluster_change` target's per-input check: one message of the cluster's change log, fed to
//! a real node — a `ClusterStore` over a real `nats-server` (JetStream, started by [`Harness`])
//! and a real sled replica — through the stream, as anyone who can publish to NATS could.
//!
//! Input: `subject selector ‖ mode ‖ payload`. The selector picks the subject (the
//! revision-checked one, the work one, id blocks, a delivery's, a claim's, another); an odd mode
//! seals the payload under that subject with the node's secrets key first, so the fuzzer reaches
//! past the seal into the envelope decoder and every applier path (changes, deliveries, id
//! blocks, claims, adoptions, object pointers, replays, stale revisions), as a node holding the
//! key (or a bug in one) could publish; an even mode publishes the bytes as they are.
//!
//! Properties besides "no panic": nothing stalls — the replica applies (or skips) the message
//! within 30 s, whatever it is — positions advance (the applied sequence reaches the message's),
//! and bytes that are not sealed with the key are skipped, never applied. Needs `plugboard-host-api` (the `cluster` feature; see README.md) and
//! `nats-server` on the PATH or at /usr/sbin. The replay test includes this file too.

use plugboard_host_api::store::Storage;
use plugboard_host_api::store::cluster::{ClusterSettings, ClusterStore, envelope};
use plugboard_host_api::store::sealed::SecretsKey;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The subjects an input may pick.
const SUBJECTS: [&str; 6] = [
    "plugboard.changes.admin",
    "plugboard.changes.work",
    "plugboard.changes.ids",
    "plugboard.changes.delivery.00112233445566778899aabbccddeeff00112233",
    "plugboard.changes.claim.00112233445566778899aabbccddeeff00112233",
    "plugboard.changes.elsewhere",
];

/// How long one message may take to be applied or skipped (a missing blob is retried for 10 s).
const APPLIED_WITHIN: Duration = Duration::from_secs(30);

/// A node over its own `nats-server`; the server is stopped on drop (a fuzzing process that
/// exits without dropping it leaves the server running: stop it by hand).
pub struct Harness {
    store: ClusterStore,
    js: async_nats::jetstream::Context,
    key: SecretsKey,
    runtime: tokio::runtime::Runtime,
    server: Child,
    _dir: tempfile::TempDir,
}

fn nats_server() -> &'static str {
    if std::path::Path::new("/usr/sbin/nats-server").exists() { "/usr/sbin/nats-server" } else { "nats-server" }
}

impl Harness {
    /// Starts `nats-server` with JetStream on a free loopback port and opens a node over it.
    pub fn start() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let server = Command::new(nats_server())
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path().join("jetstream"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (apt-get install nats-server)");
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let url = format!("nats://127.0.0.1:{port}");
        let key = SecretsKey::ephemeral().expect("key");
        let (store, js) = runtime.block_on(async {
            let started = Instant::now();
            let client = loop {
                match async_nats::connect(&url).await {
                    Ok(client) => break client,
                    Err(err) if started.elapsed() > Duration::from_secs(20) => panic!("nats-server: {err}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            let settings = ClusterSettings::new(url.clone());
            let replica = dir.path().join("replica");
            let store = ClusterStore::open(&settings, "fuzz-node".into(), key.clone(), &replica).await.expect("open");
            (store, async_nats::jetstream::new(client))
        });
        Harness { store, js, key, runtime, server, _dir: dir }
    }

    /// Publishes the message `data` describes and waits until the node applied or skipped it.
    pub fn check(&self, data: &[u8]) {
        let (selector, mode, payload) = match data {
            [selector, mode, rest @ ..] => (*selector, *mode, rest),
            _ => (0, 0, data),
        };
        let subject = SUBJECTS[usize::from(selector) % SUBJECTS.len()];
        let skipped = || self.store.commit_stats().skipped_changes.iter().sum::<u64>();
        let skipped_before = skipped();
        let sealed = mode % 2 == 1;
        let payload =
            if sealed { envelope::seal_message(&self.key, subject, payload).expect("seal") } else { payload.to_vec() };
        self.runtime.block_on(async {
            let ack = self.js.publish(subject, payload.into()).await.expect("publish").await.expect("stored");
            let started = Instant::now();
            while self.store.applied() < ack.sequence {
                assert!(
                    started.elapsed() < APPLIED_WITHIN,
                    "the applier stalled at {} behind message {} on {subject}",
                    self.store.applied(),
                    ack.sequence
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        if !sealed {
            assert_eq!(skipped(), skipped_before + 1, "unsealed bytes on {subject} were not skipped");
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
