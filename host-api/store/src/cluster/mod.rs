//! The cluster store: several Plugboard nodes over NATS JetStream, one shared state
//! (`plugboard serve --cluster nats://HOST:PORT`).
//!
//! **One ordered change log, a replica on every node.** Every [`Change`] the domain applies is
//! published, whole, as one message of the `PLUGBOARD_CHANGES` stream (sealed with the secrets
//! key, so grants, secrets and tokens are never in the stream in clear). Every node follows the
//! stream and applies each change, in stream order, to its own replica — the embedded store under
//! `DATA/replica`, each change written together with its position in the log ([`Op::Applied`]) —
//! so reads stay local and synchronous, every node holds the same state once it has applied the
//! same sequence, and a restarted node reads only what it missed (its start does not grow with
//! the log's history). The replica is a cache: a lost one is rebuilt from the log.
//! Why a log and not one key-value write per record: a change (an activation and its audit
//! entry, an execution and the dead letters and dequeues it carries) must land together, and
//! JetStream 2.9 has no atomic multi-message batch (2.12 has); one message is atomic.
//!
//! - **Revision checks.** A change to shared configuration (versions, the active pointer, grants,
//!   owners, keys, tokens, flows) is published on `plugboard.changes.admin` with JetStream's
//!   expected-last-subject-sequence set to the last such change this node applied. If another
//!   node got one in first, nothing is applied, the replica catches up and the caller gets
//!   [`StoreError::Conflict`] (`409 conflict`): two nodes never overwrite each other. Hot-path
//!   changes (executions, dead letters, queued work, audit-only) carry no check.
//! - **Visible on the writer once applied there.** `apply` returns after the publish was
//!   acknowledged (stored by the stream's replicas) *and* this node applied it, so a node reads its
//!   own writes; `durable()` has nothing left to wait for.
//! - **Blobs** go to the `PLUGBOARD_BLOBS` object store under their digest before the change that
//!   names them is published; a replica fetches them when it applies it. A change larger than
//!   [`envelope::MAX_INLINE`] goes to the object store too and the message points at it.
//! - **Ids** come from blocks: a node reserves `2^16` ids by publishing one message (ids
//!   `seq << 16 ..`); audit entries and dead letters get theirs from their message's sequence,
//!   so every replica assigns the same ids.
//! - **Queued work belongs to the node that accepted it** and is run by that node's workers
//!   (throughput grows with nodes, with no claim traffic per run) — except a run of an
//!   `ordered: true` flow that has queued runs already: the applier hands it to their node, so
//!   one node runs the flow's whole queue, one batch at a time, in the order the log accepted it. Nodes heartbeat into a
//!   key-value bucket; when one stops for longer than [`nodes::NODE_TIMEOUT`], another node
//!   adopts its queued runs with a revision-checked message (one adopter wins) and runs them: a
//!   node that dies mid-run leaves its work to the others. Beats are sealed (a forged one keeps
//!   no dead node alive) and every valid one is remembered as it is written (a deleted one makes
//!   no live node look stopped). Webhook deliveries are deduplicated
//!   cluster-wide by a per-signature subject published with "no message yet" expected.
//! - **Snapshots** of the replica's shared state are written every `snapshot_every` changes by one
//!   node and sealed in chunks (`snapshot.rs`); a node that opens an empty replica starts from the
//!   latest one and applies only the log after it, so joining does not grow with history.
//! - **Cron** due times are claimed by publishing on the due time's own subject with "no message
//!   yet" expected (one node wins each); the subject is keyed with the secrets key.
//!
//! - **Usage counters** are counted in memory by the node that ran the invocation and published by
//!   its background tick as [`Op::AddUsage`] (one plugin per change), so every node answers the
//!   cluster's totals.
//!
//! - **Key-value data** of plugins is committed through the log too ([`Body::KeyValue`], see
//!   `keyvalue.rs`): every replica commits it under the quota in log order.
//!
//! Left per node, not shared: compiled artifacts (each node's cache, verified as always).

