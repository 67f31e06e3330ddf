//! Following the change log: every message, in stream order, applied to this node's replica,
//! with the owners of queued work and running executions tracked beside it.
//!
//! The follower reads through an ordered consumer (no acknowledgements; JetStream recreates it
//! past a gap); when the connection breaks, or the consumer stalls while the stream moves on (its
//! server died), it starts again after the last sequence it applied.
//! Nothing in the stream is trusted to be what it claims: a message that does not open under its
//! subject, does not decode, names a bad object, repeats a counter its publisher used (a replay)
//! or claims a revision that is not the last (see `envelope.rs`, `replay.rs`) is skipped and
//! counted, with a log line naming its sequence, and every position it would have advanced is
//! advanced (the applied sequence; the revision-checked subject's last sequence, which JetStream
//! counts whatever the message was). So junk never stalls the follower, never makes guarded
//! writes conflict forever, and every replica skips the same messages. A blob fetch is retried
//! for a while (a just-elected leader may lag), then the change naming it is skipped too.

use super::envelope::{self, Body, Decoded, Envelope, Junk, ObjectError};
use super::replay::SeenWindow;
use super::{ADMIN_SUBJECT, CHANGES_SUBJECTS, ID_SHIFT, Inner, backend};
use crate::sled::SledStore;
use crate::{
    Change, ClusterMark, ExecutionRecord, ExecutionStatus, FlowStore, Op, QueueStore, QueuedRun, Result, Storage,
    StoreError, StoreEvent,
};
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long the follower waits before it reads again after a failure.
const RETRY: Duration = Duration::from_millis(250);

/// How long the follower may hear nothing before it asks whether the stream moved on without it.
const STALL_CHECK: Duration = Duration::from_secs(2);

/// Applies the change log from the first message not yet applied, until the store closes.
pub(super) async fn follow(inner: Arc<Inner>) {
    while !inner.closed.load(Ordering::SeqCst) {
        let start = *inner.applied.borrow() + 1;
        if let Err(err) = follow_from(&inner, start).await {
            tracing::warn!(%err, start, "following the cluster's change log; starting again");
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn follow_from(inner: &Arc<Inner>, start: u64) -> Result<()> {
    let consumer = inner
        .changes
        .create_consumer(pull::OrderedConfig {
            filter_subject: CHANGES_SUBJECTS.into(),
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: start },
            ..Default::default()
        })
        .await
        .map_err(backend)?;
    let mut messages = consumer.messages().await.map_err(backend)?;
    let mut quiet = tokio::time::interval(STALL_CHECK);
    quiet.reset();
    let mut behind_at = None;
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            _ = quiet.tick() => {
                if stalled(inner, &mut behind_at).await {
                    return Err(backend("the change log's consumer stalled behind the stream"));
                }
                continue;
            }
        };
        quiet.reset();
        behind_at = None;
        let Some(message) = next else { break };
        let message = message.map_err(backend)?;
        let seq = message.info().map_err(backend)?.stream_sequence;
        if seq <= *inner.applied.borrow() {
            continue;
        }
        let subject = message.subject.as_str();
        match envelope::decode(inner, subject, &message.payload).await {
            Decoded::Envelope(envelope) => apply(inner, seq, subject, envelope).await?,
            Decoded::Older(older) => {
                inner.older_format.store(true, Ordering::SeqCst);
                tracing::error!(%older, seq, "a change of the cluster's log was skipped");
                skip(inner, seq, subject, Junk::Unreadable, None)?;
            }
            Decoded::Junk(junk) => skip(inner, seq, subject, junk, None)?,
            Decoded::Retry(err) => return Err(err),
        }
        inner.applied.send_replace(seq);
        super::snapshot::maybe_write(inner, seq);
    }
    Err(backend("the change log's consumer ended"))
}

/// Whether the consumer has stalled: the stream holds messages past the one applied, and did at
/// the previous quiet check too, with nothing applied in between. An ordered consumer lives on one
/// server; when that server dies, the client notices only after two missed 15 s heartbeats and then
/// backs off while it recreates it — over a minute in which every write waiting to be applied here
/// waits too. Starting again after the last applied message takes a fraction of that.
async fn stalled(inner: &Inner, behind_at: &mut Option<u64>) -> bool {
    let applied = *inner.applied.borrow();
    let last = match tokio::time::timeout(STALL_CHECK, inner.changes.get_info()).await {
        Ok(Ok(info)) => info.state.last_sequence,
        // No leader to ask: a new consumer could not be created either; keep waiting.
        _ => return false,
    };
    if last <= applied {
        *behind_at = None;
        return false;
    }
    let stalled = *behind_at == Some(applied);
    *behind_at = Some(applied);
    stalled
}

