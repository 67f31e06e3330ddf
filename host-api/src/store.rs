//! Everything the control plane persists, in sled under the data directory.
//!
//! Trees: `blobs` (digest → signed plugin file), `versions` (`name\0version` → [`VersionRecord`]),
//! `active` (name → version), `grants` (name → [`Grant`] without secret values), `secrets`
//! (name → secret values, never returned by the API), `meta` (trust store, version floor, tokens),
//! `audit` (sequence → [`AuditEntry`]), `kv` (plugin key-value data), `usage` (name → [`UsageTotals`]),
//! `flows` (name → definition), `executions` (sequence → [`ExecutionRecord`]), `dlq`
//! (`flow\0sequence` → [`DeadLetterRecord`]), `queue` (sequence → [`QueuedRun`]) and `deliveries`
//! (`flow\0signature` → when the mark expires and the queued run, for webhook replay protection).
//!
//! Durability rules: blobs are written before the records that point at them, digests are
//! checked when blobs are read back, and [`Store::flush`] runs before any 2xx answer, so nothing
//! acknowledged is lost on a crash.

use plugboard_runtime::signing::{TrustStore, VersionFloor};
use plugboard_runtime::{Grant, KeyValueStore, Manifest};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::path::Path;

/// A storage failure; the API reports it as `internal` and logs the detail.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("database: {0}")]
    Db(#[from] sled::Error),
    /// A stored record does not decode.
    #[error("corrupt record in {tree}: {detail}")]
    Corrupt {
        /// Which tree.
        tree: &'static str,
        /// What failed.
        detail: String,
    },
    /// A blob's bytes do not match its digest.
    #[error("blob {0} does not match its digest")]
    DigestMismatch(String),
}

type Result<T> = std::result::Result<T, StoreError>;

/// One installed version of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Plugin name.
    pub name: String,
    /// Version.
    pub version: semver::Version,
    /// Hex SHA-256 of the signed file (the blob key).
    pub digest: String,
    /// Signer key id.
    pub key_id: Option<String>,
    /// The signed manifest.
    pub manifest: Manifest,
    /// Upload time, seconds since the Unix epoch.
    pub uploaded_at: u64,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: u64,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// Who: the token's name.
    pub actor: String,
    /// What: `upload`, `activate`, `deactivate`, `delete`, `grants`, `config`, `key-add`,
    /// `key-revoke`, `rollback-override`, `token-create`.
    pub action: String,
    /// Which plugin, key or token.
    pub target: String,
    /// The signer key id of the plugin concerned, when there is one.
    pub key_id: Option<String>,
    /// Free-form detail (never secret values).
    pub detail: String,
}

/// Invocation counters per plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Invocations.
    pub invocations: u64,
    /// Failed invocations.
    pub errors: u64,
    /// Fuel consumed in total.
    pub fuel: u64,
}

/// Stored API token: only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// A name for the audit log.
    pub name: String,
    /// `admin`, `publisher` or `invoker`.
    pub role: crate::api::auth::Role,
    /// Hex SHA-256 of the token.
    pub hash: String,
}

/// The sled database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    blobs: sled::Tree,
    versions: sled::Tree,
    active: sled::Tree,
    grants: sled::Tree,
    secrets: sled::Tree,
    meta: sled::Tree,
    audit: sled::Tree,
    kv: sled::Tree,
    usage: sled::Tree,
    flows: sled::Tree,
    executions: sled::Tree,
    dlq: sled::Tree,
    queue: sled::Tree,
    deliveries: sled::Tree,
}

fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|err| StoreError::Corrupt { tree, detail: err.to_string() })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn version_key(name: &str, version: &semver::Version) -> Vec<u8> {
    format!("{name}\0{version}").into_bytes()
}

impl Store {
    /// Opens (creating) the database in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Db`] when sled cannot open it (for example another server holds it).
    pub fn open(dir: &Path) -> Result<Store> {
        let db = sled::Config::new().path(dir).open()?;
        Ok(Store {
            blobs: db.open_tree("blobs")?,
            versions: db.open_tree("versions")?,
            active: db.open_tree("active")?,
            grants: db.open_tree("grants")?,
            secrets: db.open_tree("secrets")?,
            meta: db.open_tree("meta")?,
            audit: db.open_tree("audit")?,
            kv: db.open_tree("kv")?,
            usage: db.open_tree("usage")?,
            flows: db.open_tree("flows")?,
            executions: db.open_tree("executions")?,
            dlq: db.open_tree("dlq")?,
            queue: db.open_tree("queue")?,
            deliveries: db.open_tree("deliveries")?,
            db,
        })
    }

