//! The installed plugins: what is stored (via [`Store`]) and what is loaded and ready to invoke.
//!
//! Only active versions are kept loaded. Mutations (upload, activate, delete, grants, keys) are
//! serialised by one async lock so concurrent requests on one plugin always end in a consistent
//! state; invocations never take it — they clone the active [`Plugin`] (an `Arc`) and run outside
//! any lock, so an activation or delete never breaks an invocation already in flight.
//!
//! Every mutation writes blobs before the records that point at them and flushes before returning,
//! so the API answers 2xx only for what is durable.

use crate::api::error::ApiError;
use crate::store::{AuditEntry, Store, VersionRecord};
use plugboard_runtime::signing::{self, VerifyOptions};
use plugboard_runtime::{Error, Grant, Plugin, Runtime};
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use tokio::sync::{Mutex, Semaphore};

/// Most plugin compilations at once; uploads beyond wait (compiling is CPU-bound).
const MAX_CONCURRENT_COMPILES: usize = 2;

/// The registry shared by all handlers.
pub struct Registry {
    pub(crate) runtime: Runtime,
    pub(crate) store: Store,
    active: RwLock<BTreeMap<String, Plugin>>,
    load_errors: RwLock<BTreeMap<String, String>>,
    write: Mutex<()>,
    compiles: Semaphore,
    verify: VerifyOptions,
    /// Woken when work is queued for the flow worker.
    pub(crate) queue_signal: tokio::sync::Notify,
    /// API tokens, cached: every request authenticates, and sled is the source of truth.
    tokens: RwLock<Vec<crate::store::TokenRecord>>,
    /// Usage not yet written to sled; the worker persists it every second and at shutdown, so the
    /// invoke path does no database write.
    pending_usage: std::sync::Mutex<BTreeMap<String, crate::store::UsageTotals>>,
    /// When each cron trigger (`flow#index`) next fires.
    pub(crate) cron_next: std::sync::Mutex<BTreeMap<String, Option<chrono::DateTime<chrono::Utc>>>>,
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
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

impl Registry {
    /// A registry over `store`, loading every active plugin from its cached artifact.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn open(runtime: Runtime, store: Store, verify: VerifyOptions) -> Result<Arc<Registry>, ApiError> {
        let store_tokens = store.tokens()?;
        let registry = Arc::new(Registry {
            runtime,
            store,
            active: RwLock::default(),
            load_errors: RwLock::default(),
            write: Mutex::new(()),
            compiles: Semaphore::new(MAX_CONCURRENT_COMPILES),
            verify,
            queue_signal: tokio::sync::Notify::new(),
            tokens: RwLock::new(store_tokens),
            pending_usage: std::sync::Mutex::default(),
            cron_next: std::sync::Mutex::default(),
        });
        let interrupted = registry.store.mark_interrupted()?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "flow executions were interrupted by a crash; their queued work runs again");
        }
        let names: Vec<String> = registry.store.all_versions()?.into_iter().map(|v| v.name).collect();
        for name in names {
            let Some(version) = registry.store.active(&name)? else { continue };
            if registry.active.read().unwrap_or_else(PoisonError::into_inner).contains_key(&name) {
                continue;
            }
            match registry.load_version(&name, &version).await {
                Ok(plugin) => {
                    registry.active.write().unwrap_or_else(PoisonError::into_inner).insert(name, plugin);
                }
                Err(err) => {
                    tracing::error!(plugin = %name, %version, %err, "active plugin failed to load at start-up");
                    registry.load_errors.write().unwrap_or_else(PoisonError::into_inner).insert(name, err.to_string());
                }
            }
        }
        Ok(registry)
    }

    /// The active plugin called `name`.
    pub fn active(&self, name: &str) -> Option<Plugin> {
        self.active.read().unwrap_or_else(PoisonError::into_inner).get(name).cloned()
    }

    /// Why the active version of `name` is not loaded, if it failed.
    pub fn load_error(&self, name: &str) -> Option<String> {
        self.load_errors.read().unwrap_or_else(PoisonError::into_inner).get(name).cloned()
    }

    /// How many plugins are loaded.
    pub fn loaded(&self) -> usize {
        self.active.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Verifies and compiles a stored version with the plugin's current grant.
    async fn load_version(&self, name: &str, version: &semver::Version) -> Result<Plugin, ApiError> {
        let record = self.record(name, version)?;
        let bytes = self.store.blob(&record.digest)?.ok_or_else(|| ApiError::internal("blob missing"))?;
        let trust = self.store.trust()?;
        let grant = self.store.grant(name)?;
        self.compile(bytes, trust, grant).await
    }

    async fn compile(&self, bytes: Vec<u8>, trust: signing::TrustStore, grant: Grant) -> Result<Plugin, ApiError> {
        let _permit = self.compiles.acquire().await.map_err(ApiError::internal)?;
        let runtime = self.runtime.clone();
        let verify = self.verify;
        tokio::task::spawn_blocking(move || runtime.load_signed(&bytes, &trust, &grant, verify))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }

    /// The stored record of `name` `version`.
    pub fn record(&self, name: &str, version: &semver::Version) -> Result<VersionRecord, ApiError> {
        self.store
            .all_versions()?
            .into_iter()
            .find(|v| v.name == name && &v.version == version)
            .ok_or_else(|| ApiError::from(Error::NotFound(format!("plugin {name} version {version}"))))
    }

    /// Every stored version of `name`, lowest first.
    pub fn versions(&self, name: &str) -> Result<Vec<VersionRecord>, ApiError> {
        let mut versions: Vec<_> = self.store.all_versions()?.into_iter().filter(|v| v.name == name).collect();
        versions.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(versions)
    }

    async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        key_id: Option<String>,
        detail: String,
    ) -> Result<(), ApiError> {
        let entry = AuditEntry {
            id: 0,
            at: now(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            key_id,
            detail,
        };
        self.store.audit(entry)?;
        Ok(())
    }

    /// Verifies, compiles and stores an uploaded plugin file.
    ///
    /// # Errors
    /// Signature, manifest, world and rollback errors as typed codes; `conflict` when the same
    /// version exists with other content.
    pub async fn install(
        &self,
        bytes: Vec<u8>,
        activate: bool,
        allow_rollback: bool,
        actor: &str,
    ) -> Result<Installed, ApiError> {
        // Verify under the write lock, against the trust store as it is now: a key revoked while
        // this upload waited cannot slip through.
        let _write = self.write.lock().await;
        let trust = self.store.trust()?;
        let verified = signing::verify(&bytes, &trust, self.verify)?;
        let manifest = verified.manifest.clone();
        let name = manifest.name.clone();
        // A name belongs to the key that first published it; another publisher cannot squat it.
        if let Some(owner) = self.versions(&name)?.first().and_then(|v| v.key_id.clone())
            && verified.key_id.as_ref().is_some_and(|key| *key != owner)
        {
            return Err(Error::Conflict(format!(
                "plugin {name} is published by key {owner}; this file is signed by another key"
            ))
            .into());
        }
        if let Ok(existing) = self.record(&name, &manifest.version) {
            if existing.digest != verified.digest {
                return Err(Error::Conflict(format!(
                    "{name} {} is already installed with other content",
                    manifest.version
                ))
                .into());
            }
            let active = if activate { self.activate_locked(&name, &manifest.version, actor).await? } else { false };
            self.store.flush().await?;
            return Ok(Installed {
                active: active || self.store.active(&name)?.as_ref() == Some(&manifest.version),
                record: existing,
                existed: true,
            });
        }
        let mut floor = self.store.floor()?;
        let below = floor.highest(&name).is_some_and(|h| &manifest.version < h);
        floor.admit(&name, &manifest.version, allow_rollback)?;
        let grant = self.store.grant(&name)?;
        let plugin = self.compile(bytes.clone(), trust, grant).await?;
        let record = VersionRecord {
            name: name.clone(),
            version: manifest.version.clone(),
            digest: verified.digest.clone(),
            key_id: verified.key_id.clone(),
            manifest,
            uploaded_at: now(),
        };
        self.store.put_blob(&record.digest, &bytes)?;
        self.store.put_version(&record)?;
        self.store.put_floor(&floor)?;
        if below {
            self.audit(
                actor,
                "rollback-override",
                &name,
                record.key_id.clone(),
                format!(
                    "installed {} below the highest {}",
                    record.version,
                    floor.highest(&name).map(ToString::to_string).unwrap_or_default()
                ),
            )
            .await?;
        }
        self.audit(
            actor,
            "upload",
            &format!("{name}@{}", record.version),
            record.key_id.clone(),
            format!("digest {}", record.digest),
        )
        .await?;
        if activate {
            self.store.set_active(&name, Some(&record.version))?;
            self.active.write().unwrap_or_else(PoisonError::into_inner).insert(name.clone(), plugin);
            self.load_errors.write().unwrap_or_else(PoisonError::into_inner).remove(&name);
            self.audit(actor, "activate", &format!("{name}@{}", record.version), record.key_id.clone(), String::new())
                .await?;
        }
        self.store.flush().await?;
        Ok(Installed { record, active: activate, existed: false })
    }

    /// Makes `version` the active version of `name` (atomically; the previous one stays stored).
    pub async fn activate(&self, name: &str, version: &semver::Version, actor: &str) -> Result<(), ApiError> {
        let _write = self.write.lock().await;
        self.activate_locked(name, version, actor).await?;
        self.store.flush().await?;
        Ok(())
    }

    async fn activate_locked(&self, name: &str, version: &semver::Version, actor: &str) -> Result<bool, ApiError> {
        let record = self.record(name, version)?;
        let plugin = self.load_version(name, version).await?;
        self.store.set_active(name, Some(version))?;
        self.active.write().unwrap_or_else(PoisonError::into_inner).insert(name.to_string(), plugin);
        self.load_errors.write().unwrap_or_else(PoisonError::into_inner).remove(name);
        self.audit(actor, "activate", &format!("{name}@{version}"), record.key_id, String::new()).await?;
        Ok(true)
    }

    /// Deactivates `name`; in-flight invocations finish.
    pub async fn deactivate(&self, name: &str, actor: &str) -> Result<(), ApiError> {
        let _write = self.write.lock().await;
        let version = self.store.active(name)?.ok_or_else(|| Error::NotFound(format!("active version of {name}")))?;
        self.store.set_active(name, None)?;
        self.active.write().unwrap_or_else(PoisonError::into_inner).remove(name);
        self.audit(actor, "deactivate", &format!("{name}@{version}"), None, String::new()).await?;
        self.store.flush().await?;
        Ok(())
    }

    /// Deletes one version (or, with `None`, every version) of `name`. The active version cannot
    /// be deleted: deactivate first.
    pub async fn delete(&self, name: &str, version: Option<&semver::Version>, actor: &str) -> Result<(), ApiError> {
        let _write = self.write.lock().await;
        let active = self.store.active(name)?;
        let doomed: Vec<VersionRecord> = match version {
            Some(v) => vec![self.record(name, v)?],
            None => self.versions(name)?,
        };
        if doomed.is_empty() {
            return Err(Error::NotFound(format!("plugin {name}")).into());
        }
        if let Some(active) = &active
            && doomed.iter().any(|d| &d.version == active)
        {
            return Err(Error::Conflict(format!("{name} {active} is active; deactivate it first")).into());
        }
        for record in &doomed {
            self.store.remove_version(name, &record.version)?;
            self.store.remove_blob_if_unused(&record.digest)?;
            self.audit(actor, "delete", &format!("{name}@{}", record.version), record.key_id.clone(), String::new())
                .await?;
        }
        if version.is_none() {
            self.store.remove_plugin(name)?;
        }
        self.store.flush().await?;
        Ok(())
    }

    /// Replaces the grant of `name` (capabilities and budget; config and secrets are kept when
    /// `keep_values`), re-granting the loaded plugin.
    pub async fn set_grant(
        &self,
        name: &str,
        update: impl FnOnce(&mut Grant),
        action: &str,
        detail: String,
        actor: &str,
    ) -> Result<Grant, ApiError> {
        let _write = self.write.lock().await;
        if self.versions(name)?.is_empty() {
            return Err(Error::NotFound(format!("plugin {name}")).into());
        }
        let mut grant = self.store.grant(name)?;
        update(&mut grant);
        self.store.put_grant(name, &grant)?;
        {
            let mut active = self.active.write().unwrap_or_else(PoisonError::into_inner);
            if let Some(plugin) = active.get(name).cloned() {
                active.insert(name.to_string(), plugin.regrant(&grant));
            }
        }
        self.audit(actor, action, name, None, detail).await?;
        self.store.flush().await?;
        Ok(grant)
    }

    /// Adds a trusted key.
    pub async fn add_key(
        &self,
        name: &str,
        key: signing::PublicKey,
        actor: &str,
    ) -> Result<signing::TrustedKey, ApiError> {
        let _write = self.write.lock().await;
        let mut trust = self.store.trust()?;
        let added = trust.add(name, key)?.clone();
        self.store.put_trust(&trust)?;
        self.audit(actor, "key-add", &added.key_id, Some(added.key_id.clone()), format!("name {name}")).await?;
        self.store.flush().await?;
        Ok(added)
    }

    /// Revokes a key and unloads every active plugin it signed.
    pub async fn revoke_key(&self, key_id: &str, actor: &str) -> Result<signing::TrustedKey, ApiError> {
        let _write = self.write.lock().await;
        let mut trust = self.store.trust()?;
        let revoked = trust.revoke(key_id)?.clone();
        self.store.put_trust(&trust)?;
        let mut unloaded = Vec::new();
        {
            let mut active = self.active.write().unwrap_or_else(PoisonError::into_inner);
            active.retain(|name, plugin| {
                let keep = plugin.signer() != Some(key_id);
                if !keep {
                    unloaded.push(name.clone());
                }
                keep
            });
        }
        for name in &unloaded {
            self.store.set_active(name, None)?;
            self.load_errors
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.clone(), format!("signing key {key_id} was revoked"));
        }
        self.audit(actor, "key-revoke", key_id, Some(key_id.to_string()), format!("unloaded: {}", unloaded.join(", ")))
            .await?;
        self.store.flush().await?;
        Ok(revoked)
    }

    /// Records an invocation's usage (in memory; see [`Registry::persist_usage`]).
    pub fn record_usage(&self, name: &str, fuel: u64, failed: bool) {
        let mut pending = self.pending_usage.lock().unwrap_or_else(PoisonError::into_inner);
        let totals = pending.entry(name.to_string()).or_default();
        totals.invocations += 1;
        totals.errors += u64::from(failed);
        totals.fuel = totals.fuel.saturating_add(fuel);
    }

    /// Writes pending usage to sled.
    pub fn persist_usage(&self) {
        let pending = std::mem::take(&mut *self.pending_usage.lock().unwrap_or_else(PoisonError::into_inner));
        for (name, delta) in pending {
            if let Err(err) = self.store.add_usage(&name, &delta) {
                tracing::warn!(plugin = %name, %err, "could not record usage");
            }
        }
    }

    /// Usage totals of `name`, pending ones included.
    pub fn usage(&self, name: &str) -> Result<crate::store::UsageTotals, ApiError> {
        let mut totals = self.store.usage(name)?;
        if let Some(delta) = self.pending_usage.lock().unwrap_or_else(PoisonError::into_inner).get(name) {
            totals.invocations += delta.invocations;
            totals.errors += delta.errors;
            totals.fuel = totals.fuel.saturating_add(delta.fuel);
        }
        Ok(totals)
    }

    /// The API tokens (cached).
    pub fn tokens(&self) -> Vec<crate::store::TokenRecord> {
        self.tokens.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Adds an API token, durably.
    pub async fn add_token(&self, record: crate::store::TokenRecord) -> Result<(), ApiError> {
        let _write = self.write.lock().await;
        let mut tokens = self.store.tokens()?;
        tokens.push(record);
        self.store.put_tokens(&tokens)?;
        self.store.flush().await?;
        *self.tokens.write().unwrap_or_else(PoisonError::into_inner) = tokens;
        Ok(())
    }
}
