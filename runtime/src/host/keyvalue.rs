//! `wasi:keyvalue/store`: state a plugin keeps between invocations, in granted buckets only.
//!
//! Buckets are namespaced by plugin name, so two plugins never see each other's data, and a plugin
//! may open only the buckets its manifest requests *and* the operator grants; any other is
//! `error.access-denied` (logged as a denial). Where the data lives is the host's choice through the
//! [`KeyValueStore`] trait: [`MemoryKeyValue`] by default, a persistent store in a server.
//!
//! A plugin cannot grow host storage without limit: keys and values are bounded per call
//! ([`MAX_KEY_BYTES`], [`MAX_VALUE_BYTES`]) and its data over all its buckets by a
//! [`KeyValueQuota`] (keys and bytes). The backend checks the quota and writes under one lock, so
//! concurrent invocations of one plugin cannot together pass it: the bound is exact.
//!
//! `list-keys` pages continue after the last key returned (a range scan, not a rescan from the
//! start). The WIT cursor is a `u64`, so the host hands out cursor ids and keeps, per invocation,
//! the key each one continues after ([`Cursors`]).

use crate::bindings::keyvalue_store::{self, Error, KeyResponse};
use crate::host::logs::guest_text;
use crate::state::InvocationState;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, PoisonError};
use wasmtime::component::Resource;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Keys returned per `list-keys` page.
pub const LIST_PAGE: usize = 1000;
/// Unfinished `list-keys` listings one invocation may keep; starting another forgets the oldest.
const MAX_OPEN_CURSORS: usize = 16;

/// Caps on one plugin's key-value data, over all its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyValueQuota {
    /// Most keys.
    pub max_keys: u64,
    /// Most bytes, keys and values together.
    pub max_bytes: u64,
}

impl Default for KeyValueQuota {
    /// 10,000 keys and 64 MiB per plugin.
    fn default() -> KeyValueQuota {
        KeyValueQuota { max_keys: 10_000, max_bytes: 64 << 20 }
    }
}

/// What one plugin's key-value data takes, over all its buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyValueUsage {
    /// Keys.
    pub keys: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
}

impl KeyValueUsage {
    /// What an entry counts for: its key and value bytes (not the namespace or bucket).
    pub fn entry_bytes(key: &str, value_len: usize) -> u64 {
        (key.len() as u64).saturating_add(value_len as u64)
    }

    /// The usage once an entry of `old` bytes (`None`: absent) is replaced by one of `new` bytes.
    ///
    /// # Errors
    /// [`QuotaExceeded`] when that goes over `quota` and grows the usage. A plugin already over its
    /// quota (the operator lowered it) may still shrink or delete entries.
    pub fn after_set(self, old: Option<u64>, new: u64, quota: KeyValueQuota) -> Result<KeyValueUsage, QuotaExceeded> {
        let after = KeyValueUsage {
            keys: self.keys.saturating_add(u64::from(old.is_none())),
            bytes: self.bytes.saturating_sub(old.unwrap_or(0)).saturating_add(new),
        };
        let too_many = after.keys > quota.max_keys && after.keys > self.keys;
        let too_big = after.bytes > quota.max_bytes && after.bytes > self.bytes;
        if too_many || too_big {
            return Err(QuotaExceeded { quota, usage: self });
        }
        Ok(after)
    }

    /// The usage once an entry of `old` bytes (`None`: absent) is removed.
    pub fn after_delete(self, old: Option<u64>) -> KeyValueUsage {
        match old {
            Some(old) => KeyValueUsage { keys: self.keys.saturating_sub(1), bytes: self.bytes.saturating_sub(old) },
            None => self,
        }
    }
}

/// A write refused because it would take the plugin's data over its [`KeyValueQuota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "key-value quota exceeded: a plugin may keep {} keys and {} bytes over all its buckets, and this one keeps {} keys and {} bytes",
    quota.max_keys, quota.max_bytes, usage.keys, usage.bytes
)]
pub struct QuotaExceeded {
    /// The quota.
    pub quota: KeyValueQuota,
    /// The usage before the refused write.
    pub usage: KeyValueUsage,
}

/// Why [`KeyValueStore::set`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    /// The write would exceed the plugin's quota; nothing was written.
    #[error(transparent)]
    Quota(#[from] QuotaExceeded),
    /// The storage failed.
    #[error("{0}")]
    Storage(String),
}