mod applier;
mod connect;
mod keyvalue;
pub use connect::{ClusterSettings, InvalidSettings};
pub mod envelope;
mod nodes;
pub use nodes::bucket_stream_config;
mod reads;
mod replay;
mod snapshot;
pub use snapshot::SNAPSHOT_OBJECT;

use super::sealed::SecretsKey;
use super::sled::SledStore;
use super::{Change, CommitStats, Durable, Op, QueuedRun, Result, Storage, StoreError, StoreEvent};
use async_nats::jetstream;
use envelope::{Body, Envelope};
use plugboard_runtime::sync::Locked;
use replay::SeenWindow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The change log.
pub const CHANGES_STREAM: &str = "PLUGBOARD_CHANGES";
/// Subjects of the change log.
const CHANGES_SUBJECTS: &str = "plugboard.changes.>";
/// Revision-checked changes of shared configuration.
const ADMIN_SUBJECT: &str = "plugboard.changes.admin";
/// Every other change.
const WORK_SUBJECT: &str = "plugboard.changes.work";
/// Id block reservations.
const IDS_SUBJECT: &str = "plugboard.changes.ids";
/// Plugin files and large changes.
pub const BLOBS_BUCKET: &str = "PLUGBOARD_BLOBS";
/// Ids per reserved block (`1 << ID_SHIFT`).
const ID_SHIFT: u32 = 16;
/// How long a publish may wait for its acknowledgement.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write may wait for this node to apply what it published (the applier is behind a
/// slow blob fetch, say) before it is answered `unavailable` (stored, not yet visible here).
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the applier tracks beside the replica: who owns which queued run and running execution,
/// and the last sequence of each revision-checked subject.
#[derive(Default, Clone)]
pub(crate) struct Tracked {
    /// Owner node of every queued run, its flow and its place (see [`QueuedRun::accepted`]).
    run_owner: HashMap<u64, (String, String, u64)>,
    /// Queued runs per node, then per flow, as (place, id): in the order they were accepted.
    owned: BTreeMap<String, BTreeMap<String, BTreeSet<(u64, u64)>>>,
    /// Executions stored as running, and the node running them.
    running: BTreeMap<u64, String>,
    /// Last sequence on [`ADMIN_SUBJECT`] (whatever its message was: JetStream counts it).
    last_admin: u64,
    /// The counters applied from every publishing node.
    seen: BTreeMap<String, SeenWindow>,
}

/// The JetStream-backed [`Storage`].
#[derive(Clone)]
pub struct ClusterStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// This node's id (kept in the data directory, so a restarted node owns its work again).
    node: String,
    replica: SledStore,
    js: jetstream::Context,
    changes: jetstream::stream::Stream,
    blobs: jetstream::object_store::ObjectStore,
    nodes: jetstream::kv::Store,
    seal: SecretsKey,
    tracked: Mutex<Tracked>,
    /// The last sequence applied to the replica.
    applied: tokio::sync::watch::Sender<u64>,
    events: tokio::sync::broadcast::Sender<StoreEvent>,
    /// Subscribed at open, so the first caller of `events` misses nothing applied since.
    first_events: Mutex<Option<tokio::sync::broadcast::Receiver<StoreEvent>>>,
    /// The id block being handed out: next, end.
    ids: Mutex<(u64, u64)>,
    handle: tokio::runtime::Handle,
    closed: AtomicBool,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// This node's last counter (see [`Envelope::counter`]); held while a message is sent, so
    /// the stream receives this node's messages in counter order.
    counter: tokio::sync::Mutex<u64>,
    /// Messages applied, and skipped by [`Junk`] reason (in declaration order).
    opened: AtomicU64,
    skipped: [AtomicU64; 5],
    /// The latest valid heartbeat seen from every node: its time (milliseconds since the epoch,
    /// on the node's clock) and when this node saw it (see `nodes.rs`).
    beats: Mutex<HashMap<String, (u64, std::time::Instant)>>,
    /// Whether a message of the first format was met (see `open`).
    older_format: AtomicBool,
    /// When this node writes snapshots of its replica (see `snapshot.rs`).
    snapshots: snapshot::Schedule,
    /// The applier's decisions about this node's key-value commits, by sequence, until their
    /// publishers take them (see `keyvalue.rs`).
    decided: Mutex<HashMap<u64, keyvalue::Decision>>,
    /// The log's last sequence when this node opened: what it applies up to there is history.
    live_from: AtomicU64,
    /// The key-value store handed to the runtime (made once, on first use).
    key_value: std::sync::OnceLock<Arc<dyn plugboard_runtime::KeyValueStore>>,
}

