//! Everything the control plane persists, behind one [`Storage`] trait with typed errors.
//!
//! The trait is what the domain sees; no backend type crosses it, so a distributed backend plugs
//! in beside the embedded one ([`sled::SledStore`], the default). It has two halves:
//!
//! - **Reads and hot-path writes** per area: plugins and blobs ([`PluginStore`]), keys, tokens and
//!   audit ([`AccessStore`]), flows, executions and dead letters ([`FlowStore`]), queue, cursors
//!   and delivery marks ([`QueueStore`]).
//! - **Atomic changes**: a [`Change`] is a list of typed operations ([`Op`]) that
//!   [`Storage::apply`] makes visible together or not at all. Every audited action puts its
//!   [`AuditEntry`] in the same change as what it records, so the log never claims a change that
//!   did not happen nor misses one that did.
//!
//! **Durability is separate from visibility.** A write is visible at once; it is durable once
//! [`Storage::durable`] resolves. That call joins a *group commit*: one flusher makes everything
//! written so far durable with one fsync and wakes every waiter it covered, so many concurrent
//! acknowledgements share one fsync (see [`commit`]). The rule for callers: answer 2xx only
//! after `durable()` for what the answer acknowledges.

pub mod cluster;
pub mod commit;
pub mod records;
pub mod sealed;
pub mod sled;

pub use records::*;

use plugboard_runtime::Grant;
use plugboard_runtime::cause::{Boxed, Cause};
use plugboard_runtime::flow::FlowDefinition;
use plugboard_runtime::signing::{TrustStore, VersionFloor};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

/// A storage failure. The API answers it as `internal` and logs the detail.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, a broken database).
    #[error("storage backend: {0}")]
    Backend(#[source] Cause),
    /// A stored record does not decode.
    #[error("corrupt record in {area}: {detail}")]
    Corrupt {
        /// Which area.
        area: &'static str,
        /// What failed.
        detail: String,
    },
    /// A blob's bytes do not match its digest.
    #[error("blob {0} does not match its digest")]
    DigestMismatch(String),
    /// The store is shutting down; nothing more is made durable.
    #[error("the store is closed")]
    Closed,
    /// Another cluster node changed the same state first (cluster mode); nothing was applied and
    /// the caller may retry against the state as it is now. The API answers `conflict`.
    #[error("{0}")]
    Conflict(String),
    /// The shared store cannot take writes right now (cluster mode: NATS unreachable, or its
    /// stream has no leader during a failover); nothing was acknowledged (it may have been stored). The API answers
    /// `503 unavailable` with `Retry-After`.
    #[error("the shared store is unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// The backend failed: an error value (kept as the cause), or a message where there is none.
    pub fn backend(err: impl Into<Boxed>) -> StoreError {
        StoreError::Backend(Cause::new(err))
    }

    /// The backend failed with `err` while doing `what`.
    pub fn backend_in(what: impl Into<String>, err: impl Into<Boxed>) -> StoreError {
        StoreError::Backend(Cause::context(what, err))
    }
}

/// What a store tells the domain about changes it did not make itself (cluster mode).
#[derive(Debug, Clone)]
pub enum StoreEvent {
    /// Another node applied this change; caches of what it touches are stale.
    Remote(std::sync::Arc<Change>),
    /// Queued runs became this node's: those of a node that stopped, or runs of an
    /// `ordered: true` flow another node accepted while this node holds the flow's queue.
    Adopted {
        /// Runs adopted, per flow.
        runs: BTreeMap<String, usize>,
        /// Executions that node was running: interrupted, their runs run again here.
        executions: Vec<u64>,
    },
    /// Runs this node accepted went to the node that runs the rest of their `ordered: true`
    /// flow's queue: this node no longer counts them.
    HandedOver {
        /// Runs handed over, per flow.
        runs: BTreeMap<String, usize>,
    },
}

/// Result of a storage call.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A future resolving once earlier writes are durable.
pub type Durable = Pin<Box<dyn Future<Output = Result<()>> + Send + 'static>>;

