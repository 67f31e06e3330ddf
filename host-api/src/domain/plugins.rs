//! The installed plugins: what is stored and what is loaded and ready to invoke.
//!
//! Only active versions are kept loaded. Mutations (upload, activate, delete, grants) are
//! serialised by one async lock (shared with key changes in [`super::Access`]) so concurrent
//! requests on one plugin always end in a consistent state; invocations never take it — they
//! clone the active [`Plugin`] (an `Arc`) and run outside any lock, so an activation or delete
//! never breaks an invocation already in flight.
//!
//! Every mutation is one [`Change`] with its audit entries, blobs before the records that point
//! at them, and waits for durability before returning, so callers answer 2xx only for what is
//! durable.

use super::{DomainError, Result};
use crate::store::{AuditAction, AuditEntry, Change, Op, PluginOwner, Storage, UsageTotals, VersionRecord, now};
use plugboard_runtime::signing::{self, VerifyOptions};
use plugboard_runtime::sync::ReadWriteLocked;
use plugboard_runtime::{Grant, Plugin, Runtime};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{Mutex, Semaphore};

/// Most plugin compilations at once; uploads beyond wait (compiling is CPU-bound).
const MAX_CONCURRENT_COMPILES: usize = 2;

/// Counts running compilations.
#[derive(Debug, Default)]
struct CompileCount {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl CompileCount {
    /// Counts one compilation until the guard drops.
    fn enter(self: &Arc<Self>) -> CompileGuard {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        CompileGuard(self.clone())
    }
}

struct CompileGuard(Arc<CompileCount>);

impl Drop for CompileGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Installed plugins and the loaded active versions.
pub struct Plugins {
    pub(crate) runtime: Runtime,
    pub(super) store: Arc<dyn Storage>,
    active: RwLock<BTreeMap<String, Plugin>>,
    load_errors: RwLock<BTreeMap<String, String>>,
    pub(super) write: Arc<Mutex<()>>,
    compiles: Arc<Semaphore>,
    /// Compilations running now, and the most ever at once (for `/metrics` and tests).
    compiling: Arc<CompileCount>,
    verify: VerifyOptions,
    /// Usage not yet written; the background tick persists it every 250 ms and at shutdown, so
    /// the invoke path does no database write.
    pub(super) pending_usage: std::sync::Mutex<BTreeMap<String, UsageTotals>>,
    pub(super) telemetry: super::telemetry::Telemetry,
}

/// What an upload did.
pub struct Installed {
    /// The stored version.
    pub record: VersionRecord,
    /// Whether it is now the active version.
    pub active: bool,
    /// Whether this exact file was already installed.
    pub existed: bool,
}

impl Plugins {
    /// Loads every active plugin from its cached artifact.
    pub(super) async fn open(
        runtime: Runtime,
        store: Arc<dyn Storage>,
        verify: VerifyOptions,
        write: Arc<Mutex<()>>,
    ) -> Result<Arc<Plugins>> {
        let plugins = Arc::new(Plugins {
            runtime,
            store,
            active: RwLock::default(),
            load_errors: RwLock::default(),
            write,
            compiles: Arc::new(Semaphore::new(MAX_CONCURRENT_COMPILES)),
            compiling: Arc::default(),
            verify,
            pending_usage: std::sync::Mutex::default(),
            telemetry: super::telemetry::Telemetry::new(super::telemetry::SAMPLE_INTERVAL),
        });
        let mut names: Vec<String> = plugins.store.all_versions()?.into_iter().map(|v| v.name).collect();
        names.dedup();
        plugins.record_owners(&names)?;
        for name in names {
            let Some(version) = plugins.store.active(&name)? else { continue };
            match plugins.load_version(&name, &version).await {
                Ok(plugin) => plugins.set_loaded(&name, plugin),
                Err(err) => {
                    tracing::error!(plugin = %name, %version, %err, "active plugin failed to load at start-up");
                    plugins.set_load_error(&name, err.to_string());
                }
            }
        }
        Ok(plugins)
    }

    /// Stores the owner of every plugin stored before owners were (the signer of its lowest
    /// version), so deleting its versions one by one cannot free its name.
    fn record_owners(&self, names: &[String]) -> Result<()> {
        let mut change = Change::new();
        for name in names {
            if self.store.owner(name)?.is_none()
                && let Some(owner) = self.owner(name)?
            {
                change.push(Op::PutOwner { name: name.clone(), owner });
            }
        }
        if !change.ops.is_empty() {
            self.store.apply(change)?;
        }
        Ok(())
    }

