//! The embedded store: sled under the data directory, one node, the default.
//!
//! Trees (one per [`Area`]): `blobs` (digest → signed file), `versions` (`name\0version` →
//! [`VersionRecord`]), `active` (name → version), `grants` (name → grant without secrets),
//! `secrets` (name → secret values; `flow\0name` → webhook secret), `meta` (trust store, version
//! floor, tokens, `cursor\0flow`), `audit` (id → entry), `kv` (plugin key-value data), `usage`,
//! `flows`, `executions` (id → record) with the indexes `executions_by_flow` (`flow\0id`) and
//! `running` (ids of running executions), `dlq` (`flow\0id` → dead letter), `queue` (id → run)
//! with the index `queue_by_flow` (`flow\0id`), and `deliveries` (`flow\0signature` → expiry and
//! run id). Ids are big-endian, so every index reads in order.
//!
//! A [`Change`] becomes one sled transaction over these trees: its typed operations are first
//! turned into plain writes (ids assigned, keys to clear listed), then applied together.
//! Durability goes through the [`GroupCommit`] flusher (sled's own `flush`, never `flush_async`).

mod access;
mod flows;
mod keyvalue;
mod migrate;
mod plugins;
mod queue;
mod snapshot;
pub(crate) use snapshot::Entry;

use super::commit::GroupCommit;
use super::sealed::SecretsKey;
use super::{Change, ClusterMark, CommitStats, Durable, Op, Result, Storage, StoreError};
use serde::{Serialize, de::DeserializeOwned};
use std::path::Path;
use std::sync::Arc;

/// One sled tree per area of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Area {
    Blobs,
    Versions,
    Active,
    Grants,
    Secrets,
    Meta,
    Audit,
    Kv,
    Usage,
    Flows,
    Executions,
    ExecutionsByFlow,
    Running,
    Dlq,
    Queue,
    QueueByFlow,
    Deliveries,
}

const AREAS: [(Area, &str); 17] = [
    (Area::Blobs, "blobs"),
    (Area::Versions, "versions"),
    (Area::Active, "active"),
    (Area::Grants, "grants"),
    (Area::Secrets, "secrets"),
    (Area::Meta, "meta"),
    (Area::Audit, "audit"),
    (Area::Kv, "kv"),
    (Area::Usage, "usage"),
    (Area::Flows, "flows"),
    (Area::Executions, "executions"),
    (Area::ExecutionsByFlow, "executions_by_flow"),
    (Area::Running, "running"),
    (Area::Dlq, "dlq"),
    (Area::Queue, "queue"),
    (Area::QueueByFlow, "queue_by_flow"),
    (Area::Deliveries, "deliveries"),
];

/// One plain write of a transaction: put `value` (or remove, with `None`) at `key` in `area`.
pub(crate) struct Write {
    area: Area,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

impl Write {
    pub(crate) fn put(area: Area, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Write {
        Write { area, key: key.into(), value: Some(value.into()) }
    }
    pub(crate) fn remove(area: Area, key: impl Into<Vec<u8>>) -> Write {
        Write { area, key: key.into(), value: None }
    }
}

/// The sled-backed [`Storage`].
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: ::sled::Db,
    trees: Vec<::sled::Tree>,
    commit: GroupCommit,
    /// The one key-value handle, so its quota counters see every write.
    key_value: std::sync::OnceLock<Arc<keyvalue::SledKeyValue>>,
    /// Seals every value of the secrets tree (see [`crate::sealed`]).
    secrets_key: SecretsKey,
    /// Dead letters stored: counted once at open (sled's `len` scans the whole tree), then kept
    /// by `apply`, the one writer of the tree, so the metrics sample every 5 s reads a number.
    dead_letters: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SledStore")
    }
}

pub(crate) fn backend(err: ::sled::Error) -> StoreError {
    StoreError::backend(err)
}

