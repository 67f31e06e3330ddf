//! Someone who can publish to the cluster's NATS but holds no secrets key (issue 27, points 2
//! and 3): they can capture every message of the change log and publish it again, on its own
//! subject or any other, and publish junk. None of it may change state.
//!
//! What must hold, on two running nodes and on a third started afterwards (which applies the
//! whole log from the start): a token revoked, a key revoked and a version floor raised stay so
//! after the messages that created them were published again on every subject of the log; junk
//! (unsealed bytes, random sealed-looking bytes) is skipped; every skipped message is counted
//! in `/metrics`; and both nodes keep taking revision-checked writes (no stall, no endless
//! conflict).

use crate::support::cluster::{Node, configure_filter, invoke_filter, start_nodes, within};
use crate::support::server::{ADMIN, Api, signed_as};
use async_nats::jetstream;
use plugboard_tests::nats::NatsCluster;
use plugboard_tests::*;
use reqwest::StatusCode;
use serde_json::json;

/// Every subject a node applies from.
const SUBJECTS: [&str; 5] = [
    "plugboard.changes.admin",
    "plugboard.changes.work",
    "plugboard.changes.ids",
    "plugboard.changes.delivery.0123456789abcdef0123456789abcdef01234567",
    "plugboard.changes.adopt.n0000000000000000",
];

/// The change log's last sequence.
async fn last_sequence(js: &jetstream::Context) -> u64 {
    let mut stream = js.get_stream("PLUGBOARD_CHANGES").await.expect("stream");
    stream.info().await.expect("info").state.last_sequence
}

/// The messages after `from` up to the log's end: subject and payload.
async fn capture(js: &jetstream::Context, from: u64) -> Vec<(String, bytes::Bytes)> {
    let stream = js.get_stream("PLUGBOARD_CHANGES").await.expect("stream");
    let mut captured = Vec::new();
    for seq in from + 1..=last_sequence(js).await {
        let message = stream.get_raw_message(seq).await.expect("message");
        captured.push((message.subject.to_string(), message.payload));
    }
    captured
}

