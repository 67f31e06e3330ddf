//! The trust store (which publisher keys the operator trusts) and the anti-rollback version floor.
//!
//! Both are plain data with serde, so the host can persist them however it stores state.
//!
//! Revocation policy: revoking a key is permanent and immediate. New installs signed by it are
//! refused (`revoked-key`), and because every load verifies, plugins already installed under it
//! stop loading too: the host unloads them when the key is revoked and they never come back after a
//! restart. A revoked key cannot be re-added; re-sign the plugins with a new key instead.

use super::keys::PublicKey;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One key the operator added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    /// The key id (24 hex digits).
    pub key_id: String,
    /// The operator's name for it.
    pub name: String,
    /// The public key.
    #[serde(with = "public_key_hex")]
    pub key: PublicKey,
    /// When it was added (seconds since the Unix epoch).
    pub added_at: u64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<u64>,
}

mod public_key_hex {
    use super::PublicKey;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(key: &PublicKey, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(key.to_bytes()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PublicKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = hex::decode(text).map_err(serde::de::Error::custom)?;
        PublicKey::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// What the store says about a key id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Trusted: verify with this key.
    Trusted(PublicKey),
    /// Added once, now revoked.
    Revoked,
    /// Never added.
    Unknown,
}

/// The keys an operator trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustStore {
    keys: BTreeMap<String, TrustedKey>,
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl TrustStore {
    /// An empty store: nothing verifies until a key is added.
    pub fn new() -> TrustStore {
        TrustStore::default()
    }

    /// Trusts `key` under `name`.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the key is already present (trusted or revoked).
    pub fn add(&mut self, name: &str, key: PublicKey) -> Result<&TrustedKey> {
        let key_id = key.key_id();
        if let Some(existing) = self.keys.get(&key_id) {
            let state =
                if existing.revoked_at.is_some() { "revoked; revocation is permanent" } else { "already trusted" };
            return Err(Error::Conflict(format!("key {key_id} ({}) is {state}", existing.name)));
        }
        let entry =
            TrustedKey { key_id: key_id.clone(), name: name.to_string(), key, added_at: now(), revoked_at: None };
        Ok(self.keys.entry(key_id).or_insert(entry))
    }

    /// Revokes the key `key_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown id; revoking twice is a no-op.
    pub fn revoke(&mut self, key_id: &str) -> Result<&TrustedKey> {
        let entry = self.keys.get_mut(key_id).ok_or_else(|| Error::NotFound(format!("key {key_id}")))?;
        entry.revoked_at.get_or_insert_with(now);
        Ok(entry)
    }

    /// Every key, trusted or revoked, by id.
    pub fn list(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.values()
    }

    /// The keys that currently verify.
    pub fn trusted_keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.values().filter(|k| k.revoked_at.is_none())
    }

    /// The status of `key_id`.
    pub fn status(&self, key_id: &str) -> KeyStatus {
        match self.keys.get(key_id) {
            Some(TrustedKey { revoked_at: Some(_), .. }) => KeyStatus::Revoked,
            Some(key) => KeyStatus::Trusted(key.key),
            None => KeyStatus::Unknown,
        }
    }
}

/// The highest version ever installed per plugin name: installs below it are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionFloor {
    highest: BTreeMap<String, semver::Version>,
}

impl VersionFloor {
    /// Checks that installing `version` of `name` is not a rollback, then records it.
    ///
    /// With `allow_rollback`, a lower version is accepted (the caller must audit the override) and
    /// the floor stays where it was.
    ///
    /// # Errors
    /// [`Error::Rollback`] when `version` is below the highest recorded for `name`.
    pub fn admit(&mut self, name: &str, version: &semver::Version, allow_rollback: bool) -> Result<()> {
        match self.highest.get(name) {
            Some(highest) if version < highest => {
                if allow_rollback {
                    tracing::warn!(plugin = name, %version, %highest, "rollback override: installing a lower version");
                    return Ok(());
                }
                Err(Error::Rollback { name: name.to_string(), version: version.clone(), highest: highest.clone() })
            }
            _ => {
                self.highest.insert(name.to_string(), version.clone());
                Ok(())
            }
        }
    }

    /// The highest version recorded for `name`.
    pub fn highest(&self, name: &str) -> Option<&semver::Version> {
        self.highest.get(name)
    }
}