/// One write of a [`Change`]. Serializable, because the cluster backend ships whole changes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// Stores a plugin file under its digest (before any version points at it).
    PutBlob {
        /// Hex SHA-256.
        digest: String,
        /// The signed file.
        bytes: Vec<u8>,
    },
    /// Removes a blob.
    RemoveBlob(String),
    /// Records an installed version.
    PutVersion(Box<VersionRecord>),
    /// Removes a version record.
    RemoveVersion {
        /// Plugin.
        name: String,
        /// Version.
        version: semver::Version,
    },
    /// Sets or clears the active version of a plugin.
    SetActive {
        /// Plugin.
        name: String,
        /// The version, or `None` to deactivate.
        version: Option<semver::Version>,
    },
    /// Saves the anti-rollback floor.
    PutFloor(VersionFloor),
    /// Saves a plugin's grant (secret values are stored apart from the rest).
    PutGrant {
        /// Plugin.
        name: String,
        /// Capabilities, budget, config and secrets.
        grant: Grant,
    },
    /// Records who owns a plugin name: the key id of its first publisher, or `""` for unsigned
    /// uploads (`--allow-unsigned`). Kept while versions come and go, until [`Op::ForgetPlugin`].
    PutOwner {
        /// Plugin.
        name: String,
        /// The owner.
        owner: PluginOwner,
    },
    /// Forgets a plugin's owner, grant, secrets, usage and key-value data.
    ForgetPlugin(String),
    /// Adds `delta` to the usage totals of `plugin`. The cluster backend publishes a node's
    /// counts this way (one plugin per change), so every replica holds the cluster's totals.
    AddUsage {
        /// The plugin.
        plugin: String,
        /// What a node counted since it last published.
        delta: UsageTotals,
    },
    /// Saves the trust store.
    PutTrust(TrustStore),
    /// Saves the API tokens.
    PutTokens(Vec<TokenRecord>),
    /// Saves a connection: its definition as JSON, secrets included (sealed at rest).
    PutConnection {
        /// The connection's name.
        name: String,
        /// Its definition (`domain::connections`), as JSON.
        definition: String,
    },
    /// Forgets a connection.
    RemoveConnection(String),
    /// Appends an audit entry (its id is assigned here).
    Audit(AuditEntry),
    /// Saves a flow definition.
    PutFlow(Box<FlowDefinition>),
    /// Removes a flow definition, its webhook secret, cursor and delivery marks.
    RemoveFlow(String),
    /// Sets a flow's webhook secret.
    PutWebhookSecret {
        /// Flow.
        flow: String,
        /// The secret.
        secret: String,
    },
    /// Saves an execution.
    PutExecution(Box<ExecutionRecord>),
    /// Adds a dead letter (its id is assigned here).
    PutDeadLetter(Box<DeadLetterRecord>),
    /// Removes a dead letter.
    RemoveDeadLetter {
        /// Flow.
        flow: String,
        /// Id.
        id: u64,
    },
    /// Queues work.
    Enqueue(QueuedRun),
    /// Removes finished work, noting the execution that ran it (`None`: it was dead-lettered
    /// without running, its flow being gone), so a webhook sender can follow its delivery.
    Dequeue {
        /// Flow.
        flow: String,
        /// Id.
        id: u64,
        /// The execution that ran it.
        execution: Option<u64>,
    },
    /// The cluster backend's position in its change log, written with every change it applies to
    /// its replica (see [`cluster`]); never used by the domain.
    Applied(u64),
    /// What the cluster backend's applier keeps beside its position (see [`ClusterMark`]).
    Cluster(ClusterMark),
    /// Sets (or clears) where a flow's source resumes.
    PutCursor {
        /// Flow.
        flow: String,
        /// The cursor.
        cursor: Option<String>,
    },
}

/// The cluster backend's bookkeeping in its replica, written with the change it applies so that
/// a restarted replica decides as before; never used by the domain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClusterMark {
    /// The counters applied from `node` (see `cluster/replay.rs`).
    Seen {
        /// The publishing node.
        node: String,
        /// Its highest counter applied.
        highest: u64,
        /// Which of the counters below it were applied.
        below: u64,
    },
    /// The sequence of the last message on the revision-checked subject.
    LastAdmin(u64),
}