    /// The active plugin called `name`.
    pub fn active(&self, name: &str) -> Option<Plugin> {
        self.active.read_locked().get(name).cloned()
    }

    /// Why the active version of `name` is not loaded, if it failed.
    pub fn load_error(&self, name: &str) -> Option<String> {
        self.load_errors.read_locked().get(name).cloned()
    }

    /// How many plugins are loaded.
    pub fn loaded(&self) -> usize {
        self.active.read_locked().len()
    }

    fn set_loaded(&self, name: &str, plugin: Plugin) {
        self.active.write_locked().insert(name.to_string(), plugin);
        self.load_errors.write_locked().remove(name);
    }

    fn set_load_error(&self, name: &str, reason: String) {
        self.load_errors.write_locked().insert(name.to_string(), reason);
    }

    /// Names of the loaded plugins.
    pub(super) fn loaded_names(&self) -> Vec<String> {
        self.active.read_locked().keys().cloned().collect()
    }

    /// Loads `name` as the store has it now (another cluster node activated, deactivated,
    /// re-granted or deleted it, or revoked its key): the active version with its grant, checked
    /// against the trust store, or nothing.
    pub(super) async fn refresh(&self, name: &str) {
        let _write = self.write.lock().await;
        let version = match self.store.active(name) {
            Ok(version) => version,
            Err(err) => {
                tracing::error!(plugin = %name, %err, "cannot read the plugin another node changed");
                return;
            }
        };
        let Some(version) = version else {
            self.active.write_locked().remove(name);
            self.load_errors.write_locked().remove(name);
            return;
        };
        match self.load_version(name, &version).await {
            Ok(plugin) => self.set_loaded(name, plugin),
            Err(err) => {
                tracing::warn!(plugin = %name, %version, %err, "a plugin another node changed does not load here");
                self.active.write_locked().remove(name);
                self.set_load_error(name, err.to_string());
            }
        }
    }

    /// Unloads every loaded plugin whose signer `trust` does not trust (now revoked); answers
    /// their names.
    pub(super) fn unload_untrusted(&self, trust: &signing::TrustStore) -> Vec<String> {
        let revoked: Vec<String> = self
            .active
            .read_locked()
            .values()
            .filter_map(|plugin| plugin.signer().map(str::to_string))
            .filter(|key_id| !matches!(trust.status(key_id), signing::KeyStatus::Trusted(_)))
            .collect();
        revoked.iter().flat_map(|key_id| self.unload_signed_by(key_id)).collect()
    }

    /// Unloads every active plugin `key_id` signed; returns their names (see
    /// [`super::Access::revoke_key`], which stores the deactivations).
    pub(super) fn unload_signed_by(&self, key_id: &str) -> Vec<String> {
        let mut unloaded = Vec::new();
        self.active.write_locked().retain(|name, plugin| {
            let keep = plugin.signer() != Some(key_id);
            if !keep {
                unloaded.push(name.clone());
            }
            keep
        });
        for name in &unloaded {
            self.set_load_error(name, format!("signing key {key_id} was revoked"));
        }
        unloaded
    }

    /// Verifies and compiles a stored version with the plugin's current grant.
    async fn load_version(&self, name: &str, version: &semver::Version) -> Result<Plugin> {
        let record = self.record(name, version)?;
        let bytes = self
            .store
            .blob(&record.digest)?
            .ok_or_else(|| DomainError::internal(format!("blob {} missing", record.digest)))?;
        let trust = self.store.trust()?;
        let grant = self.store.grant(name)?;
        self.compile(bytes, trust, grant).await
    }