/// The positions a message at `seq` on `subject` advances, to write with what it changes.
fn positions(seq: u64, subject: &str) -> Vec<Op> {
    let mut ops = vec![Op::Applied(seq)];
    if subject == ADMIN_SUBJECT {
        ops.push(Op::Cluster(ClusterMark::LastAdmin(seq)));
    }
    ops
}

/// Skips the message at `seq`: counted, logged with its sequence, its positions advanced (and,
/// for a genuine message whose object is bad, its publisher's counter noted as used: `seen`).
fn skip(inner: &Inner, seq: u64, subject: &str, junk: Junk, seen: Option<(&str, SeenWindow)>) -> Result<()> {
    inner.skipped[junk as usize].fetch_add(1, Ordering::Relaxed);
    tracing::error!(
        seq,
        subject,
        reason = junk.label(),
        "a message of the cluster's change log was skipped: it {junk}"
    );
    let mut ops = positions(seq, subject);
    if let Some((node, window)) = seen {
        ops.push(Op::Cluster(window.mark(node)));
    }
    Storage::apply(&inner.replica, Change { ops, ..Change::new() })?;
    let mut tracked = inner.tracked();
    if subject == ADMIN_SUBJECT {
        tracked.last_admin = seq;
    }
    if let Some((node, window)) = seen {
        tracked.seen.insert(node.to_string(), window);
    }
    Ok(())
}

/// Applies one message at `seq`, unless it is a replay or claims a stale revision.
async fn apply(inner: &Inner, seq: u64, subject: &str, envelope: Envelope) -> Result<()> {
    let admin = subject == ADMIN_SUBJECT;
    let (last_admin, mut window) = {
        let tracked = inner.tracked();
        (tracked.last_admin, tracked.seen.get(&envelope.node).copied().unwrap_or_default())
    };
    if !window.admit(envelope.counter) {
        return skip(inner, seq, subject, Junk::Replayed, None);
    }
    if admin && envelope.expected != Some(last_admin) {
        return skip(inner, seq, subject, Junk::Stale, None);
    }
    let mut marks = positions(seq, subject);
    marks.push(Op::Cluster(window.mark(&envelope.node)));
    let written = apply_body(inner, seq, &envelope, marks).await;
    match written {
        Err(StoreError::DigestMismatch(_)) | Err(StoreError::Corrupt { .. }) => {
            return skip(inner, seq, subject, Junk::Object, Some((&envelope.node, window)));
        }
        other => other?,
    }
    inner.opened.fetch_add(1, Ordering::Relaxed);
    let mut tracked = inner.tracked();
    tracked.seen.insert(envelope.node.clone(), window);
    if admin {
        tracked.last_admin = seq;
    }
    Ok(())
}

/// Writes what `envelope` carries to the replica, with `marks`.
async fn apply_body(inner: &Inner, seq: u64, envelope: &Envelope, marks: Vec<Op>) -> Result<()> {
    let with_marks = |mut change: Change| {
        change.ops.extend(marks.iter().cloned());
        change
    };
    match envelope.body.clone() {
        Body::Change(mut change) => {
            prepare(inner, seq, &mut change).await?;
            Storage::apply(&inner.replica, with_marks(change.clone()))?;
            inner.tracked().record(&envelope.node, &change);
            let runs: Vec<QueuedRun> = change
                .ops
                .iter()
                .filter_map(|op| if let Op::Enqueue(run) = op { Some(run.clone()) } else { None })
                .collect();
            tell_owners(inner, seq, &envelope.node, &runs);
            if envelope.node != inner.node {
                let _ = inner.events.send(StoreEvent::Remote(Arc::new(change)));
            }
        }
        Body::Delivery { mut run, signature, expires_at } => {
            run.accepted = Some((seq << ID_SHIFT) + 1);
            run.node.get_or_insert_with(|| envelope.node.clone());
            hand_to_owner(inner, &mut run)?;
            // Not one transaction (see the embedded store's `enqueue_once`): after a crash in
            // between, the delivery is applied again and finds its mark.
            QueueStore::enqueue_once(&inner.replica, &run, &signature, expires_at)?;
            Storage::apply(&inner.replica, with_marks(Change::new()))?;
            // Tracked when stored, also when a first attempt stored it and failed after.
            if let Some(stored) = inner.replica.queued_run(run.id)?.filter(|stored| stored.flow == run.flow) {
                inner.tracked().enqueued(&stored, stored.node.as_deref().unwrap_or(&envelope.node));
                tell_owners(inner, seq, &envelope.node, std::slice::from_ref(&stored));
            }
        }
        Body::Ids | Body::Claim => Storage::apply(&inner.replica, with_marks(Change::new()))?,
        // Not one transaction either: applied again after a crash in between, the same writes
        // leave the data as they did (and, growing nothing, pass the quota).
        Body::KeyValue { namespace, writes, max_keys, max_bytes } => {
            let quota = plugboard_runtime::KeyValueQuota { max_keys, max_bytes };
            inner.commit_key_value(seq, &envelope.node, &namespace, &writes, quota);
            Storage::apply(&inner.replica, with_marks(Change::new()))?;
        }
        Body::Adopt { from } => {
            // On a copy, kept once the replica took it: a failed write is applied again whole.
            let mut next = inner.tracked().clone();
            let (runs, executions, moved) = next.adopt(&from, &envelope.node);
            // The records say whose they are now, so a restarted replica agrees.
            let mut change = Change::new();
            for id in moved {
                if let Some(run) = inner.replica.queued_run(id)? {
                    change.push(Op::Enqueue(QueuedRun { node: Some(envelope.node.clone()), ..run }));
                }
            }
            for id in &executions {
                if let Some(execution) = inner.replica.execution(*id)? {
                    let node = Some(envelope.node.clone());
                    change.push(Op::PutExecution(Box::new(ExecutionRecord { node, ..execution })));
                }
            }
            Storage::apply(&inner.replica, with_marks(change))?;
            *inner.tracked() = next;
            if envelope.node == inner.node && (!runs.is_empty() || !executions.is_empty()) {
                tracing::warn!(from = %from, runs = runs.values().sum::<usize>(), "adopted the queued work of a node that stopped");
                let _ = inner.events.send(StoreEvent::Adopted { runs, executions });
            }
        }
    }
    Ok(())
}

