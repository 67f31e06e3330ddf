//! Where key-value data lives: the [`KeyValueStore`] trait, its quota, and [`MemoryKeyValue`].
//!
//! A backend never sees a single write of a guest. An invocation buffers its writes (see
//! [`super::overlay`]) and, only if it succeeds, hands them over as one [`ChangeSet`] to
//! [`KeyValueStore::commit`], which applies all of them or none. That is what lets a retry or a
//! replay start from the state the failed attempt found: a trap, a budget overrun, a plugin error
//! or a timeout leaves nothing behind.
//!
//! The quota is checked against the whole change set, under the same lock that applies it, so
//! concurrent invocations of one plugin cannot together pass it: the bound is exact. Commits of one
//! namespace serialize, so each key ends with the value of the invocation that committed last.

use crate::sync::Locked;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

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

    /// The usage once an entry of `old` bytes is replaced by one of `new` bytes (`None`: absent),
    /// unchecked.
    pub fn replace(self, old: Option<u64>, new: Option<u64>) -> KeyValueUsage {
        let keys = match (old.is_some(), new.is_some()) {
            (false, true) => self.keys.saturating_add(1),
            (true, false) => self.keys.saturating_sub(1),
            _ => self.keys,
        };
        KeyValueUsage { keys, bytes: self.bytes.saturating_sub(old.unwrap_or(0)).saturating_add(new.unwrap_or(0)) }
    }

    /// `after`, if going from `self` to it stays within `quota`.
    ///
    /// # Errors
    /// [`QuotaExceeded`] when `after` is over `quota` *and* grows the keys or bytes that are over.
    /// A plugin already over its quota (the operator lowered it) may still shrink or delete.
    pub fn check(self, after: KeyValueUsage, quota: KeyValueQuota) -> Result<KeyValueUsage, QuotaExceeded> {
        let too_many = after.keys > quota.max_keys && after.keys > self.keys;
        let too_big = after.bytes > quota.max_bytes && after.bytes > self.bytes;
        if too_many || too_big {
            return Err(QuotaExceeded { quota, usage: self });
        }
        Ok(after)
    }

    /// The usage once an entry of `old` bytes (`None`: absent) is set to one of `new` bytes.
    ///
    /// # Errors
    /// [`QuotaExceeded`], as [`KeyValueUsage::check`] says.
    pub fn after_set(self, old: Option<u64>, new: u64, quota: KeyValueQuota) -> Result<KeyValueUsage, QuotaExceeded> {
        self.check(self.replace(old, Some(new)), quota)
    }
}

/// A change refused because it would take the plugin's data over its [`KeyValueQuota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "key-value quota exceeded: a plugin may keep {} keys and {} bytes over all its buckets, and this one keeps {} keys and {} bytes",
    quota.max_keys, quota.max_bytes, usage.keys, usage.bytes
)]
pub struct QuotaExceeded {
    /// The quota.
    pub quota: KeyValueQuota,
    /// The usage before the refused change.
    pub usage: KeyValueUsage,
}

/// Why [`KeyValueStore::commit`] failed. Either way, nothing of the change set was applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The change set would exceed the plugin's quota.
    #[error(transparent)]
    Quota(#[from] QuotaExceeded),
    /// The storage failed.
    #[error(transparent)]
    Storage(crate::cause::Cause),
}

/// The writes one invocation commits, in key order: `(bucket, key)` → the new value, or `None`
/// to delete the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet(BTreeMap<(String, String), Option<Vec<u8>>>);

impl ChangeSet {
    /// Sets `key` of `bucket` to `value` (replacing an earlier write of the same key).
    pub fn set(&mut self, bucket: &str, key: &str, value: Vec<u8>) -> &mut ChangeSet {
        self.0.insert((bucket.into(), key.into()), Some(value));
        self
    }

    /// Deletes `key` of `bucket` (replacing an earlier write of the same key).
    pub fn delete(&mut self, bucket: &str, key: &str) -> &mut ChangeSet {
        self.0.insert((bucket.into(), key.into()), None);
        self
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many keys it writes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The writes, in key order: bucket, key, and the value (`None`: delete).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, Option<&[u8]>)> {
        self.0.iter().map(|((bucket, key), value)| (bucket.as_str(), key.as_str(), value.as_deref()))
    }
}

