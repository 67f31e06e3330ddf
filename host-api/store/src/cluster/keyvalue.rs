//! Plugins' key-value data, shared by every node of a cluster.
//!
//! **Written through the log.** An invocation's key-value writes (one [`ChangeSet`], handed over
//! only when it succeeded: the runtime's state guarantee) are published as one message of the
//! change log ([`Body::KeyValue`]), and every node's applier commits them to its replica's `kv`
//! tree in log order, checking the plugin's quota there. Replicas apply the same messages in the
//! same order over the same data, so they all take the same decision: the quota is exact across
//! the cluster, as it is on one node. [`ClusterKeyValue::commit`] answers once JetStream stored
//! the message *and* this node applied it — with the applier's decision, so a refused commit
//! fails the invocation here as it would on one node. Nothing is acknowledged before JetStream
//! stored it: if NATS cannot take the message, the invocation fails (retryable), and a flow runs
//! the work again.
//!
//! **Read from the replica, after a barrier.** Reads are local. So that an invocation sees every
//! write acknowledged on any node before it started (a `dedupe` step on node b must drop what node
//! a acknowledged a moment ago), the caller waits on [`read_barrier`] once before invoking: the
//! replica catches up with the log's last sequence. A flow execution needs none: the change that
//! stores its first record is published after, and applied here before the run starts.
//!
//! A commit that JetStream stored but this node's applier skipped (its object went missing, say)
//! has no decision to report: it is answered as a storage failure, and the invocation fails.

use super::envelope::Body;
use super::{Inner, PublishFailure, WORK_SUBJECT, backend};
use crate::Storage;
use crate::{Result, StoreError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use plugboard_runtime::cause::Cause;
use plugboard_runtime::sync::Locked;
use plugboard_runtime::{ChangeSet, CommitError, KeyValueQuota, KeyValueStore, KeyValueUsage};
use std::sync::Arc;

/// One write of a published key-value commit: bucket, key, and the value (base64, so a 1 MiB value
/// is not a 4 MiB array of numbers in the JSON) or `None` to delete the key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeyValueWrite {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The new value, base64; `None` deletes the key.
    pub value: Option<String>,
}

/// The writes of a change set, as the log carries them.
pub(super) fn to_writes(changes: ChangeSet) -> Vec<KeyValueWrite> {
    changes
        .into_iter()
        .map(|((bucket, key), value)| KeyValueWrite { bucket, key, value: value.map(|v| STANDARD.encode(v)) })
        .collect()
}

/// The change set the log's writes describe; `None` when a value is not base64.
pub(super) fn from_writes(writes: &[KeyValueWrite]) -> Option<ChangeSet> {
    let mut changes = ChangeSet::default();
    for write in writes {
        match &write.value {
            Some(value) => changes.set(&write.bucket, &write.key, STANDARD.decode(value).ok()?),
            None => changes.delete(&write.bucket, &write.key),
        };
    }
    Some(changes)
}

/// What the applier decided about a key-value commit this node published (kept until the
/// publisher takes it; see [`Inner::decided`]).
pub(super) type Decision = std::result::Result<(), CommitError>;

/// Decisions kept for their publishers (see [`Inner::commit_key_value`]).
const MAX_DECISIONS: usize = 4096;

/// The [`KeyValueStore`] the runtime gets in cluster mode.
pub(super) struct ClusterKeyValue {
    inner: Arc<Inner>,
    /// The replica's key-value data: what reads read and the applier commits into.
    local: Arc<dyn KeyValueStore>,
}

impl std::fmt::Debug for ClusterKeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterKeyValue({})", self.inner.node)
    }
}

impl ClusterKeyValue {
    pub(super) fn new(inner: Arc<Inner>, local: Arc<dyn KeyValueStore>) -> ClusterKeyValue {
        ClusterKeyValue { inner, local }
    }