/// Gives audit entries and dead letters their ids (from the message's sequence, the same on every
/// replica) and fetches the blobs the change stores.
async fn prepare(inner: &Inner, seq: u64, change: &mut Change) -> Result<()> {
    let mut index = 0;
    for op in &mut change.ops {
        match op {
            Op::Audit(entry) if entry.id == 0 => {
                index += 1;
                entry.id = (seq << ID_SHIFT) + index;
            }
            Op::PutDeadLetter(letter) if letter.id == 0 => {
                index += 1;
                letter.id = (seq << ID_SHIFT) + index;
            }
            Op::PutBlob { digest, bytes } if bytes.is_empty() => *bytes = fetch_blob(inner, digest).await?,
            // Stamped whatever the publisher wrote: only the log decides a run's place.
            Op::Enqueue(run) => {
                index += 1;
                run.accepted = Some((seq << ID_SHIFT) + index);
                hand_to_owner(inner, run)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Hands a run of an `ordered: true` flow to the node whose queue holds the flow's other runs,
/// if one does: one node runs the whole queue of such a flow, in order. Every replica decides
/// alike (the same flow, the same queues, at the same place in the log).
fn hand_to_owner(inner: &Inner, run: &mut QueuedRun) -> Result<()> {
    if !inner.replica.flow(&run.flow)?.is_some_and(|flow| flow.ordered) {
        return Ok(());
    }
    if let Some(owner) = inner.tracked().flow_owner(&run.flow) {
        run.node = Some(owner.clone());
    }
    Ok(())
}

/// Tells this node's queue about `runs` just queued by `publisher` that are run by another node
/// than the one that accepted them: the owner counts them (and wakes its workers), the publisher
/// stops counting them. Not while the node catches up at open: its queue counts what the replica
/// holds once open.
fn tell_owners(inner: &Inner, seq: u64, publisher: &str, runs: &[QueuedRun]) {
    if seq <= inner.live_from.load(Ordering::SeqCst) {
        return;
    }
    let (mut gained, mut handed) = (BTreeMap::new(), BTreeMap::new());
    for run in runs {
        let owner = run.node.as_deref().unwrap_or(publisher);
        if owner == publisher {
            continue;
        }
        if owner == inner.node {
            *gained.entry(run.flow.clone()).or_insert(0) += 1;
        } else if publisher == inner.node {
            *handed.entry(run.flow.clone()).or_insert(0) += 1;
        }
    }
    if !gained.is_empty() {
        let _ = inner.events.send(StoreEvent::Adopted { runs: gained, executions: Vec::new() });
    }
    if !handed.is_empty() {
        let _ = inner.events.send(StoreEvent::HandedOver { runs: handed });
    }
}

/// A plugin file from the object store, checked against its digest. Published before the change
/// that names it, so it is there; a moment of lag on a just-elected leader is retried, then it is
/// missing ([`StoreError::Corrupt`]: the change is skipped). A read that fails otherwise (no
/// leader, a broken connection) is an error: the follower reads the message again.
async fn fetch_blob(inner: &Inner, digest: &str) -> Result<Vec<u8>> {
    for _ in 0..40 {
        match envelope::read_object(inner, digest, envelope::MAX_BLOB).await {
            Ok(bytes) if hex::encode(Sha256::digest(&bytes)) == digest => return Ok(bytes),
            Ok(_) => return Err(StoreError::DigestMismatch(digest.into())),
            Err(ObjectError::Missing) => {}
            Err(ObjectError::TooLarge) => break,
            Err(ObjectError::Failed(err)) => return Err(err),
        }
        tokio::time::sleep(RETRY).await;
    }
    Err(StoreError::Corrupt { area: "change log", detail: format!("blob {digest} is missing or too large") })
}

impl super::Tracked {
    /// What a replica holds: the owner of every queued run and of every running execution.
    pub(super) fn from_replica(replica: &SledStore) -> Result<super::Tracked> {
        let mut tracked = super::Tracked::default();
        for flow in replica.queue_depths()?.into_keys() {
            for id in replica.queued_ids(&flow, None, usize::MAX)? {
                if let Some(run) = replica.queued_run(id)? {
                    tracked.enqueued(&run, run.node.as_deref().unwrap_or_default());
                }
            }
        }
        for execution in replica.running_executions()? {
            tracked.running.insert(execution.id, execution.node.unwrap_or_default());
        }
        for mark in replica.cluster_marks()? {
            match mark {
                ClusterMark::LastAdmin(seq) => tracked.last_admin = seq,
                ClusterMark::Seen { node, highest, below } => {
                    tracked.seen.insert(node, super::SeenWindow { highest, below });
                }
            }
        }
        Ok(tracked)
    }

    /// Notes what `change`, published by `node`, did to queued work and running executions.
    fn record(&mut self, node: &str, change: &Change) {
        for op in &change.ops {
            match op {
                Op::Enqueue(run) => self.enqueued(run, run.node.as_deref().unwrap_or(node)),
                Op::Dequeue { id, .. } => {
                    if let Some((owner, flow, place)) = self.run_owner.remove(id)
                        && let Some(flows) = self.owned.get_mut(&owner)
                        && let Some(ids) = flows.get_mut(&flow)
                    {
                        ids.remove(&(place, *id));
                        if ids.is_empty() {
                            flows.remove(&flow);
                        }
                    }
                }
                Op::PutExecution(execution) if execution.status == ExecutionStatus::Running => {
                    self.running.insert(execution.id, execution.node.clone().unwrap_or_else(|| node.to_string()));
                }
                Op::PutExecution(execution) => {
                    self.running.remove(&execution.id);
                }
                _ => {}
            }
        }
    }

    /// Notes `run` as queued for `node`, at its place in the log (runs of an older version,
    /// which have none, at their id: ids are log-shaped too).
    fn enqueued(&mut self, run: &QueuedRun, node: &str) {
        let place = run.accepted.unwrap_or(run.id);
        self.run_owner.insert(run.id, (node.to_string(), run.flow.clone(), place));
        self.owned.entry(node.to_string()).or_default().entry(run.flow.clone()).or_default().insert((place, run.id));
    }

    /// The node whose queue holds runs of `flow`, if any does.
    fn flow_owner(&self, flow: &str) -> Option<&String> {
        self.owned.iter().find(|(_, flows)| flows.get(flow).is_some_and(|ids| !ids.is_empty())).map(|(node, _)| node)
    }

    /// Moves the queued runs and running executions of `from` to `to`; answers the runs moved
    /// per flow, the executions moved, and the ids of the runs moved.
    fn adopt(&mut self, from: &str, to: &str) -> (BTreeMap<String, usize>, Vec<u64>, Vec<u64>) {
        let mut runs = BTreeMap::new();
        let mut moved = Vec::new();
        let mut executions = Vec::new();
        if from == to {
            return (runs, executions, moved);
        }
        if let Some(flows) = self.owned.remove(from) {
            for (flow, ids) in flows {
                runs.insert(flow.clone(), ids.len());
                for &(place, id) in &ids {
                    self.run_owner.insert(id, (to.to_string(), flow.clone(), place));
                    moved.push(id);
                }
                self.owned.entry(to.to_string()).or_default().entry(flow).or_default().extend(ids);
            }
        }
        for (id, node) in &mut self.running {
            if node == from {
                *node = to.to_string();
                executions.push(*id);
            }
        }
        (runs, executions, moved)
    }
}