    /// Makes everything written so far durable.
    ///
    /// # Errors
    /// [`StoreError::Db`] on I/O failure.
    pub async fn flush(&self) -> Result<()> {
        self.db.flush_async().await?;
        Ok(())
    }

    fn meta_get<T: DeserializeOwned + Default>(&self, key: &str) -> Result<T> {
        self.meta.get(key)?.map_or_else(|| Ok(T::default()), |bytes| decode("meta", &bytes))
    }

    fn meta_put<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        self.meta.insert(key, encode(value))?;
        Ok(())
    }

    /// The trust store.
    pub fn trust(&self) -> Result<TrustStore> {
        self.meta_get("trust")
    }
    /// Saves the trust store.
    pub fn put_trust(&self, trust: &TrustStore) -> Result<()> {
        self.meta_put("trust", trust)
    }
    /// The anti-rollback floor.
    pub fn floor(&self) -> Result<VersionFloor> {
        self.meta_get("floor")
    }
    /// Saves the anti-rollback floor.
    pub fn put_floor(&self, floor: &VersionFloor) -> Result<()> {
        self.meta_put("floor", floor)
    }
    /// API tokens.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.meta_get("tokens")
    }
    /// Saves API tokens.
    pub fn put_tokens(&self, tokens: &[TokenRecord]) -> Result<()> {
        self.meta_put("tokens", &tokens)
    }

    /// Stores a plugin file under its digest.
    pub fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        self.blobs.insert(digest, bytes)?;
        Ok(())
    }

    /// A plugin file, checked against its digest.
    pub fn blob(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let Some(bytes) = self.blobs.get(digest)? else { return Ok(None) };
        if plugboard_runtime::digest(&bytes) != digest {
            return Err(StoreError::DigestMismatch(digest.to_string()));
        }
        Ok(Some(bytes.to_vec()))
    }

    /// Removes a blob no version points at any more.
    pub fn remove_blob_if_unused(&self, digest: &str) -> Result<()> {
        if !self.all_versions()?.iter().any(|v| v.digest == digest) {
            self.blobs.remove(digest)?;
        }
        Ok(())
    }

    /// Digests of every stored blob.
    pub fn blob_digests(&self) -> Result<Vec<String>> {
        self.blobs.iter().keys().map(|k| Ok(String::from_utf8_lossy(&k?).into_owned())).collect()
    }

    /// Records an installed version (its blob must already be stored).
    pub fn put_version(&self, record: &VersionRecord) -> Result<()> {
        self.versions.insert(version_key(&record.name, &record.version), encode(record))?;
        Ok(())
    }

    /// Removes a version record.
    pub fn remove_version(&self, name: &str, version: &semver::Version) -> Result<()> {
        self.versions.remove(version_key(name, version))?;
        Ok(())
    }

    /// Every installed version, ordered by name then version text.
    pub fn all_versions(&self) -> Result<Vec<VersionRecord>> {
        self.versions.iter().values().map(|v| decode("versions", &v?)).collect()
    }

    /// The active version of `name`.
    pub fn active(&self, name: &str) -> Result<Option<semver::Version>> {
        self.active
            .get(name)?
            .map(|v| {
                semver::Version::parse(&String::from_utf8_lossy(&v))
                    .map_err(|e| StoreError::Corrupt { tree: "active", detail: e.to_string() })
            })
            .transpose()
    }

    /// Sets or clears the active version of `name`.
    pub fn set_active(&self, name: &str, version: Option<&semver::Version>) -> Result<()> {
        match version {
            Some(version) => self.active.insert(name, version.to_string().as_bytes())?,
            None => self.active.remove(name)?,
        };
        Ok(())
    }

    /// The grant of `name`, secrets included (for loading, never for answering).
    pub fn grant(&self, name: &str) -> Result<Grant> {
        let mut grant: Grant = self.grants.get(name)?.map_or_else(|| Ok(Grant::default()), |b| decode("grants", &b))?;
        grant.secrets = self.secrets.get(name)?.map_or_else(|| Ok(BTreeMap::new()), |b| decode("secrets", &b))?;
        Ok(grant)
    }

    /// Saves the grant of `name`; secret values go to their own tree.
    pub fn put_grant(&self, name: &str, grant: &Grant) -> Result<()> {
        let public = Grant { secrets: BTreeMap::new(), ..grant.clone() };
        self.grants.insert(name, encode(&public))?;
        self.secrets.insert(name, encode(&grant.secrets))?;
        Ok(())
    }

    /// Forgets everything about plugin `name` (key-value data included) but its audit trail and
    /// version floor, so a later plugin of that name starts clean.
    pub fn remove_plugin(&self, name: &str) -> Result<()> {
        self.active.remove(name)?;
        self.grants.remove(name)?;
        self.secrets.remove(name)?;
        self.usage.remove(name)?;
        for key in self.kv.scan_prefix(format!("{name}\0").as_bytes()).keys() {
            self.kv.remove(key?)?;
        }
        Ok(())
    }

    /// Appends an audit entry; returns it with its id.
    pub fn audit(&self, mut entry: AuditEntry) -> Result<AuditEntry> {
        entry.id = self.db.generate_id()?;
        self.audit.insert(entry.id.to_be_bytes(), encode(&entry))?;
        Ok(entry)
    }

    /// The audit log, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>> {
        self.audit.iter().values().map(|v| decode("audit", &v?)).collect()
    }

    /// Adds `delta` to the usage totals of `name`.
    pub fn add_usage(&self, name: &str, delta: &UsageTotals) -> Result<()> {
        self.usage.fetch_and_update(name, |old| {
            let mut totals: UsageTotals = old.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
            totals.invocations += delta.invocations;
            totals.errors += delta.errors;
            totals.fuel = totals.fuel.saturating_add(delta.fuel);
            Some(encode(&totals))
        })?;
        Ok(())
    }

    /// Usage totals of `name`.
    pub fn usage(&self, name: &str) -> Result<UsageTotals> {
        self.usage.get(name)?.map_or_else(|| Ok(UsageTotals::default()), |b| decode("usage", &b))
    }
}