impl std::fmt::Debug for ClusterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterStore({})", self.inner.node)
    }
}

pub(crate) fn backend(err: impl Into<plugboard_runtime::cause::Boxed>) -> StoreError {
    StoreError::backend_in("cluster", err)
}

/// Whether `op` changes shared configuration, which is revision-checked.
fn is_guarded(op: &Op) -> bool {
    !matches!(
        op,
        Op::PutBlob { .. }
            | Op::Audit(_)
            | Op::PutExecution(_)
            | Op::PutDeadLetter(_)
            | Op::RemoveDeadLetter { .. }
            | Op::Enqueue(_)
            | Op::Dequeue { .. }
            | Op::PutCursor { .. }
            | Op::Applied(_)
            | Op::Cluster(_)
            | Op::AddUsage { .. }
    )
}

/// Why a publish failed.
pub(crate) enum PublishFailure {
    /// The expected last sequence did not match: another node published first.
    Raced,
    /// Anything else.
    Failed(StoreError),
}

impl ClusterStore {
    /// Connects to NATS, creates the streams and buckets that do not exist, and applies the whole
    /// change log this node's replica (in `replica_dir`) misses before answering (so this node
    /// starts with the cluster's state). `node` names this node; `seal` must be the same key file
    /// on every node.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when NATS cannot be reached or a stream cannot be created, and
    /// when the change log was sealed with another key.
    pub async fn open(
        settings: &ClusterSettings,
        node: String,
        seal: SecretsKey,
        replica_dir: &std::path::Path,
    ) -> Result<ClusterStore> {
        let replica = SledStore::open(replica_dir, seal.clone())?;
        let client = connect::connect(settings, &node).await?;
        let mut js = jetstream::new(client);
        js.set_timeout(PUBLISH_TIMEOUT);
        let replicas = settings.replicas.max(1);
        let changes = nodes::stream(
            &js,
            jetstream::stream::Config {
                name: CHANGES_STREAM.into(),
                subjects: vec![CHANGES_SUBJECTS.into()],
                num_replicas: replicas,
                storage: jetstream::stream::StorageType::File,
                allow_direct: false,
                // Nothing acknowledged may be taken back: no message deleted, the log never purged.
                deny_delete: true,
                deny_purge: true,
                ..Default::default()
            },
        )
        .await?;
        let blobs = nodes::object_store(&js, BLOBS_BUCKET, replicas).await?;
        // A new (or lost) replica starts from the latest snapshot, not from the log's first message.
        if replica.cluster_applied()? == 0 {
            snapshot::load(&blobs, &seal, &replica).await?;
        }
        let applied_at_open = replica.cluster_applied()?;
        let tracked = Tracked::from_replica(&replica)?;
        let scratch = replica_dir.with_extension("snapshot");
        let nodes_bucket = nodes::bucket(&js, nodes::NODES_BUCKET, replicas, nodes::NODE_TIMEOUT).await?;
        let (applied, _) = tokio::sync::watch::channel(applied_at_open);
        let (events, first_events) = tokio::sync::broadcast::channel(4096);
        let store = ClusterStore {
            inner: Arc::new(Inner {
                node,
                replica,
                js,
                changes,
                blobs,
                nodes: nodes_bucket,
                seal,
                tracked: Mutex::new(tracked),
                applied,
                events,
                first_events: Mutex::new(Some(first_events)),
                ids: Mutex::new((0, 0)),
                handle: tokio::runtime::Handle::current(),
                closed: AtomicBool::new(false),
                tasks: Mutex::default(),
                counter: tokio::sync::Mutex::new(0),
                opened: AtomicU64::new(0),
                skipped: Default::default(),
                older_format: AtomicBool::new(false),
                beats: Mutex::default(),
                snapshots: snapshot::Schedule::new(settings.snapshot_every, applied_at_open, scratch),
                decided: Mutex::default(),
                live_from: AtomicU64::new(u64::MAX),
                key_value: std::sync::OnceLock::new(),
            }),
        };
        let last = store.inner.last_sequence().await?;
        store.inner.live_from.store(last, Ordering::SeqCst);
        let applier = tokio::spawn(applier::follow(store.inner.clone()));
        let caught_up = store.inner.wait_applied_within(last, Duration::from_secs(300)).await;
        // A node that cannot open the log (another secrets key) would serve a partial state and
        // fail every revision check: it must not start. Junk among messages that open is skipped;
        // a new replica that opened none of several is on the wrong key.
        let unreadable = store.inner.skipped[0].load(Ordering::SeqCst);
        let wrong_key = (applied_at_open == 0 && unreadable > 0 && store.inner.opened.load(Ordering::SeqCst) == 0)
            .then(|| StoreError::Corrupt {
                area: "change log",
                detail: format!(
                    "none of the {unreadable} messages of the change log opens with this node's secrets \
                         key: every node needs the same `secrets_key_file`"
                ),
            });
        let older = store.inner.older_format.load(Ordering::SeqCst).then(|| backend(envelope::OlderFormat));
        if let Some(err) = caught_up.err().or(wrong_key).or(older) {
            store.inner.closed.store(true, Ordering::SeqCst);
            applier.abort();
            return Err(err);
        }
        let own = store.inner.tracked().seen.get(&store.inner.node).map_or(0, |seen| seen.highest);
        *store.inner.counter.lock().await = own;
        tracing::info!(node = %store.inner.node, from = applied_at_open, to = last, "cluster changes applied");
        let heartbeat = tokio::spawn(nodes::heartbeat(store.inner.clone()));
        let beats = tokio::spawn(nodes::watch_beats(store.inner.clone()));
        store.inner.snapshots.live();
        store.inner.tasks().extend([applier, heartbeat, beats]);
        Ok(store)
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The last sequence of the change log applied to this node's replica.
    pub fn applied(&self) -> u64 {
        *self.inner.applied.borrow()
    }

    /// Runs `work` to completion from synchronous code (the [`Storage`] trait is synchronous):
    /// the calling worker thread hands its other tasks over while it waits.
    fn block<T>(&self, work: impl Future<Output = T>) -> T {
        tokio::task::block_in_place(|| self.inner.handle.block_on(work))
    }

    fn replica(&self) -> &SledStore {
        &self.inner.replica
    }

    pub(crate) fn tracked(&self) -> std::sync::MutexGuard<'_, Tracked> {
        self.inner.tracked()
    }
}