/// Writes that become visible together, or not at all.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// The writes, applied in order.
    pub ops: Vec<Op>,
    /// The store's [`Storage::position`] before the reads this change was computed from: a
    /// backend shared by several nodes refuses it with [`StoreError::Conflict`] if another
    /// node changed shared configuration since.
    #[serde(skip)]
    pub read_at: Option<u64>,
}

impl Change {
    /// An empty change.
    pub fn new() -> Change {
        Change::default()
    }

    /// An empty change computed from reads made at `position` (see [`Storage::position`]):
    /// take the position first, then read, then build the change on it.
    pub fn read_at(position: Option<u64>) -> Change {
        Change { ops: Vec::new(), read_at: position }
    }

    /// Adds a write.
    #[must_use]
    pub fn with(mut self, op: Op) -> Change {
        self.ops.push(op);
        self
    }

    /// Adds a write in place.
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Adds an audit entry.
    #[must_use]
    pub fn audit(self, entry: AuditEntry) -> Change {
        self.with(Op::Audit(entry))
    }
}

/// Plugins and blobs, grants, config and secrets, usage.
pub trait PluginStore {
    /// A plugin file, checked against its digest.
    fn blob(&self, digest: &str) -> Result<Option<Vec<u8>>>;
    /// Digests of every stored blob.
    fn blob_digests(&self) -> Result<Vec<String>>;
    /// Every installed version, by name then version text.
    fn all_versions(&self) -> Result<Vec<VersionRecord>>;
    /// The versions of one plugin, lowest first.
    fn versions(&self, name: &str) -> Result<Vec<VersionRecord>>;
    /// One version.
    fn version(&self, name: &str, version: &semver::Version) -> Result<Option<VersionRecord>>;
    /// The active version of `name`.
    fn active(&self, name: &str) -> Result<Option<semver::Version>>;
    /// The anti-rollback floor.
    fn floor(&self) -> Result<VersionFloor>;
    /// Who owns the name `name` (see [`Op::PutOwner`]).
    fn owner(&self, name: &str) -> Result<Option<PluginOwner>>;
    /// The grant of `name`, secrets included (for loading, never for answering).
    fn grant(&self, name: &str) -> Result<Grant>;
    /// Usage totals of `name`.
    fn usage(&self, name: &str) -> Result<UsageTotals>;
    /// Adds to the usage totals of `name` (counters, not acknowledged: no change needed).
    fn add_usage(&self, name: &str, delta: &UsageTotals) -> Result<()>;
}

/// Publisher keys, API tokens and the audit log.
pub trait AccessStore {
    /// The trust store.
    fn trust(&self) -> Result<TrustStore>;
    /// API tokens.
    fn tokens(&self) -> Result<Vec<TokenRecord>>;
    /// Every connection: its name and its definition as JSON, secrets included (for the host's
    /// own use, never for answering).
    fn connections(&self) -> Result<Vec<(String, String)>>;
    /// The audit log from after `cursor`, oldest first.
    fn audit_page(&self, page: PageRequest, filter: &AuditFilter) -> Result<Page<AuditEntry>>;
}

/// Flow definitions, executions and dead letters.
pub trait FlowStore {
    /// A flow definition.
    fn flow(&self, name: &str) -> Result<Option<FlowDefinition>>;
    /// Every flow definition.
    fn flows(&self) -> Result<Vec<FlowDefinition>>;
    /// The webhook secret of `flow`.
    fn webhook_secret(&self, flow: &str) -> Result<Option<String>>;
    /// An execution.
    fn execution(&self, id: u64) -> Result<Option<ExecutionRecord>>;
    /// Executions of `flow` after `cursor`, oldest first, read from a per-flow index.
    fn executions_page(&self, flow: &str, page: PageRequest) -> Result<Page<ExecutionRecord>>;
    /// Executions stored as running (read from an index of them, at start-up).
    fn running_executions(&self) -> Result<Vec<ExecutionRecord>>;
    /// Dead letters of `flow` after `cursor`, oldest first.
    fn dead_letters_page(&self, flow: &str, page: PageRequest) -> Result<Page<DeadLetterRecord>>;
    /// Dead letters stored, all flows: a counter the backend keeps (cheap enough for every sample).
    fn dead_letter_total(&self) -> Result<u64>;
    /// One dead letter.
    fn dead_letter(&self, flow: &str, id: u64) -> Result<Option<DeadLetterRecord>>;
}