    /// Publishes the commit and waits for this node's applier to decide it.
    async fn publish(&self, namespace: &str, changes: ChangeSet, quota: KeyValueQuota) -> Decision {
        let body = Body::KeyValue {
            namespace: namespace.to_string(),
            writes: to_writes(changes),
            max_keys: quota.max_keys,
            max_bytes: quota.max_bytes,
        };
        let storage = |err: StoreError| CommitError::Storage(Cause::new(err));
        let seq = match self.inner.publish(WORK_SUBJECT.into(), body, None).await {
            Ok(seq) => seq,
            Err(PublishFailure::Failed(err)) => return Err(storage(err)),
            Err(PublishFailure::Raced) => return Err(storage(backend("a key-value commit raced (nothing expected)"))),
        };
        self.inner.wait_applied(seq).await.map_err(storage)?;
        self.inner.take_decision(seq).unwrap_or_else(|| {
            Err(CommitError::Storage(Cause::new(format!(
                "cluster: key-value commit stored as change {seq} was skipped by this node's applier"
            ))))
        })
    }
}

impl KeyValueStore for ClusterKeyValue {
    fn get(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
    ) -> std::result::Result<Option<Vec<u8>>, plugboard_runtime::cause::Cause> {
        self.local.get(namespace, bucket, key)
    }

    fn commit(&self, namespace: &str, changes: ChangeSet, quota: KeyValueQuota) -> Decision {
        if changes.is_empty() {
            return Ok(());
        }
        let work = self.publish(namespace, changes, quota);
        tokio::task::block_in_place(|| self.inner.handle.block_on(work))
    }

    fn keys_after(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> std::result::Result<Vec<String>, plugboard_runtime::cause::Cause> {
        self.local.keys_after(namespace, bucket, after, limit)
    }

    fn usage(&self, namespace: &str) -> std::result::Result<KeyValueUsage, plugboard_runtime::cause::Cause> {
        self.local.usage(namespace)
    }
}

impl Inner {
    /// Commits a key-value message to the replica (the applier's part); keeps the decision when
    /// this node published it. A value that is not base64 is refused as a storage failure: the
    /// message opened under the secrets key, so only a node of another version could send it.
    pub(super) fn commit_key_value(
        &self,
        seq: u64,
        publisher: &str,
        namespace: &str,
        writes: &[KeyValueWrite],
        quota: KeyValueQuota,
    ) {
        let decision = match from_writes(writes) {
            Some(changes) => self.replica.key_value().commit(namespace, changes, quota),
            None => Err(CommitError::Storage(Cause::new(format!("change {seq}: a key-value value is not base64")))),
        };
        if let Err(err) = &decision {
            tracing::warn!(seq, plugin = namespace, %err, "a key-value commit was refused");
        }
        // Only commits published since this node opened have a publisher waiting (those of its
        // history, applied again while it catches up, have none).
        if publisher == self.node && seq > self.live_from.load(std::sync::atomic::Ordering::SeqCst) {
            let mut decided = self.decided.locked();
            // A publisher that gave up waiting, or a restart applying this node's older commits
            // again, leaves decisions no one takes: only the latest are kept.
            if decided.len() >= MAX_DECISIONS {
                decided.retain(|&kept, _| kept + MAX_DECISIONS as u64 > seq);
            }
            decided.insert(seq, decision);
        }
    }

    /// The decision about this node's key-value commit at `seq`, once.
    fn take_decision(&self, seq: u64) -> Option<Decision> {
        self.decided.locked().remove(&seq)
    }
}

/// Waits until this node applied everything the log held when called: reads after it see every
/// write acknowledged before, on any node.
///
/// # Errors
/// [`StoreError::Unavailable`] when the log cannot be asked or the replica does not catch up.
pub(super) async fn read_barrier(inner: &Inner) -> Result<()> {
    let last = inner.last_sequence().await.map_err(|err| StoreError::Unavailable(err.to_string()))?;
    inner.wait_applied(last).await
}