impl Inner {
    pub(crate) fn tracked(&self) -> std::sync::MutexGuard<'_, Tracked> {
        self.tracked.locked()
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<tokio::task::JoinHandle<()>>> {
        self.tasks.locked()
    }

    /// The stream's last sequence now.
    async fn last_sequence(&self) -> Result<u64> {
        Ok(self.changes.get_info().await.map_err(backend)?.state.last_sequence)
    }

    /// Resolves once the replica applied sequence `seq` (at most [`APPLY_TIMEOUT`]: then
    /// [`StoreError::Unavailable`], the change being stored but not yet visible here).
    pub(crate) async fn wait_applied(&self, seq: u64) -> Result<()> {
        self.wait_applied_within(seq, APPLY_TIMEOUT).await
    }

    /// [`Inner::wait_applied`] with its own bound (a starting node catches up on the whole log).
    async fn wait_applied_within(&self, seq: u64, limit: Duration) -> Result<()> {
        let mut applied = self.applied.subscribe();
        match tokio::time::timeout(limit, applied.wait_for(|applied| *applied >= seq)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(StoreError::Closed),
            Err(_) => Err(StoreError::Unavailable(format!(
                "stored as change {seq}, not yet applied on this node within {limit:?}"
            ))),
        }
    }

    /// Applies everything published so far (after a lost race, before answering it).
    async fn catch_up(&self) -> Result<()> {
        let last = self.last_sequence().await?;
        tokio::time::timeout(PUBLISH_TIMEOUT, self.wait_applied(last)).await.map_err(backend)?
    }