/// Where plugin key-value data is kept. `namespace` is the plugin name.
pub trait KeyValueStore: Send + Sync + std::fmt::Debug {
    /// The value of `key`, if set.
    ///
    /// # Errors
    /// A description of a storage failure.
    fn get(&self, namespace: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Sets `key` to `value` if the namespace stays within `quota` (see
    /// [`KeyValueUsage::after_set`]). The check and the write are atomic with respect to every
    /// other `set` and `delete` of the namespace.
    ///
    /// # Errors
    /// [`SetError::Quota`] when refused, [`SetError::Storage`] when the storage fails.
    fn set(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
        quota: KeyValueQuota,
    ) -> Result<(), SetError>;
    /// Removes `key` (no error if absent).
    ///
    /// # Errors
    /// A description of a storage failure.
    fn delete(&self, namespace: &str, bucket: &str, key: &str) -> Result<(), String>;
    /// Up to `limit` keys of the bucket in order, starting after `after` (from the first without).
    ///
    /// # Errors
    /// A description of a storage failure.
    fn keys_after(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, String>;
    /// What the namespace's data takes, over all its buckets; cheap (a counter, not a scan).
    ///
    /// # Errors
    /// A description of a storage failure.
    fn usage(&self, namespace: &str) -> Result<KeyValueUsage, String>;
}

/// An in-memory [`KeyValueStore`]: data lives as long as the runtime.
#[derive(Debug, Default)]
pub struct MemoryKeyValue(Mutex<MemoryData>);

#[derive(Debug, Default)]
struct MemoryData {
    entries: BTreeMap<(String, String, String), Vec<u8>>,
    usage: HashMap<String, KeyValueUsage>,
}

impl MemoryKeyValue {
    fn data(&self) -> std::sync::MutexGuard<'_, MemoryData> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn entry_key(namespace: &str, bucket: &str, key: &str) -> (String, String, String) {
    (namespace.into(), bucket.into(), key.into())
}

impl KeyValueStore for MemoryKeyValue {
    fn get(&self, namespace: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.data().entries.get(&entry_key(namespace, bucket, key)).cloned())
    }

    fn set(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
        quota: KeyValueQuota,
    ) -> Result<(), SetError> {
        let mut data = self.data();
        let entry = entry_key(namespace, bucket, key);
        let old = data.entries.get(&entry).map(|v| KeyValueUsage::entry_bytes(key, v.len()));
        let usage = data.usage.get(namespace).copied().unwrap_or_default();
        let after = usage.after_set(old, KeyValueUsage::entry_bytes(key, value.len()), quota)?;
        data.entries.insert(entry, value);
        data.usage.insert(namespace.to_string(), after);
        Ok(())
    }

    fn delete(&self, namespace: &str, bucket: &str, key: &str) -> Result<(), String> {
        let mut data = self.data();
        if let Some(old) = data.entries.remove(&entry_key(namespace, bucket, key)) {
            let usage = data.usage.entry(namespace.to_string()).or_default();
            *usage = usage.after_delete(Some(KeyValueUsage::entry_bytes(key, old.len())));
        }
        Ok(())
    }

    fn keys_after(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, String> {
        let start = match after {
            Some(after) => Bound::Excluded(entry_key(namespace, bucket, after)),
            None => Bound::Included(entry_key(namespace, bucket, "")),
        };
        let data = self.data();
        Ok(data
            .entries
            .range((start, Bound::Unbounded))
            .map(|(entry, _)| entry)
            .take_while(|(ns, b, _)| ns == namespace && b == bucket)
            .take(limit)
            .map(|(_, _, key)| key.clone())
            .collect())
    }

    fn usage(&self, namespace: &str) -> Result<KeyValueUsage, String> {
        Ok(self.data().usage.get(namespace).copied().unwrap_or_default())
    }
}

/// An open bucket, as the guest holds it.
#[derive(Debug)]
pub struct Bucket {
    name: String,
}

/// One invocation's unfinished `list-keys` listings: cursor id → (bucket, last key returned).
#[derive(Debug, Default)]
pub(crate) struct Cursors {
    last_id: u64,
    open: BTreeMap<u64, (String, String)>,
}

impl Cursors {
    /// A new cursor continuing after `last` in `bucket`; forgets the oldest beyond
    /// [`MAX_OPEN_CURSORS`], so a guest starting listings in a loop holds little host memory.
    fn issue(&mut self, bucket: &str, last: String) -> u64 {
        if self.open.len() >= MAX_OPEN_CURSORS {
            self.open.pop_first();
        }
        self.last_id += 1;
        self.open.insert(self.last_id, (bucket.to_string(), last));
        self.last_id
    }

    /// The key cursor `id` continues after, if it was issued for `bucket` and not yet used.
    fn redeem(&mut self, id: u64, bucket: &str) -> Option<String> {
        self.open.get(&id).filter(|(b, _)| b == bucket)?;
        self.open.remove(&id).map(|(_, last)| last)
    }
}

/// Why a bucket name is unusable (`None`: it is fine). NUL separates the parts of stored keys.
pub(crate) fn bucket_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("bucket names must not be empty")
    } else if name.contains('\0') {
        Some("bucket names must not contain NUL")
    } else {
        None
    }
}

impl InvocationState {
    fn bucket_name(&self, bucket: &Resource<Bucket>) -> Result<String, Error> {
        self.table.get(bucket).map(|b| b.name.clone()).map_err(|err| Error::Other(err.to_string()))
    }