    /// Compiles on the blocking pool, at most [`MAX_CONCURRENT_COMPILES`] at once. The permit
    /// moves into the compilation itself: a caller that gives up (an upload past its request
    /// deadline) cannot cancel a running compilation, so it keeps counting until it ends and
    /// repeated slow uploads cannot pin more cores than the bound.
    async fn compile(&self, bytes: Vec<u8>, trust: signing::TrustStore, grant: Grant) -> Result<Plugin> {
        let permit =
            self.compiles.clone().acquire_owned().await.map_err(|e| DomainError::internal_in("a compile slot", e))?;
        let runtime = self.runtime.clone();
        let verify = self.verify;
        let compiling = self.compiling.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = compiling.enter();
            runtime.load_signed(&bytes, &trust, &grant, verify)
        })
        .await
        .map_err(|e| DomainError::internal_in("the compile task", e))?;
        Ok(loaded?)
    }

    /// Compilations running now and the most that ever ran at once.
    pub fn compilations(&self) -> (usize, usize) {
        (self.compiling.now.load(Ordering::SeqCst), self.compiling.peak.load(Ordering::SeqCst))
    }

    /// The stored record of `name` `version`.
    ///
    /// # Errors
    /// `not-found` when there is none.
    pub fn record(&self, name: &str, version: &semver::Version) -> Result<VersionRecord> {
        self.store
            .version(name, version)?
            .ok_or_else(|| DomainError::not_found(format!("plugin {name} version {version}")))
    }

    /// Every stored version of `name`, lowest first.
    pub fn versions(&self, name: &str) -> Result<Vec<VersionRecord>> {
        Ok(self.store.versions(name)?)
    }

    /// The name of the plugin `bytes` carries, once its signature verifies against the trust
    /// store as it is now (install verifies again under the write lock).
    ///
    /// # Errors
    /// The signature and manifest errors of an upload.
    pub fn signed_name(&self, bytes: &[u8]) -> Result<String> {
        let trust = self.store.trust()?;
        Ok(signing::verify(bytes, &trust, self.verify)?.manifest.name)
    }

    /// Verifies, compiles and stores an uploaded plugin file.
    ///
    /// # Errors
    /// Signature, manifest, world and rollback errors as typed codes; `conflict` when the same
    /// version exists with other content or the name belongs to another key.
    pub async fn install(
        &self,
        bytes: Vec<u8>,
        activate: bool,
        allow_rollback: bool,
        actor: &str,
    ) -> Result<Installed> {
        // Compiled before the write lock is taken, so a slow compilation holds up no key
        // revocation or other change; everything is checked again under the lock.
        let precompiled = self.precompile(&bytes, allow_rollback).await?;
        // Verify under the write lock, against the trust store as it is now: a key revoked while
        // this upload waited cannot slip through.
        let _write = self.write.lock().await;
        let read_at = self.store.position();
        let trust = self.store.trust()?;
        let verified = signing::verify(&bytes, &trust, self.verify)?;
        let manifest = verified.manifest.clone();
        let name = manifest.name.clone();
        let presented = PluginOwner::signed_by(verified.key_id.as_deref());
        let owner = self.check_owner(&name, &presented)?;
        if let Some(existing) = self.store.version(&name, &manifest.version)? {
            if existing.digest != verified.digest {
                return Err(DomainError::conflict(format!(
                    "{name} {} is already installed with other content",
                    manifest.version
                )));
            }
            let active = if activate {
                self.activate_locked(&name, &manifest.version, allow_rollback, actor, read_at).await?
            } else {
                false
            };
            self.store.durable().await?;
            let active = active || self.store.active(&name)?.as_ref() == Some(&manifest.version);
            return Ok(Installed { active, record: existing, existed: true });
        }
        let mut floor = self.store.floor()?;
        let below = floor.highest(&name).is_some_and(|h| &manifest.version < h);
        let highest = floor.highest(&name).map(ToString::to_string).unwrap_or_default();
        floor.admit(&name, &manifest.version, allow_rollback)?;
        let grant = self.store.grant(&name)?;
        let plugin = match precompiled {
            Some(plugin) => plugin.regrant(&grant),
            None => self.compile(bytes.clone(), trust, grant).await?,
        };
        let record = VersionRecord {
            name: name.clone(),
            version: manifest.version.clone(),
            digest: verified.digest.clone(),
            key_id: verified.key_id.clone(),
            manifest,
            uploaded_at: now(),
        };
        let target = format!("{name}@{}", record.version);
        let mut change = Change::read_at(read_at)
            .with(Op::PutBlob { digest: record.digest.clone(), bytes })
            .with(Op::PutVersion(Box::new(record.clone())))
            .with(Op::PutFloor(floor));
        if owner.is_none() {
            change.push(Op::PutOwner { name: name.clone(), owner: presented });
        }
        if below {
            change = change.audit(
                AuditEntry::new(actor, AuditAction::RollbackOverride, &name)
                    .key(record.key_id.clone())
                    .detail(format!("installed {} below the highest {highest}", record.version)),
            );
        }
        change = change.audit(
            AuditEntry::new(actor, AuditAction::Upload, &target)
                .key(record.key_id.clone())
                .detail(format!("digest {}", record.digest)),
        );
        if activate {
            change = change
                .with(Op::SetActive { name: name.clone(), version: Some(record.version.clone()) })
                .audit(AuditEntry::new(actor, AuditAction::Activate, &target).key(record.key_id.clone()));
        }
        self.store.apply(change)?;
        if activate {
            self.set_loaded(&name, plugin);
        }
        self.store.durable().await?;
        Ok(Installed { record, active: activate, existed: false })
    }

    /// The checks of [`Plugins::install`] against the state as it is now, then the compilation
    /// of a new version (outside the write lock); `None` for a version already stored.
    async fn precompile(&self, bytes: &[u8], allow_rollback: bool) -> Result<Option<Plugin>> {
        let trust = self.store.trust()?;
        let verified = signing::verify(bytes, &trust, self.verify)?;
        let (name, version) = (&verified.manifest.name, &verified.manifest.version);
        self.check_owner(name, &PluginOwner::signed_by(verified.key_id.as_deref()))?;
        if self.store.version(name, version)?.is_some() {
            return Ok(None);
        }
        self.store.floor()?.admit(name, version, allow_rollback)?;
        let grant = self.store.grant(name)?;
        Ok(Some(self.compile(bytes.to_vec(), trust, grant).await?))
    }

    /// A name belongs to the key that first published it (unsigned uploads: to unsigned uploads)
    /// until the plugin itself is deleted; nobody else can take it over, even after every version
    /// was deleted, and inherit its grant, secrets and data. Answers the owner, if any.
    fn check_owner(&self, name: &str, presented: &PluginOwner) -> Result<Option<PluginOwner>> {
        let owner = self.owner(name)?;
        if let Some(owner) = &owner
            && owner != presented
        {
            return Err(DomainError::conflict(format!(
                "plugin {name} belongs to {owner}; delete the plugin (DELETE /v1/plugins/{name}) to free its name"
            )));
        }
        Ok(owner)
    }

    /// Makes `version` the active version of `name` (atomically; the previous one stays stored).
    ///
    /// # Errors
    /// `not-found` for an unknown version; load errors as typed codes.
    pub async fn activate(
        &self,
        name: &str,
        version: &semver::Version,
        allow_rollback: bool,
        actor: &str,
    ) -> Result<()> {
        let _write = self.write.lock().await;
        let read_at = self.store.position();
        self.activate_locked(name, version, allow_rollback, actor, read_at).await?;
        self.store.durable().await?;
        Ok(())
    }

    /// Activates a stored version. The version floor applies here as it does to uploads: a
    /// version below the highest ever installed is activated only with `allow_rollback`, and the
    /// override is audited with the activation.
    async fn activate_locked(
        &self,
        name: &str,
        version: &semver::Version,
        allow_rollback: bool,
        actor: &str,
        read_at: Option<u64>,
    ) -> Result<bool> {
        let record = self.record(name, version)?;
        let floor = self.store.floor()?;
        let below = floor.highest(name).filter(|highest| version < *highest).cloned();
        if let Some(highest) = &below
            && !allow_rollback
        {
            let (name, version, highest) = (name.to_string(), version.clone(), highest.clone());
            return Err(plugboard_runtime::Error::Rollback { name, version, highest }.into());
        }
        let plugin = self.load_version(name, version).await?;
        let target = format!("{name}@{version}");
        let mut change =
            Change::read_at(read_at).with(Op::SetActive { name: name.into(), version: Some(version.clone()) });
        if let Some(highest) = below {
            change = change.audit(
                AuditEntry::new(actor, AuditAction::RollbackOverride, name)
                    .key(record.key_id.clone())
                    .detail(format!("activated {version} below the highest {highest}")),
            );
        }
        self.store.apply(change.audit(AuditEntry::new(actor, AuditAction::Activate, target).key(record.key_id)))?;
        self.set_loaded(name, plugin);
        Ok(true)
    }

    /// Who owns `name`: the stored owner, or (data from before owners were stored) the signer of
    /// its lowest stored version.
    fn owner(&self, name: &str) -> Result<Option<PluginOwner>> {
        if let Some(owner) = self.store.owner(name)? {
            return Ok(Some(owner));
        }
        Ok(self.versions(name)?.first().map(|v| PluginOwner::signed_by(v.key_id.as_deref())))
    }

    /// Deactivates `name`; in-flight invocations finish.
    ///
    /// # Errors
    /// `not-found` when it has no active version.
    pub async fn deactivate(&self, name: &str, actor: &str) -> Result<()> {
        let _write = self.write.lock().await;
        let read_at = self.store.position();
        let version =
            self.store.active(name)?.ok_or_else(|| DomainError::not_found(format!("active version of {name}")))?;
        self.store.apply(
            Change::read_at(read_at).with(Op::SetActive { name: name.into(), version: None }).audit(AuditEntry::new(
                actor,
                AuditAction::Deactivate,
                format!("{name}@{version}"),
            )),
        )?;
        self.active.write_locked().remove(name);
        self.store.durable().await?;
        Ok(())
    }

    /// Deletes one version (or, with `None`, the plugin: every version, its owner, grant,
    /// secrets and data) of `name`. The active version cannot be deleted: deactivate first.
    /// Deleting the last version alone keeps the plugin (its owner, grant and data): only its
    /// publisher can publish the name again until the plugin is deleted.
    ///
    /// # Errors
    /// `not-found`, or `conflict` for the active version.
    pub async fn delete(&self, name: &str, version: Option<&semver::Version>, actor: &str) -> Result<()> {
        let _write = self.write.lock().await;
        let read_at = self.store.position();
        let active = self.store.active(name)?;
        let doomed: Vec<VersionRecord> = match version {
            Some(v) => vec![self.record(name, v)?],
            None => self.versions(name)?,
        };
        // A plugin with no version left may still hold a name, a grant, secrets or data.
        let leftovers =
            || -> Result<bool> { Ok(self.store.owner(name)?.is_some() || self.store.grant(name)? != Grant::default()) };
        if doomed.is_empty() && (version.is_some() || !leftovers()?) {
            return Err(DomainError::not_found(format!("plugin {name}")));
        }
        if let Some(active) = &active
            && doomed.iter().any(|d| &d.version == active)
        {
            return Err(DomainError::conflict(format!("{name} {active} is active; deactivate it first")));
        }
        let remaining: Vec<VersionRecord> =
            self.store.all_versions()?.into_iter().filter(|v| !doomed.iter().any(|d| d == v)).collect();
        let mut change = Change::read_at(read_at);
        for record in &doomed {
            change.push(Op::RemoveVersion { name: name.into(), version: record.version.clone() });
            if !remaining.iter().any(|v| v.digest == record.digest) {
                change.push(Op::RemoveBlob(record.digest.clone()));
            }
            change.push(Op::Audit(
                AuditEntry::new(actor, AuditAction::Delete, format!("{name}@{}", record.version))
                    .key(record.key_id.clone()),
            ));
        }
        if version.is_none() {
            change.push(Op::ForgetPlugin(name.into()));
            change.push(Op::Audit(
                AuditEntry::new(actor, AuditAction::Delete, name).detail("the plugin: owner, grant, secrets and data"),
            ));
        }
        self.store.apply(change)?;
        self.store.durable().await?;
        Ok(())
    }

    /// Updates the grant of `name` (capabilities, budget, config, secrets) with `update`,
    /// re-granting the loaded plugin; audited as `action` with `detail` (never secret values).
    ///
    /// # Errors
    /// `not-found` for an unknown plugin.
    pub async fn set_grant(
        &self,
        name: &str,
        update: impl FnOnce(&mut Grant),
        action: AuditAction,
        detail: String,
        actor: &str,
    ) -> Result<Grant> {
        let _write = self.write.lock().await;
        let read_at = self.store.position();
        if self.versions(name)?.is_empty() {
            return Err(DomainError::not_found(format!("plugin {name}")));
        }
        let mut grant = self.store.grant(name)?;
        update(&mut grant);
        self.store.apply(
            Change::read_at(read_at)
                .with(Op::PutGrant { name: name.into(), grant: grant.clone() })
                .audit(AuditEntry::new(actor, action, name).detail(detail)),
        )?;
        {
            let mut active = self.active.write_locked();
            if let Some(plugin) = active.get(name).cloned() {
                active.insert(name.to_string(), plugin.regrant(&grant));
            }
        }
        self.store.durable().await?;
        Ok(grant)
    }

    /// The kind of `name`: of its active version, else of its newest stored one.
    pub fn kind_of(&self, name: &str) -> Option<plugboard_runtime::Kind> {
        match self.active(name) {
            Some(plugin) => Some(plugin.manifest().kind),
            None => self.versions(name).ok()?.last().map(|v| v.manifest.kind),
        }
    }
}