    /// Publishes `body` on `subject`, with an expected last subject sequence when given; answers
    /// the message's sequence once stored.
    pub(crate) async fn publish(
        &self,
        subject: String,
        body: Body,
        expected: Option<u64>,
    ) -> std::result::Result<u64, PublishFailure> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(PublishFailure::Failed(StoreError::Closed));
        }
        // Anything but a lost race means JetStream did not store it (no leader during a failover,
        // NATS unreachable, no ack in time): nothing was acknowledged and the sender may retry.
        let failed = |err: &dyn std::fmt::Display| PublishFailure::Failed(StoreError::Unavailable(err.to_string()));
        let ack = {
            let mut counter = self.counter.lock().await;
            *counter += 1;
            let envelope = Envelope { node: self.node.clone(), counter: *counter, expected, body };
            let payload = envelope::encode(self, &subject, envelope).await.map_err(PublishFailure::Failed)?;
            let mut publish = jetstream::message::PublishMessage::build().payload(payload.into());
            if let Some(expected) = expected {
                publish = publish.expected_last_subject_sequence(expected);
            }
            self.js.send_publish(subject, publish).await.map_err(|e| failed(&e))?
        };
        match ack.await {
            Ok(ack) => Ok(ack.sequence),
            Err(err) if err.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                Err(PublishFailure::Raced)
            }
            Err(err) => Err(failed(&err)),
        }
    }

    /// Stores a plugin file in the object store under its digest (once: an object already there
    /// is kept when its bytes are the digest's, replaced when they are not).
    async fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        if self.blobs.info(digest).await.is_ok() {
            let stored = envelope::read_object(self, digest, envelope::MAX_BLOB).await;
            if stored.is_ok_and(|stored| stored == bytes) {
                return Ok(());
            }
            tracing::warn!(digest, "the object store held other bytes under a plugin file's digest; replaced");
        }
        let mut reader = bytes;
        self.blobs.put(digest, &mut reader).await.map_err(backend)?;
        Ok(())
    }

    /// Publishes a change and waits until this node applied it.
    async fn publish_change(&self, mut change: Change) -> Result<()> {
        for op in &mut change.ops {
            match op {
                Op::PutBlob { digest, bytes } => {
                    self.put_blob(digest, bytes).await?;
                    // Replicas fetch the bytes by digest; the message carries none.
                    bytes.clear();
                }
                // Work and executions carry the node they belong to (see `Tracked`).
                Op::Enqueue(run) => {
                    run.node.get_or_insert_with(|| self.node.clone());
                }
                Op::PutExecution(execution) => {
                    execution.node.get_or_insert_with(|| self.node.clone());
                }
                _ => {}
            }
        }
        let guarded = change.ops.iter().any(is_guarded);
        let (subject, expected) = if guarded {
            (ADMIN_SUBJECT, Some(change.read_at.unwrap_or(self.tracked().last_admin)))
        } else {
            (WORK_SUBJECT, None)
        };
        match self.publish(subject.into(), Body::Change(change), expected).await {
            Ok(seq) => self.wait_applied(seq).await,
            Err(PublishFailure::Raced) => {
                self.catch_up().await?;
                Err(StoreError::Conflict(
                    "another node changed the same configuration at the same time; nothing was changed, retry".into(),
                ))
            }
            Err(PublishFailure::Failed(err)) => Err(err),
        }
    }
}

