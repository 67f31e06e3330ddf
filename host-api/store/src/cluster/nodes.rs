//! The cluster's buckets beside the change log: node heartbeats (and the adoption of a stopped
//! node's queued work), and the creation of streams and buckets on a 2.9 server.
//!
//! async-nats 0.51's `create_key_value` first asks for the account's info, which it cannot decode
//! from a 2.9 server (fields added in 2.10), so buckets are created as their streams by the
//! key-value conventions and opened with `get_key_value`. Direct gets are off: after a server
//! dies they can answer an older value; gets go to the stream's leader.
//!
//! **Heartbeats are not trusted as written.** A beat is the time it was written, sealed with the
//! secrets key under the beating node's name, so someone with access to NATS can neither forge a
//! beat (to keep a dead node's work stranded) nor move one to another node. Every node watches
//! the bucket and remembers the latest valid beat of each node, so deleting a live node's beat
//! (to have its work adopted and run twice) changes nothing: a node is stopped when its latest
//! valid beat, as remembered, is older than [`NODE_TIMEOUT`] — and never within [`NODE_TIMEOUT`]
//! of the observer's own start, before it could have seen a beat. A replayed old beat carries its
//! old time.

use super::envelope::Body;
use super::{Inner, PublishFailure, backend};
use crate::Result;
use async_nats::jetstream::{self, kv, stream};
use futures::StreamExt;
use plugboard_runtime::sync::Locked;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Node heartbeats.
pub(super) const NODES_BUCKET: &str = "PLUGBOARD_NODES";
/// A node whose heartbeat is older than this has stopped; its queued work is adopted.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a node beats.
const BEAT: Duration = Duration::from_secs(2);
/// What a beat is sealed under, with the node's name.
const BEAT_CONTEXT: &[u8] = b"plugboard heartbeat v1\0";

/// The stream behind key-value bucket `name` by the key-value conventions (one value a key,
/// entries expiring after `max_age`, zero for never), without direct gets.
pub fn bucket_stream_config(name: &str, replicas: usize, max_age: Duration) -> stream::Config {
    stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        num_replicas: replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: false,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    }
}

/// Opens (creating) the key-value bucket `name`, entries expiring after `max_age`.
pub(super) async fn bucket(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
    max_age: Duration,
) -> Result<kv::Store> {
    stream(js, bucket_stream_config(name, replicas, max_age)).await?;
    js.get_key_value(name).await.map_err(backend)
}

/// Opens (creating) stream `config.name`. One that exists must have the settings this node
/// relies on (its subjects, what may be deleted or purged, one value a key, direct gets off,
/// refusing rather than dropping when full): whoever created it first could have set others, and
/// a node must not start over a log that lets acknowledged changes be taken back.
pub(super) async fn stream(js: &jetstream::Context, config: stream::Config) -> Result<stream::Stream> {
    let mut stream = js.get_or_create_stream(config.clone()).await.map_err(backend)?;
    let found = &stream.info().await.map_err(backend)?.config;
    let differs = [
        ("subjects", found.subjects != config.subjects),
        ("deny_delete", found.deny_delete != config.deny_delete),
        ("deny_purge", found.deny_purge != config.deny_purge),
        ("allow_direct", found.allow_direct != config.allow_direct),
        // The server answers -1 for the 0 ("no limit") a config sends.
        ("max_messages_per_subject", found.max_messages_per_subject.max(0) != config.max_messages_per_subject.max(0)),
        ("discard", found.discard != config.discard),
        ("max_age", found.max_age != config.max_age),
        // Limits that would drop acknowledged messages (the server answers -1 for "none").
        ("max_messages", found.max_messages.max(0) != config.max_messages.max(0)),
        ("max_bytes", found.max_bytes.max(0) != config.max_bytes.max(0)),
    ];
    let differs: Vec<&str> = differs.iter().filter(|(_, differs)| *differs).map(|(name, _)| *name).collect();
    if differs.is_empty() {
        return Ok(stream);
    }
    Err(backend(format!(
        "the stream {} exists with other settings than a node needs ({}): it was not created by \
         Plugboard; remove it, or fix its settings, before starting",
        config.name,
        differs.join(", ")
    )))
}