/// Queued work, source cursors and webhook delivery marks.
pub trait QueueStore {
    /// Ids of work queued for `flow` after `cursor`, oldest first, from the per-flow index (no
    /// run is decoded).
    fn queued_ids(&self, flow: &str, cursor: Option<u64>, limit: usize) -> Result<Vec<u64>>;
    /// One queued run.
    fn queued_run(&self, id: u64) -> Result<Option<QueuedRun>>;
    /// The execution that ran queued run `id` of `flow`, once it ran.
    fn ran_by(&self, flow: &str, id: u64) -> Result<Option<u64>>;
    /// How many runs each flow has queued (counted from the index, at start-up).
    fn queue_depths(&self) -> Result<BTreeMap<String, usize>>;
    /// Queues a webhook delivery unless one with the same `signature` was queued before (a retry
    /// or a replay). After a crash the mark is never there without its run, and a run without
    /// its mark is dropped when the store opens, so a delivery runs once (at least once when an
    /// execution is interrupted). Returns the id of the run holding the delivery and whether it
    /// was queued now.
    fn enqueue_once(&self, run: &QueuedRun, signature: &[u8], expires_at: u64) -> Result<(u64, bool)>;
    /// Forgets delivery marks that expired before `now`; returns how many.
    fn sweep_delivery_marks(&self, now: u64) -> Result<usize>;
    /// Where the source of `flow` resumes.
    fn cursor(&self, flow: &str) -> Result<Option<String>>;
}

/// Counters of the group commit, for `/metrics` and the load harness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Flushes (each one fsync of the database).
    pub fsyncs: u64,
    /// Callers that waited for durability (each acknowledgement waits once).
    pub commits: u64,
    /// Time spent flushing, in microseconds.
    pub flush_micros: u64,
    /// Cluster mode: messages of the change log skipped, by reason (see
    /// `cluster::envelope::Junk`): unreadable, malformed, object, replayed, stale.
    pub skipped_changes: [u64; 5],
    /// Cluster mode: the last sequence of the change log this node applied (with the stream's
    /// own last sequence, it tells how far the node lags).
    pub applied_change: u64,
}

/// The whole store: every area, atomic changes, and group-committed durability.
pub trait Storage: PluginStore + AccessStore + FlowStore + QueueStore + Send + Sync + 'static {
    /// Applies every write of `change` atomically (visible at once, durable after
    /// [`Storage::durable`]).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend fails; nothing of the change is applied.
    fn apply(&self, change: Change) -> Result<()>;

    /// Resolves once everything written before this call is durable. Never blocks the caller's
    /// thread; concurrent callers share one flush.
    fn durable(&self) -> Durable;

    /// A fresh, increasing sequence number.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend fails.
    fn next_id(&self) -> Result<u64>;

    /// Group-commit counters.
    fn commit_stats(&self) -> CommitStats;

    /// Stops the flusher after a last flush; later `durable()` calls fail with
    /// [`StoreError::Closed`].
    fn close(&self) -> Durable;

    /// The plugins' key-value data, for the runtime.
    fn key_value(&self) -> std::sync::Arc<dyn plugboard_runtime::KeyValueStore>;

    /// Resolves once reads see every write acknowledged before the call, on any node (one node:
    /// at once). Awaited before invoking a plugin that reads key-value data.
    fn read_barrier(&self) -> Durable {
        Box::pin(async { Ok(()) })
    }

    /// Whether this node is the one to act on `key` (a cron due time): true for exactly one
    /// caller per key across the cluster. One node: always true.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the cluster cannot be asked.
    fn claim_once(&self, _key: &str) -> Result<bool> {
        Ok(true)
    }

    /// Where the store's shared configuration is now (`None`: no other node writes it), for a
    /// read-modify-write: take it before reading and build the write with [`Change::read_at`],
    /// so a change another node made between the read and the write is a conflict, not lost.
    fn position(&self) -> Option<u64> {
        None
    }

    /// Changes made by other nodes, for the domain's caches (`None`: there are no other nodes).
    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        None
    }
}