impl IntoIterator for ChangeSet {
    type Item = ((String, String), Option<Vec<u8>>);
    type IntoIter = std::collections::btree_map::IntoIter<(String, String), Option<Vec<u8>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl FromIterator<((String, String), Option<Vec<u8>>)> for ChangeSet {
    fn from_iter<I: IntoIterator<Item = ((String, String), Option<Vec<u8>>)>>(writes: I) -> ChangeSet {
        ChangeSet(writes.into_iter().collect())
    }
}

/// Where plugin key-value data is kept. `namespace` is the plugin name.
pub trait KeyValueStore: Send + Sync + std::fmt::Debug {
    /// The value of `key`, if set.
    ///
    /// # Errors
    /// A description of a storage failure.
    fn get(&self, namespace: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, crate::cause::Cause>;
    /// Applies every write of `changes`, or none: atomically, also across a crash. The namespace's
    /// usage after the whole change set is checked against `quota` (see
    /// [`KeyValueUsage::check`]) under the lock that applies it; commits of one namespace
    /// serialize, so the last to commit a key decides its value.
    ///
    /// # Errors
    /// [`CommitError::Quota`] when refused, [`CommitError::Storage`] when the storage fails;
    /// nothing was applied either way.
    fn commit(&self, namespace: &str, changes: ChangeSet, quota: KeyValueQuota) -> Result<(), CommitError>;
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
    ) -> Result<Vec<String>, crate::cause::Cause>;
    /// What the namespace's data takes, over all its buckets; cheap (a counter, not a scan).
    ///
    /// # Errors
    /// A description of a storage failure.
    fn usage(&self, namespace: &str) -> Result<KeyValueUsage, crate::cause::Cause>;
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
        self.0.locked()
    }
}

fn entry_key(namespace: &str, bucket: &str, key: &str) -> (String, String, String) {
    (namespace.into(), bucket.into(), key.into())
}

impl KeyValueStore for MemoryKeyValue {
    fn get(&self, namespace: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, crate::cause::Cause> {
        Ok(self.data().entries.get(&entry_key(namespace, bucket, key)).cloned())
    }

    fn commit(&self, namespace: &str, changes: ChangeSet, quota: KeyValueQuota) -> Result<(), CommitError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut data = self.data();
        let before = data.usage.get(namespace).copied().unwrap_or_default();
        let mut after = before;
        for (bucket, key, value) in changes.iter() {
            let old =
                data.entries.get(&entry_key(namespace, bucket, key)).map(|v| KeyValueUsage::entry_bytes(key, v.len()));
            after = after.replace(old, value.map(|v| KeyValueUsage::entry_bytes(key, v.len())));
        }
        before.check(after, quota)?;
        for ((bucket, key), value) in changes {
            let entry = (namespace.to_string(), bucket, key);
            match value {
                Some(value) => data.entries.insert(entry, value),
                None => data.entries.remove(&entry),
            };
        }
        data.usage.insert(namespace.to_string(), after);
        Ok(())
    }