/// Publishes every captured message again on every subject, and some junk; answers how many
/// messages the log acknowledged storing. Counted from the acknowledgements, not from the log's
/// sequence: the nodes publish their own changes meanwhile (usage counters every 250 ms).
async fn replay(js: &jetstream::Context, captured: &[(String, bytes::Bytes)]) -> u64 {
    let mut stored = 0;
    for (_, payload) in captured {
        for subject in SUBJECTS {
            js.publish(subject, payload.clone()).await.expect("publish").await.expect("stored");
            stored += 1;
        }
    }
    let mut sealed_looking = b"pbsealed1:".to_vec();
    sealed_looking.extend((0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    for junk in [&b"{\"node\":\"x\"}"[..], &sealed_looking, &[0u8; 2048]] {
        js.publish(SUBJECTS[0], bytes::Bytes::copy_from_slice(junk)).await.expect("publish").await.expect("stored");
        stored += 1;
    }
    stored
}

/// `plugboard_cluster_changes_skipped_total` for `reason` (every reason: `""`), from `/metrics`.
async fn skipped(api: &Api, reason: &str) -> u64 {
    let text = reqwest::get(api.url("/metrics")).await.expect("metrics").text().await.expect("text");
    let prefix = format!("plugboard_cluster_changes_skipped_total{{reason=\"{reason}");
    text.lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A revision-checked write through `api` succeeds (retried on a conflict with another node).
async fn guarded_write(api: &Api, name: &str) {
    for _ in 0..20 {
        let (status, body) = api.post("/v1/tokens", ADMIN, json!({"name": name, "role": "invoker"})).await;
        match status {
            StatusCode::CREATED => return,
            StatusCode::CONFLICT => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            other => panic!("a guarded write after the replay: {other} {body}"),
        }
    }
    panic!("a guarded write kept conflicting after the replay");
}

/// The version floor holds on `api`: 0.2.0 stays active, 0.1.0 is a rollback.
async fn floor_holds(api: &Api) {
    let (_, plugin) = api.get("/v1/plugins/filter", ADMIN).await;
    assert_eq!(plugin["active_version"], "0.2.0", "the active version went back: {plugin}");
    let (status, body) = api.post("/v1/plugins/filter/versions/0.1.0/activate", ADMIN, json!({})).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::CONFLICT, json!("rollback")), "{body}");
}

/// The revocations hold on `api`.
async fn still_refused(api: &Api, revoked_token: &str) {
    let (status, _) = api.get("/v1/plugins", revoked_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked token works again");
    assert_ne!(invoke_filter(api).await, StatusCode::OK, "a revoked key's plugin runs again");
    let (_, plugin) = api.get("/v1/plugins/filter", ADMIN).await;
    assert_eq!(plugin["active_version"], json!(null), "a revoked key's version is active again: {plugin}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_changes_published_again_on_any_subject_change_nothing() {
    let nats = NatsCluster::single().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = start_nodes(dir.path(), &nats.nodes[0].url, 2, 1).await;
    let [a, b] = [&nodes[0].api, &nodes[1].api];
    let js = jetstream::new(async_nats::connect(&nats.nodes[0].url).await.expect("connect"));

    // Captured: trusting the key, installing 0.1.0, creating the token.
    let from = last_sequence(&js).await;
    a.trust_test_key().await;
    let (status, body) = a.upload(signed_as(FILTER, "0.1.0"), "?activate=true", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = a.token("replayed", "invoker").await;
    let captured = capture(&js, from).await;
    assert!(captured.len() >= 3, "{} messages captured", captured.len());

    // Then 0.2.0 raises the floor: replayed, 0.1.0's install does not lower it. Then the token
    // and the key are revoked: replayed, their creation does not undo that.
    let (status, body) = b.upload(signed_as(FILTER, "0.2.0"), "?activate=true", ADMIN).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    configure_filter(b).await;
    within("0.2.0 invocable through a", async || invoke_filter(a).await == StatusCode::OK).await;
    let mut published = replay(&js, &captured).await;
    guarded_write(a, "floor-a").await;
    guarded_write(b, "floor-b").await;
    for api in [a, b] {
        floor_holds(api).await;
    }

    let (status, _) = b.call(reqwest::Method::DELETE, "/v1/tokens/replayed", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, keys) = b.get("/v1/keys", ADMIN).await;
    let key_id = keys["keys"][0]["key_id"].as_str().expect("key id").to_string();
    let (status, body) = b.call(reqwest::Method::POST, &format!("/v1/keys/{key_id}/revoke"), Some(ADMIN), None).await;
    assert!(status.is_success(), "{status} {body}");
    within("the revocations reaching a", async || invoke_filter(a).await != StatusCode::OK).await;

    published += replay(&js, &captured).await;
    // Both nodes take guarded writes after the replay (so they applied it, skipping it all).
    guarded_write(a, "after-a").await;
    guarded_write(b, "after-b").await;
    for api in [a, b] {
        still_refused(api, &token).await;
        assert!(skipped(api, "").await >= published, "every replayed message is counted as skipped");
        // Each captured message published again on its own subject opens, and is refused as a
        // replay by its counter (before any revision check).
        assert!(skipped(api, "replayed\"").await >= 2 * captured.len() as u64, "replays refused by counter");
    }
    // A node that applies the whole log from the start refuses the same messages.
    let c = Node::start_with(dir.path(), "late", &format!("url = \"{}\"\n", nats.nodes[0].url)).await;
    still_refused(&c.api, &token).await;
    assert!(skipped(&c.api, "").await >= published);
    assert!(skipped(&c.api, "replayed\"").await >= 2 * captured.len() as u64);
    let (_, tokens) = c.api.get("/v1/tokens", ADMIN).await;
    assert!(tokens.to_string().contains("after-b"), "the late node applied the log past the replay: {tokens}");
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_log_that_can_be_purged_is_refused_at_start() {
    let nats = NatsCluster::single().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let js = jetstream::new(async_nats::connect(&nats.nodes[0].url).await.expect("connect"));
    // Someone created the stream first, with deletes and purges allowed.
    js.create_stream(jetstream::stream::Config {
        name: "PLUGBOARD_CHANGES".into(),
        subjects: vec!["plugboard.changes.>".into()],
        ..Default::default()
    })
    .await
    .expect("stream");
    let log = Node::refused(dir.path(), "node", &format!("url = \"{}\"\n", nats.nodes[0].url)).await;
    assert!(log.contains("deny_delete, deny_purge"), "{log}");
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n.max(1)) as usize
    }

    /// Random bytes, or a captured payload flipped, cut, grown or spliced with another.
    fn message(&mut self, captured: &[(String, bytes::Bytes)]) -> Vec<u8> {
        let base = captured[self.below(captured.len() as u64)].1.to_vec();
        match self.below(5) {
            0 => (0..self.below(4096)).map(|_| self.next() as u8).collect(),
            1 => {
                let mut bytes = base;
                for _ in 0..=self.below(3) {
                    let at = self.below(bytes.len() as u64);
                    bytes[at] ^= 1 << self.below(8);
                }
                bytes
            }
            2 => base[..self.below(base.len() as u64)].to_vec(),
            3 => [base.as_slice(), &(0..self.below(64)).map(|_| self.next() as u8).collect::<Vec<_>>()].concat(),
            _ => {
                let other = &captured[self.below(captured.len() as u64)].1;
                let cut = self.below(base.len().min(other.len()) as u64);
                [&base[..cut], &other[cut..]].concat()
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_messages_change_nothing_stall_nothing_and_are_counted() {
    let nats = NatsCluster::single().await.expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = start_nodes(dir.path(), &nats.nodes[0].url, 1, 1).await;
    let a = &nodes[0].api;
    let js = jetstream::new(async_nats::connect(&nats.nodes[0].url).await.expect("connect"));
    a.trust_test_key().await;
    a.token("fuzzed", "invoker").await;
    let captured = capture(&js, 0).await;
    let (_, tokens_before) = a.get("/v1/tokens", ADMIN).await;
    let skipped_before = skipped(a, "").await;

    let seed = 0x5eed_0000_0027_u64 ^ std::process::id() as u64;
    let mut noise = Noise(seed);
    let count = 300;
    for _ in 0..count {
        let payload = noise.message(&captured);
        let subject = SUBJECTS[noise.below(SUBJECTS.len() as u64)];
        js.publish(subject, payload.into()).await.expect("publish").await.expect("stored");
    }
    // The node applied all of it (a guarded write goes through after it), skipping every one.
    guarded_write(a, "after-noise").await;
    assert_eq!(skipped(a, "").await - skipped_before, count, "seed {seed:#x}: every message skipped, once");
    let (_, tokens_after) = a.get("/v1/tokens", ADMIN).await;
    let names = |tokens: &serde_json::Value| tokens.to_string().matches("\"name\"").count();
    assert_eq!(names(&tokens_after), names(&tokens_before) + 1, "seed {seed:#x}: {tokens_before} -> {tokens_after}");
    // A node that reads the whole log starts (its catch-up is not stalled) with the same state.
    let late = Node::start_with(dir.path(), "late", &format!("url = \"{}\"\n", nats.nodes[0].url)).await;
    let (_, tokens_late) = late.api.get("/v1/tokens", ADMIN).await;
    assert_eq!(tokens_late, tokens_after, "seed {seed:#x}");
    assert_eq!(skipped(&late.api, "").await, count + skipped_before, "seed {seed:#x}");
    drop(nodes);
}