    /// The bucket's name, once `key` is checked.
    fn bucket_for_key(&self, bucket: &Resource<Bucket>, key: &str) -> Result<String, Error> {
        if key.len() > MAX_KEY_BYTES {
            return Err(Error::Other(format!("keys are at most {MAX_KEY_BYTES} bytes")));
        }
        self.bucket_name(bucket)
    }

    fn kv<T>(&self, result: Result<T, String>) -> Result<T, Error> {
        result.map_err(|err| {
            tracing::error!(%err, "key-value storage failed");
            Error::Other("storage failure".into())
        })
    }
}

impl keyvalue_store::Host for InvocationState {
    fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, Error> {
        if let Some(problem) = bucket_name_problem(&identifier) {
            return Err(Error::Other(problem.into()));
        }
        if !self.grant.key_value.contains(&identifier) {
            let name = guest_text(&identifier);
            self.logs.host_denial(if self.grant.requested_buckets.contains(&identifier) {
                format!("key-value bucket `{name}` is requested by the plugin's manifest but not granted by the operator (grant it: `plugboard grant <plugin> --bucket {name}`)")
            } else {
                format!("key-value bucket `{name}` is not among the manifest's `key_value` buckets (add it to plugin.toml and publish a new version)")
            });
            return Err(Error::AccessDenied);
        }
        self.table.push(Bucket { name: identifier }).map_err(|err| Error::Other(err.to_string()))
    }
}

impl keyvalue_store::HostBucket for InvocationState {
    fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, Error> {
        let name = self.bucket_for_key(&bucket, &key)?;
        self.kv(self.key_value.get(&self.grant.namespace, &name, &key))
    }

    fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Result<(), Error> {
        let name = self.bucket_for_key(&bucket, &key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(Error::Other(format!("values are at most {MAX_VALUE_BYTES} bytes")));
        }
        match self.key_value.set(&self.grant.namespace, &name, &key, value, self.key_value_quota) {
            Ok(()) => Ok(()),
            Err(SetError::Quota(exceeded)) => {
                let message = exceeded.to_string();
                self.logs.host_warning(message.clone());
                Err(Error::Other(message))
            }
            Err(SetError::Storage(err)) => self.kv(Err(err)),
        }
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), Error> {
        let name = self.bucket_for_key(&bucket, &key)?;
        self.kv(self.key_value.delete(&self.grant.namespace, &name, &key))
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, Error> {
        let name = self.bucket_for_key(&bucket, &key)?;
        Ok(self.kv(self.key_value.get(&self.grant.namespace, &name, &key))?.is_some())
    }

    fn list_keys(&mut self, bucket: Resource<Bucket>, cursor: Option<u64>) -> Result<KeyResponse, Error> {
        let name = self.bucket_name(&bucket)?;
        let after = match cursor {
            Some(id) => Some(
                self.kv_cursors
                    .redeem(id, &name)
                    .ok_or_else(|| Error::Other(format!("unknown, used or expired list-keys cursor {id}")))?,
            ),
            None => None,
        };
        let keys = self.kv(self.key_value.keys_after(&self.grant.namespace, &name, after.as_deref(), LIST_PAGE))?;
        let cursor = match keys.last() {
            Some(last) if keys.len() == LIST_PAGE => Some(self.kv_cursors.issue(&name, last.clone())),
            _ => None,
        };
        Ok(KeyResponse { keys, cursor })
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: KeyValueQuota = KeyValueQuota { max_keys: 3, max_bytes: 100 };

    #[test]
    fn quota_counts_keys_and_bytes_per_namespace() {
        let kv = MemoryKeyValue::default();
        for key in ["a", "b", "c"] {
            kv.set("p", "bucket", key, vec![0; 9], QUOTA).expect("within quota");
        }
        assert_eq!(kv.usage("p"), Ok(KeyValueUsage { keys: 3, bytes: 30 }));
        // A fourth key, in another bucket too, is refused; another plugin is not affected.
        let refused = kv.set("p", "other", "d", vec![], QUOTA);
        assert_eq!(
            refused,
            Err(SetError::Quota(QuotaExceeded { quota: QUOTA, usage: KeyValueUsage { keys: 3, bytes: 30 } }))
        );
        assert_eq!(kv.get("p", "other", "d"), Ok(None));
        kv.set("q", "bucket", "d", vec![], QUOTA).expect("another namespace");
        // Overwriting an existing key adds no key; growing it past the byte cap is refused.
        kv.set("p", "bucket", "a", vec![0; 69], QUOTA).expect("exactly at the byte cap");
        assert_eq!(kv.usage("p"), Ok(KeyValueUsage { keys: 3, bytes: 90 }));
        assert!(matches!(kv.set("p", "bucket", "b", vec![0; 20], QUOTA), Err(SetError::Quota(_))));
        // Deleting frees room.
        kv.delete("p", "bucket", "a").expect("delete");
        kv.delete("p", "bucket", "a").expect("delete again");
        assert_eq!(kv.usage("p"), Ok(KeyValueUsage { keys: 2, bytes: 20 }));
        kv.set("p", "other", "d", vec![], QUOTA).expect("room again");
    }

    #[test]
    fn a_plugin_over_a_lowered_quota_may_still_shrink() {
        let usage = KeyValueUsage { keys: 5, bytes: 500 };
        assert!(usage.after_set(Some(100), 50, QUOTA).is_ok());
        assert!(usage.after_set(Some(100), 101, QUOTA).is_err());
        assert!(usage.after_set(None, 0, QUOTA).is_err());
    }

    #[test]
    fn keys_after_continues_from_a_key_within_one_bucket() {
        let kv = MemoryKeyValue::default();
        let quota = KeyValueQuota::default();
        for (bucket, key) in [("a", "x"), ("b", "1"), ("b", "2"), ("b", "2\0"), ("b", "3"), ("c", "0")] {
            kv.set("p", bucket, key, vec![], quota).expect("set");
        }
        kv.set("p-q", "b", "0", vec![], quota).expect("set");
        assert_eq!(kv.keys_after("p", "b", None, 2), Ok(vec!["1".to_string(), "2".to_string()]));
        assert_eq!(kv.keys_after("p", "b", Some("2"), 10), Ok(vec!["2\0".to_string(), "3".to_string()]));
        assert_eq!(kv.keys_after("p", "b", Some("3"), 10), Ok(vec![]));
        // A key that was deleted (or never existed) still marks a place.
        assert_eq!(kv.keys_after("p", "b", Some("15"), 1), Ok(vec!["2".to_string()]));
    }

    #[test]
    fn cursors_are_single_use_per_bucket_and_bounded() {
        let mut cursors = Cursors::default();
        let id = cursors.issue("b", "k".into());
        assert_eq!(cursors.redeem(id, "other"), None);
        assert_eq!(cursors.redeem(id, "b"), Some("k".to_string()));
        assert_eq!(cursors.redeem(id, "b"), None);
        let first = cursors.issue("b", "0".into());
        for i in 0..MAX_OPEN_CURSORS {
            cursors.issue("b", i.to_string());
        }
        assert_eq!(cursors.open.len(), MAX_OPEN_CURSORS);
        assert_eq!(cursors.redeem(first, "b"), None, "the oldest was forgotten");
    }

    #[test]
    fn bucket_names_are_checked() {
        assert!(bucket_name_problem("").is_some());
        assert!(bucket_name_problem("a\0b").is_some());
        assert_eq!(bucket_name_problem("counters"), None);
    }
}
