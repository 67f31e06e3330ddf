//! The cluster's buckets beside the change log: node heartbeats (and the adoption of a stopped
//! node's queued work), once-only claims (cron due times), and their creation on a 2.9 server.
//!
//! async-nats 0.51's `create_key_value` first asks for the account's info, which it cannot decode
//! from a 2.9 server (fields added in 2.10), so buckets are created as their streams by the
//! key-value conventions and opened with `get_key_value`. Direct gets are off: after a server
//! dies they can answer an older value; gets go to the stream's leader.

use super::envelope::Body;
use super::{Inner, PublishFailure, backend};
use crate::store::Result;
use async_nats::jetstream::{self, kv, stream};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Node heartbeats.
pub(super) const NODES_BUCKET: &str = "PLUGBOARD_NODES";
/// Once-only claims.
pub(super) const CLAIMS_BUCKET: &str = "PLUGBOARD_CLAIMS";
/// A node whose heartbeat is older than this has stopped; its queued work is adopted.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a node beats.
const BEAT: Duration = Duration::from_secs(2);
/// How long a claim is kept (longer than any cron period that matters for a repeat).
pub(super) const CLAIM_KEPT: Duration = Duration::from_secs(24 * 3600);

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

/// Whether this caller is the first to claim `key` (kept [`CLAIM_KEPT`]).
pub(super) async fn claim(claims: &kv::Store, key: &str) -> Result<bool> {
    // Keys of any text, as the bucket's key alphabet allows.
    let key = format!("k{}", hex::encode(&Sha256::digest(key.as_bytes())[..20]));
    match claims.create(&key, Vec::new().into()).await {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(backend(err)),
    }
}

/// Beats every [`BEAT`] and adopts the queued work of nodes that stopped beating.
pub(super) async fn heartbeat(inner: Arc<Inner>) {
    while !inner.closed.load(Ordering::SeqCst) {
        if let Err(err) = inner.nodes.put(&inner.node, crate::store::now().to_string().into()).await {
            tracing::warn!(%err, "cluster heartbeat");
        } else if let Err(err) = adopt_stopped(&inner).await {
            tracing::warn!(%err, "adopting the work of a stopped node");
        }
        tokio::time::sleep(BEAT).await;
    }
}

/// Publishes an adoption of every node that owns queued work or running executions and has no
/// heartbeat; the adoption subject is revision-checked, so one node adopts each.
async fn adopt_stopped(inner: &Inner) -> Result<()> {
    let candidates: Vec<String> = {
        let tracked = inner.tracked();
        let mut owners: std::collections::BTreeSet<&String> = tracked.owned.keys().collect();
        owners.extend(tracked.running.values());
        owners.into_iter().filter(|owner| **owner != inner.node && !owner.is_empty()).cloned().collect()
    };
    for owner in candidates {
        if inner.nodes.get(&owner).await.map_err(backend)?.is_some() {
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