    fn keys_after(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, crate::cause::Cause> {
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

    fn usage(&self, namespace: &str) -> Result<KeyValueUsage, crate::cause::Cause> {
        Ok(self.data().usage.get(namespace).copied().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: KeyValueQuota = KeyValueQuota { max_keys: 3, max_bytes: 100 };

    fn set(kv: &MemoryKeyValue, ns: &str, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), CommitError> {
        let mut changes = ChangeSet::default();
        changes.set(bucket, key, value);
        kv.commit(ns, changes, QUOTA)
    }

    #[test]
    fn quota_counts_keys_and_bytes_per_namespace() {
        let kv = MemoryKeyValue::default();
        for key in ["a", "b", "c"] {
            set(&kv, "p", "bucket", key, vec![0; 9]).expect("within quota");
        }
        assert_eq!(kv.usage("p").ok(), Some(KeyValueUsage { keys: 3, bytes: 30 }));
        // A fourth key, in another bucket too, is refused; another plugin is not affected.
        let refused = set(&kv, "p", "other", "d", vec![]);
        assert!(
            matches!(refused, Err(CommitError::Quota(exceeded)) if exceeded == QuotaExceeded { quota: QUOTA, usage: KeyValueUsage { keys: 3, bytes: 30 } }),
            "{refused:?}"
        );
        assert_eq!(kv.get("p", "other", "d").ok(), Some(None));
        set(&kv, "q", "bucket", "d", vec![]).expect("another namespace");
        // Overwriting an existing key adds no key; growing it past the byte cap is refused.
        set(&kv, "p", "bucket", "a", vec![0; 69]).expect("exactly at the byte cap");
        assert_eq!(kv.usage("p").ok(), Some(KeyValueUsage { keys: 3, bytes: 90 }));
        assert!(matches!(set(&kv, "p", "bucket", "b", vec![0; 20]), Err(CommitError::Quota(_))));
        // Deleting frees room; deleting an absent key changes nothing.
        let mut delete = ChangeSet::default();
        delete.delete("bucket", "a").delete("bucket", "absent");
        kv.commit("p", delete, QUOTA).expect("delete");
        assert_eq!(kv.usage("p").ok(), Some(KeyValueUsage { keys: 2, bytes: 20 }));
        set(&kv, "p", "other", "d", vec![]).expect("room again");
    }

    #[test]
    fn a_change_set_is_applied_whole_or_not_at_all() {
        let kv = MemoryKeyValue::default();
        set(&kv, "p", "b", "old", vec![1]).expect("set");
        // At the key cap, deleting one key and adding another in one change set fits.
        let mut swap = ChangeSet::default();
        swap.delete("b", "old").set("b", "k1", vec![2]).set("b", "k2", vec![3]).set("b", "k3", vec![4]);
        kv.commit("p", swap, QUOTA).expect("the net usage is within the quota");
        assert_eq!(kv.keys_after("p", "b", None, 10).ok(), Some(vec!["k1".into(), "k2".into(), "k3".into()]));
        // One key too many: none of the writes lands, the deletes included.
        let mut over = ChangeSet::default();
        over.delete("b", "k1").set("b", "k2", vec![9]).set("b", "k4", vec![]).set("b", "k5", vec![]);
        assert!(matches!(kv.commit("p", over, QUOTA), Err(CommitError::Quota(_))));
        assert_eq!(kv.get("p", "b", "k1").ok(), Some(Some(vec![2])));
        assert_eq!(kv.get("p", "b", "k2").ok(), Some(Some(vec![3])));
        assert_eq!(kv.usage("p").ok(), Some(KeyValueUsage { keys: 3, bytes: 9 }));
    }

    #[test]
    fn a_plugin_over_a_lowered_quota_may_still_shrink() {
        let usage = KeyValueUsage { keys: 5, bytes: 500 };
        assert!(usage.after_set(Some(100), 50, QUOTA).is_ok());
        assert!(usage.after_set(Some(100), 101, QUOTA).is_err());
        assert!(usage.after_set(None, 0, QUOTA).is_err());
        assert_eq!(usage.replace(Some(100), None), KeyValueUsage { keys: 4, bytes: 400 });
    }

    #[test]
    fn keys_after_continues_from_a_key_within_one_bucket() {
        let kv = MemoryKeyValue::default();
        let mut changes = ChangeSet::default();
        for (bucket, key) in [("a", "x"), ("b", "1"), ("b", "2"), ("b", "2\0"), ("b", "3"), ("c", "0")] {
            changes.set(bucket, key, vec![]);
        }
        kv.commit("p", changes, KeyValueQuota::default()).expect("commit");
        set(&kv, "p-q", "b", "0", vec![]).expect("set");
        assert_eq!(kv.keys_after("p", "b", None, 2).ok(), Some(vec!["1".to_string(), "2".to_string()]));
        assert_eq!(kv.keys_after("p", "b", Some("2"), 10).ok(), Some(vec!["2\0".to_string(), "3".to_string()]));
        assert_eq!(kv.keys_after("p", "b", Some("3"), 10).ok(), Some(vec![]));
        // A key that was deleted (or never existed) still marks a place.
        assert_eq!(kv.keys_after("p", "b", Some("15"), 1).ok(), Some(vec!["2".to_string()]));
    }
}