/// Opens (creating) the object store `name`.
pub(super) async fn object_store(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
) -> Result<jetstream::object_store::ObjectStore> {
    if let Ok(store) = js.get_object_store(name).await {
        return Ok(store);
    }
    js.create_object_store(jetstream::object_store::Config {
        bucket: name.into(),
        num_replicas: replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(backend)
}

fn now_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The time a beat of `node` says, when it opens under `node` with this node's key.
fn beat_time(inner: &Inner, node: &str, value: &[u8]) -> Option<u64> {
    // Unsealed bytes would open as themselves.
    crate::sealed::SecretsKey::is_sealed(value).then_some(())?;
    let plain = inner.seal.open(&[BEAT_CONTEXT, node.as_bytes()].concat(), value).ok()?;
    Some(u64::from_be_bytes(plain.as_slice().try_into().ok()?))
}

/// Remembers a beat of `node` written at `at` (its clock), and when this node saw it (this
/// node's clock), if it is later than the one remembered: staleness is measured on one clock, so
/// nodes' clocks need not agree, and a replayed older beat changes nothing.
fn remember(inner: &Inner, node: &str, at: u64) {
    let mut beats = inner.beats.locked();
    match beats.get(node) {
        Some((latest, _)) if *latest >= at => {}
        _ => {
            beats.insert(node.to_string(), (at, Instant::now()));
        }
    }
}

/// Beats every [`BEAT`] and adopts the queued work of nodes that stopped beating.
pub(super) async fn heartbeat(inner: Arc<Inner>) {
    let started = Instant::now();
    while !inner.closed.load(Ordering::SeqCst) {
        let context = [BEAT_CONTEXT, inner.node.as_bytes()].concat();
        let beat = inner.seal.seal(&context, &now_millis().to_be_bytes());
        let written = match beat {
            Ok(beat) => inner.nodes.put(&inner.node, beat.into()).await.map_err(backend),
            Err(err) => Err(err),
        };
        if let Err(err) = written {
            tracing::warn!(%err, "cluster heartbeat");
        } else if let Err(err) = adopt_stopped(&inner, started).await {
            tracing::warn!(%err, "adopting the work of a stopped node");
        }
        tokio::time::sleep(BEAT).await;
    }
}

/// Remembers every valid beat as it is written, until the store closes.
pub(super) async fn watch_beats(inner: Arc<Inner>) {
    while !inner.closed.load(Ordering::SeqCst) {
        match inner.nodes.watch_all().await {
            Ok(mut entries) => {
                while let Some(entry) = entries.next().await {
                    let Ok(entry) = entry else { break };
                    if let Some(at) = beat_time(&inner, &entry.key, &entry.value) {
                        remember(&inner, &entry.key, at);
                    }
                }
            }
            Err(err) => tracing::warn!(%err, "watching cluster heartbeats"),
        }
        tokio::time::sleep(BEAT).await;
    }
}

/// Publishes an adoption of every node that owns queued work or running executions and has not
/// beaten for [`NODE_TIMEOUT`]; the adoption subject is revision-checked, so one node adopts each.
async fn adopt_stopped(inner: &Inner, started: Instant) -> Result<()> {
    let candidates: Vec<String> = {
        let tracked = inner.tracked();
        let mut owners: std::collections::BTreeSet<&String> = tracked.owned.keys().collect();
        owners.extend(tracked.running.values());
        owners.into_iter().filter(|owner| **owner != inner.node && !owner.is_empty()).cloned().collect()
    };
    for owner in candidates {
        if let Some(value) = inner.nodes.get(&owner).await.map_err(backend)?
            && let Some(at) = beat_time(inner, &owner, &value)
        {
            remember(inner, &owner, at);
        }
        let seen = inner.beats.locked().get(&owner).map(|b| b.1);
        if seen.unwrap_or(started).max(started).elapsed() <= NODE_TIMEOUT {
            continue;
        }
        // Expect the adoption subject as it is now: of nodes that saw `owner` stop, one wins.
        let subject = format!("plugboard.changes.adopt.{owner}");
        let last = match inner.changes.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => message.sequence,
            Err(err) if err.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => 0,
            Err(err) => return Err(backend(err)),
        };
        match inner.publish(subject, Body::Adopt { from: owner.clone() }, Some(last)).await {
            Ok(seq) => inner.wait_applied(seq).await?,
            Err(PublishFailure::Raced) => {}
            Err(PublishFailure::Failed(err)) => return Err(err),
        }
    }
    Ok(())
}