/// One execution of a flow, as stored and answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// Sequence number.
    pub id: u64,
    /// The flow.
    pub flow: String,
    /// `running`, `succeeded`, `completed-with-dead-letters` or `failed`.
    pub status: String,
    /// What started it: `manual`, or `replay`.
    pub trigger: String,
    /// Start and end, seconds since the Unix epoch.
    pub started_at: u64,
    /// End.
    pub finished_at: Option<u64>,
    /// Plugin versions pinned at start.
    pub plugin_versions: BTreeMap<String, String>,
    /// Records in.
    pub records_in: u64,
    /// What happened.
    #[serde(flatten)]
    pub outcome: plugboard_runtime::flow::RunOutcome,
}

/// A dead letter in the queue of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterRecord {
    /// Sequence number.
    pub id: u64,
    /// The flow.
    pub flow: String,
    /// The execution that produced it.
    pub execution: u64,
    /// When, seconds since the Unix epoch.
    pub at: u64,
    /// The record, step, error and attempts.
    #[serde(flatten)]
    pub letter: plugboard_runtime::flow::DeadLetter,
}

/// Field `index` (0: expiry, 1: queued run id) of a delivery mark, two big-endian `u64`s.
fn mark_field(mark: &[u8], index: usize) -> u64 {
    mark.get(index * 8..index * 8 + 8).and_then(|bytes| bytes.try_into().ok()).map_or(0, u64::from_be_bytes)
}