pub(crate) fn decode<T: DeserializeOwned>(area: &'static str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|err| StoreError::Corrupt { area, detail: err.to_string() })
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// Where [`Op::Applied`] is kept in the meta tree.
const APPLIED_KEY: &[u8] = b"cluster\0applied";
/// Where [`ClusterMark::LastAdmin`] is kept in the meta tree.
const LAST_ADMIN_KEY: &[u8] = b"cluster\0admin";
/// Prefix of the [`ClusterMark::Seen`] windows, one per node, in the meta tree.
const SEEN_PREFIX: &[u8] = b"cluster\0seen\0";

/// Most entries one page looks at (see [`SledStore::page`]).
const PAGE_SCAN: usize = 10_000;

/// `prefix\0` followed by the big-endian `id`: index keys that read in id order per prefix.
pub(crate) fn prefixed_id(prefix: &str, id: u64) -> Vec<u8> {
    let mut key = format!("{prefix}\0").into_bytes();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The id at the end of a [`prefixed_id`] key.
pub(crate) fn trailing_id(key: &[u8]) -> u64 {
    key.len()
        .checked_sub(8)
        .and_then(|start| key.get(start..))
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

impl SledStore {
    /// Opens (creating) the database in `dir` and starts its flusher.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when sled cannot open it (for example another server holds it).
    pub fn open(dir: &Path, secrets_key: SecretsKey) -> Result<SledStore> {
        SledStore::open_with(::sled::Config::new().path(dir), secrets_key)
    }

    fn open_with(config: ::sled::Config, secrets_key: SecretsKey) -> Result<SledStore> {
        let db = config.open().map_err(backend)?;
        let trees = AREAS
            .iter()
            .map(|(_, name)| db.open_tree(name))
            .collect::<std::result::Result<Vec<::sled::Tree>, _>>()
            .map_err(backend)?;
        let flusher = db.clone();
        let commit = GroupCommit::start(move || flusher.flush().map(|_| ()).map_err(backend))?;
        let store = SledStore {
            inner: Arc::new(Inner {
                dead_letters: std::sync::atomic::AtomicU64::new(trees[Area::Dlq as usize].len() as u64),
                db,
                trees,
                commit,
                key_value: std::sync::OnceLock::new(),
                secrets_key,
            }),
        };
        let sealed = store.seal_legacy_secrets()?;
        if sealed > 0 {
            tracing::info!(sealed, "sealed secrets that were stored in clear before sealing existed");
        }
        let indexed = store.index_legacy_records()?;
        if indexed > 0 {
            tracing::info!(indexed, "indexed executions and queued work written before their indexes existed");
        }
        Ok(store)
    }

    /// A secret value sealed for storing under `key` in the secrets tree.
    pub(crate) fn seal_secret(&self, key: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        self.inner.secrets_key.seal(key, plain)
    }

    /// The secret stored under `key`, opened.
    pub(crate) fn secret(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(stored) = self.tree(Area::Secrets).get(key).map_err(backend)? else { return Ok(None) };
        Ok(Some(self.inner.secrets_key.open(key, &stored)?))
    }

    /// Seals every secret stored in clear by a version before sealing existed, and checks that
    /// every sealed one opens with this key: a missing or replaced key file is refused at start,
    /// not discovered as failing webhooks and plugins later. Answers how many it sealed.
    fn seal_legacy_secrets(&self) -> Result<usize> {
        let tree = self.tree(Area::Secrets);
        let mut sealed = 0;
        for entry in tree.iter() {
            let (key, value) = entry.map_err(backend)?;
            if SecretsKey::is_sealed(&value) {
                self.inner.secrets_key.open(&key, &value).map_err(|_| StoreError::Corrupt {
                    area: "secrets",
                    detail: "the secrets in this database were sealed with another key: restore the secrets key \
                             file used with it (`secrets_key_file`, default DATA/secrets.key)"
                        .into(),
                })?;
            } else {
                tree.insert(&key, self.seal_secret(&key, &value)?).map_err(backend)?;
                sealed += 1;
            }
        }
        if sealed > 0 {
            self.inner.db.flush().map_err(backend)?;
        }
        Ok(sealed)
    }

    pub(crate) fn tree(&self, area: Area) -> &::sled::Tree {
        // AREAS lists every area in declaration order, so the index is always in range.
        &self.inner.trees[area as usize]
    }

    /// The last [`Op::Applied`] position (0: none).
    pub(crate) fn cluster_applied(&self) -> Result<u64> {
        let value = self.tree(Area::Meta).get(APPLIED_KEY).map_err(backend)?;
        Ok(value.and_then(|v| v.as_ref().try_into().ok()).map_or(0, u64::from_be_bytes))
    }

    /// The cluster backend's bookkeeping: the last revision-checked sequence, and the counters
    /// applied per node.
    pub(crate) fn cluster_marks(&self) -> Result<Vec<ClusterMark>> {
        let meta = self.tree(Area::Meta);
        let value = meta.get(LAST_ADMIN_KEY).map_err(backend)?;
        let last_admin = value.and_then(|v| v.as_ref().try_into().ok()).map_or(0, u64::from_be_bytes);
        let mut marks = vec![ClusterMark::LastAdmin(last_admin)];
        for entry in meta.scan_prefix(SEEN_PREFIX) {
            let (key, value) = entry.map_err(backend)?;
            let node = String::from_utf8_lossy(&key[SEEN_PREFIX.len()..]).into_owned();
            let (highest, below) = decode("cluster window", &value)?;
            marks.push(ClusterMark::Seen { node, highest, below });
        }
        Ok(marks)
    }

    /// Dead letters stored, from the counter `apply` keeps.
    pub(crate) fn dead_letter_count(&self) -> u64 {
        self.inner.dead_letters.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, area: Area, name: &'static str, key: &[u8]) -> Result<Option<T>> {
        self.tree(area).get(key).map_err(backend)?.map(|bytes| decode(name, &bytes)).transpose()
    }

    /// Up to `page.limit` values of `area` under `prefix\0` with ids after (or, newest first,
    /// before) the cursor, and the cursor of the next page. `value` decodes an entry, or answers
    /// `None` to skip it (a filter); at most [`PAGE_SCAN`] entries are looked at per page, so a
    /// filter that passes little answers a short page with a cursor rather than scanning all.
    pub(crate) fn page<T: DeserializeOwned>(
        &self,
        area: Area,
        prefix: Option<&str>,
        page: super::PageRequest,
        value: impl Fn(&[u8], &[u8]) -> Result<Option<T>>,
    ) -> Result<super::Page<T>> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let key = |id: u64| match prefix {
            Some(prefix) => prefixed_id(prefix, id),
            None => id.to_be_bytes().to_vec(),
        };
        let first = prefix.map_or(Unbounded, |p| Included(format!("{p}\0").into_bytes()));
        let past_last = prefix.map_or(Unbounded, |p| Excluded(format!("{p}\u{1}").into_bytes()));
        let range = match (page.cursor, page.newest_first) {
            (None, _) => self.tree(area).range::<Vec<u8>, _>((first, past_last)),
            (Some(after), false) => self.tree(area).range((Excluded(key(after)), past_last)),
            (Some(before), true) => self.tree(area).range((first, Excluded(key(before)))),
        };
        let entries: Box<dyn Iterator<Item = ::sled::Result<(::sled::IVec, ::sled::IVec)>>> =
            if page.newest_first { Box::new(range.rev()) } else { Box::new(range) };
        let mut items = Vec::new();
        let mut last_id = None;
        let mut more = false;
        for (scanned, entry) in entries.enumerate() {
            let (key, stored) = entry.map_err(backend)?;
            if items.len() == page.limit || scanned == PAGE_SCAN {
                more = true;
                break;
            }
            last_id = Some(trailing_id(&key));
            if let Some(item) = value(&key, &stored)? {
                items.push(item);
            }
        }
        // The cursor is the last id looked at: the next page starts past it.
        Ok(super::Page { items, next_cursor: if more { last_id } else { None } })
    }

    fn writes(&self, change: Change) -> Result<Vec<Write>> {
        let mut writes = Vec::new();
        for op in change.ops {
            match op {
                Op::PutBlob { .. }
                | Op::RemoveBlob(_)
                | Op::PutVersion(_)
                | Op::RemoveVersion { .. }
                | Op::SetActive { .. }
                | Op::PutFloor(_)
                | Op::PutOwner { .. }
                | Op::PutGrant { .. }
                | Op::ForgetPlugin(_)
                | Op::AddUsage { .. } => self.plugin_writes(op, &mut writes)?,
                Op::PutTrust(_)
                | Op::PutTokens(_)
                | Op::PutConnection { .. }
                | Op::RemoveConnection(_)
                | Op::Audit(_) => self.access_writes(op, &mut writes)?,
                Op::PutFlow(_)
                | Op::RemoveFlow(_)
                | Op::PutWebhookSecret { .. }
                | Op::PutExecution(_)
                | Op::PutDeadLetter(_)
                | Op::RemoveDeadLetter { .. } => self.flow_writes(op, &mut writes)?,
                Op::Enqueue(_) | Op::Dequeue { .. } | Op::PutCursor { .. } => self.queue_writes(op, &mut writes)?,
                Op::Applied(seq) => writes.push(Write::put(Area::Meta, APPLIED_KEY, seq.to_be_bytes().to_vec())),
                Op::Cluster(ClusterMark::LastAdmin(seq)) => {
                    writes.push(Write::put(Area::Meta, LAST_ADMIN_KEY, seq.to_be_bytes().to_vec()));
                }
                Op::Cluster(ClusterMark::Seen { node, highest, below }) => {
                    let key = [SEEN_PREFIX, node.as_bytes()].concat();
                    writes.push(Write::put(Area::Meta, key, encode(&(highest, below))));
                }
            }
        }
        Ok(writes)
    }
}

impl Storage for SledStore {
    fn apply(&self, change: Change) -> Result<()> {
        use ::sled::Transactional;
        use ::sled::transaction::{ConflictableTransactionError, TransactionError};
        let forgotten: Vec<String> = change
            .ops
            .iter()
            .filter_map(|op| if let Op::ForgetPlugin(name) = op { Some(name.clone()) } else { None })
            .collect();
        let writes = self.writes(change)?;
        if writes.is_empty() {
            return Ok(());
        }
        let outcome = self.inner.trees.as_slice().transaction(|trees| {
            // Dead letters added minus removed, from what each write found (a retried transaction
            // counts afresh).
            let mut dead_letters = 0i64;
            for write in &writes {
                let tree = &trees[write.area as usize];
                let found = match &write.value {
                    Some(value) => tree.insert(write.key.as_slice(), value.as_slice())?.is_none(),
                    None => tree.remove(write.key.as_slice())?.is_some(),
                };
                if write.area == Area::Dlq && found {
                    dead_letters += if write.value.is_some() { 1 } else { -1 };
                }
            }
            Ok::<i64, ConflictableTransactionError<std::convert::Infallible>>(dead_letters)
        });
        let dead_letters = outcome.map_err(|err| match err {
            TransactionError::Storage(err) => backend(err),
            TransactionError::Abort(never) => match never {},
        })?;
        use std::sync::atomic::Ordering::Relaxed;
        let _ = self.inner.dead_letters.fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_add_signed(dead_letters)));
        // The key-value data of a forgotten plugin is gone: so is its quota usage.
        if let Some(key_value) = self.inner.key_value.get() {
            for name in &forgotten {
                key_value.forget_usage(name);
            }
        }
        Ok(())
    }

    fn durable(&self) -> Durable {
        self.inner.commit.durable()
    }

    fn next_id(&self) -> Result<u64> {
        self.inner.db.generate_id().map_err(backend)
    }

    fn commit_stats(&self) -> CommitStats {
        self.inner.commit.stats()
    }

    fn close(&self) -> Durable {
        self.inner.commit.close()
    }

    fn key_value(&self) -> Arc<dyn plugboard_runtime::KeyValueStore> {
        self.inner.key_value.get_or_init(|| Arc::new(keyvalue::SledKeyValue::new(self.tree(Area::Kv).clone()))).clone()
    }
}