impl Storage for ClusterStore {
    fn apply(&self, change: Change) -> Result<()> {
        if change.ops.is_empty() {
            return Ok(());
        }
        self.block(self.inner.publish_change(change))
    }

    fn position(&self) -> Option<u64> {
        Some(self.inner.tracked().last_admin)
    }

    fn durable(&self) -> Durable {
        // `apply` answered after JetStream stored the change: nothing is left to wait for.
        let closed = self.inner.closed.load(Ordering::SeqCst);
        Box::pin(async move { if closed { Err(StoreError::Closed) } else { Ok(()) } })
    }

    fn next_id(&self) -> Result<u64> {
        {
            let mut ids = self.inner.ids.locked();
            if ids.0 < ids.1 {
                ids.0 += 1;
                return Ok(ids.0 - 1);
            }
        }
        let seq = match self.block(self.inner.publish(IDS_SUBJECT.into(), Body::Ids, None)) {
            Ok(seq) => seq,
            Err(PublishFailure::Raced) => return Err(backend("id reservation raced")),
            Err(PublishFailure::Failed(err)) => return Err(err),
        };
        let first = (seq << ID_SHIFT) + 1;
        let mut ids = self.inner.ids.locked();
        *ids = (first + 1, (seq + 1) << ID_SHIFT);
        Ok(first)
    }

    fn commit_stats(&self) -> CommitStats {
        CommitStats {
            skipped_changes: self.inner.skipped.each_ref().map(|n| n.load(Ordering::Relaxed)),
            applied_change: self.applied(),
            ..Default::default()
        }
    }

    fn close(&self) -> Durable {
        self.inner.closed.store(true, Ordering::SeqCst);
        for task in self.inner.tasks().drain(..) {
            task.abort();
        }
        Box::pin(async { Ok(()) })
    }

    fn key_value(&self) -> Arc<dyn plugboard_runtime::KeyValueStore> {
        let inner = &self.inner;
        inner
            .key_value
            .get_or_init(|| Arc::new(keyvalue::ClusterKeyValue::new(inner.clone(), inner.replica.key_value())))
            .clone()
    }

    fn read_barrier(&self) -> Durable {
        let inner = self.inner.clone();
        Box::pin(async move { keyvalue::read_barrier(&inner).await })
    }

    fn claim_once(&self, key: &str) -> Result<bool> {
        let subject = envelope::claim_subject(&self.inner, key);
        match self.block(self.inner.publish(subject, Body::Claim, Some(0))) {
            Ok(_) => Ok(true),
            Err(PublishFailure::Raced) => Ok(false),
            Err(PublishFailure::Failed(err)) => Err(err),
        }
    }

    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        let first = self.inner.first_events.locked().take();
        Some(first.unwrap_or_else(|| self.inner.events.subscribe()))
    }
}

impl ClusterStore {
    /// [`super::QueueStore::enqueue_once`]: the first publish on the delivery's own subject wins.
    fn enqueue_delivery(&self, run: &QueuedRun, signature: &[u8], expires_at: u64) -> Result<(u64, bool)> {
        let subject = envelope::delivery_subject(&run.flow, signature);
        let run = QueuedRun { node: Some(self.inner.node.clone()), ..run.clone() };
        let body = Body::Delivery { run: run.clone(), signature: signature.to_vec(), expires_at };
        match self.block(self.inner.publish(subject, body, Some(0))) {
            Ok(seq) => {
                self.block(self.inner.wait_applied(seq))?;
                Ok((run.id, true))
            }
            Err(PublishFailure::Raced) => {
                self.block(self.inner.catch_up())?;
                Ok((self.replica().delivery_run(&run.flow, signature)?.unwrap_or(0), false))
            }
            Err(PublishFailure::Failed(err)) => Err(err),
        }
    }
}