fn dlq_key(flow: &str, id: u64) -> Vec<u8> {
    let mut key = format!("{flow}\0").into_bytes();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

impl Store {
    /// A fresh sequence number.
    pub fn next_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    /// A flow definition.
    pub fn flow(&self, name: &str) -> Result<Option<plugboard_runtime::flow::FlowDefinition>> {
        self.flows.get(name)?.map(|b| decode("flows", &b)).transpose()
    }

    /// Every flow definition.
    pub fn all_flows(&self) -> Result<Vec<plugboard_runtime::flow::FlowDefinition>> {
        self.flows.iter().values().map(|v| decode("flows", &v?)).collect()
    }

    /// Saves a flow definition.
    pub fn put_flow(&self, flow: &plugboard_runtime::flow::FlowDefinition) -> Result<()> {
        self.flows.insert(flow.name.as_str(), encode(flow))?;
        Ok(())
    }

    /// Removes a flow definition, its webhook secret and delivery marks (executions and dead
    /// letters stay for inspection).
    pub fn remove_flow(&self, name: &str) -> Result<bool> {
        self.secrets.remove(format!("flow\0{name}"))?;
        for key in self.deliveries.scan_prefix(format!("{name}\0").as_bytes()).keys() {
            self.deliveries.remove(key?)?;
        }
        Ok(self.flows.remove(name)?.is_some())
    }

    /// Saves an execution.
    pub fn put_execution(&self, execution: &ExecutionRecord) -> Result<()> {
        self.executions.insert(execution.id.to_be_bytes(), encode(execution))?;
        Ok(())
    }

    /// An execution.
    pub fn execution(&self, id: u64) -> Result<Option<ExecutionRecord>> {
        self.executions.get(id.to_be_bytes())?.map(|b| decode("executions", &b)).transpose()
    }

    /// Executions of `flow`, oldest first.
    pub fn executions(&self, flow: &str) -> Result<Vec<ExecutionRecord>> {
        let all: Vec<ExecutionRecord> =
            self.executions.iter().values().map(|v| decode("executions", &v?)).collect::<Result<_>>()?;
        Ok(all.into_iter().filter(|e| e.flow == flow).collect())
    }

    /// Adds a dead letter.
    pub fn put_dead_letter(&self, letter: &DeadLetterRecord) -> Result<()> {
        self.dlq.insert(dlq_key(&letter.flow, letter.id), encode(letter))?;
        Ok(())
    }

    /// The dead letters of `flow`, oldest first.
    pub fn dead_letters(&self, flow: &str) -> Result<Vec<DeadLetterRecord>> {
        let prefix = format!("{flow}\0");
        self.dlq.scan_prefix(prefix.as_bytes()).values().map(|v| decode("dlq", &v?)).collect()
    }

    /// Removes a dead letter; whether it existed.
    pub fn remove_dead_letter(&self, flow: &str, id: u64) -> Result<bool> {
        Ok(self.dlq.remove(dlq_key(flow, id))?.is_some())
    }
}

/// Work acknowledged to a trigger (a webhook caller) and not yet run to completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedRun {
    /// Sequence number.
    pub id: u64,
    /// The flow.
    pub flow: String,
    /// Input records.
    pub records: Vec<serde_json::Value>,
    /// `webhook`.
    pub trigger: String,
    /// When it was acknowledged, seconds since the Unix epoch.
    pub received_at: u64,
}

impl Store {
    /// Queues work; call [`Store::flush`] before acknowledging it.
    pub fn enqueue(&self, run: &QueuedRun) -> Result<()> {
        self.queue.insert(run.id.to_be_bytes(), encode(run))?;
        Ok(())
    }

    /// Queues a webhook delivery unless one with the same `signature` was queued before (a retry or
    /// a replay): the delivery's mark and its queued run are written in one transaction, so neither
    /// is ever durable without the other. Returns the id of the run that holds the delivery and
    /// whether it was queued now. Call [`Store::flush`] before acknowledging it.
    pub fn enqueue_once(&self, run: &QueuedRun, signature: &[u8], expires_at: u64) -> Result<(u64, bool)> {
        use sled::Transactional;
        let mut key = format!("{}\0", run.flow).into_bytes();
        key.extend_from_slice(signature);
        let mut mark = expires_at.to_be_bytes().to_vec();
        mark.extend_from_slice(&run.id.to_be_bytes());
        let run_bytes = encode(run);
        let outcome = (&self.deliveries, &self.queue).transaction(|(deliveries, queue)| {
            if let Some(earlier) = deliveries.get(&key)? {
                return Ok((mark_field(&earlier, 1), false));
            }
            deliveries.insert(key.as_slice(), mark.as_slice())?;
            queue.insert(&run.id.to_be_bytes(), run_bytes.as_slice())?;
            Ok((run.id, true))
        });
        outcome.map_err(|err: sled::transaction::TransactionError<std::convert::Infallible>| match err {
            sled::transaction::TransactionError::Storage(err) => StoreError::Db(err),
            sled::transaction::TransactionError::Abort(never) => match never {},
        })
    }

    /// Forgets delivery marks that expired before `now` (their timestamps are refused as stale by
    /// then anyway); returns how many.
    pub fn sweep_delivery_marks(&self, now: u64) -> Result<usize> {
        let mut swept = 0;
        for entry in self.deliveries.iter() {
            let (key, mark) = entry?;
            if mark_field(&mark, 0) < now {
                self.deliveries.remove(key)?;
                swept += 1;
            }
        }
        Ok(swept)
    }

    /// Queued work, oldest first.
    pub fn queued(&self) -> Result<Vec<QueuedRun>> {
        self.queue.iter().values().map(|v| decode("queue", &v?)).collect()
    }

    /// Removes finished work.
    pub fn dequeue(&self, id: u64) -> Result<()> {
        self.queue.remove(id.to_be_bytes())?;
        Ok(())
    }

    /// The webhook secret of `flow`.
    pub fn webhook_secret(&self, flow: &str) -> Result<Option<String>> {
        Ok(self.secrets.get(format!("flow\0{flow}"))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets the webhook secret of `flow`.
    pub fn put_webhook_secret(&self, flow: &str, secret: &str) -> Result<()> {
        self.secrets.insert(format!("flow\0{flow}"), secret.as_bytes())?;
        Ok(())
    }

    /// Where the source of `flow` resumes.
    pub fn cursor(&self, flow: &str) -> Result<Option<String>> {
        Ok(self.meta.get(format!("cursor\0{flow}"))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets (or, with `None`, clears) where the source of `flow` resumes.
    pub fn put_cursor(&self, flow: &str, cursor: Option<&str>) -> Result<()> {
        match cursor {
            Some(cursor) => self.meta.insert(format!("cursor\0{flow}"), cursor.as_bytes())?,
            None => self.meta.remove(format!("cursor\0{flow}"))?,
        };
        Ok(())
    }

    /// Marks executions left `running` by a crash as `interrupted`; returns how many.
    pub fn mark_interrupted(&self) -> Result<usize> {
        let mut count = 0;
        for value in self.executions.iter().values() {
            let mut execution: ExecutionRecord = decode("executions", &value?)?;
            if execution.status == "running" {
                execution.status = "interrupted".into();
                self.put_execution(&execution)?;
                count += 1;
            }
        }
        Ok(count)
    }
}

/// Plugin key-value data in the `kv` tree: `namespace\0bucket\0key`.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

fn kv_key(namespace: &str, bucket: &str, key: &str) -> Vec<u8> {
    format!("{namespace}\0{bucket}\0{key}").into_bytes()
}

impl KeyValueStore for Store {
    fn get(&self, namespace: &str, bucket: &str, key: &str) -> std::result::Result<Option<Vec<u8>>, String> {
        self.kv.get(kv_key(namespace, bucket, key)).map(|v| v.map(|v| v.to_vec())).map_err(|e| e.to_string())
    }

    fn set(&self, namespace: &str, bucket: &str, key: &str, value: Vec<u8>) -> std::result::Result<(), String> {
        self.kv.insert(kv_key(namespace, bucket, key), value).map(|_| ()).map_err(|e| e.to_string())
    }

    fn delete(&self, namespace: &str, bucket: &str, key: &str) -> std::result::Result<(), String> {
        self.kv.remove(kv_key(namespace, bucket, key)).map(|_| ()).map_err(|e| e.to_string())
    }

    fn keys(
        &self,
        namespace: &str,
        bucket: &str,
        skip: usize,
        limit: usize,
    ) -> std::result::Result<Vec<String>, String> {
        let prefix = format!("{namespace}\0{bucket}\0");
        self.kv
            .scan_prefix(prefix.as_bytes())
            .keys()
            .skip(skip)
            .take(limit)
            .map(|k| k.map(|k| String::from_utf8_lossy(&k[prefix.len()..]).into_owned()).map_err(|e| e.to_string()))
            .collect()
    }
}
