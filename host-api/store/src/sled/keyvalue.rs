//! Plugin key-value data for the runtime, in the `kv` tree as `namespace\0bucket\0key`.
//!
//! An invocation's writes arrive as one change set, only if the invocation succeeded (the
//! runtime's state guarantee); [`SledKeyValue::commit`] applies it with one `apply_batch`, which
//! sled recovers atomically after a crash, so a change set is on disk whole or not at all. A
//! change set of one key is a plain insert or remove: atomic by itself, and it spares the other
//! writers sled's process-wide batch lock. Like every write, a commit is made durable by the
//! group commit (`store/commit.rs`): the caller awaits `Storage::durable()` before it
//! acknowledges the invocation's result.
//!
//! Quota counters live in memory: each namespace's usage is counted by one prefix scan the first
//! time the namespace is touched after the store opens, then kept up to date by `commit`, which
//! checks the whole change set and applies it under one lock, and updates the counter only once
//! the batch applied. The store hands out a single [`SledKeyValue`], so every writer goes through
//! that lock: commits serialize, and the counters match the tree.

use plugboard_runtime::cause::Cause;
use plugboard_runtime::sync::Locked;
use plugboard_runtime::{ChangeSet, CommitError, KeyValueQuota, KeyValueStore, KeyValueUsage};
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

/// The runtime's [`KeyValueStore`] over the `kv` tree.
#[derive(Debug)]
pub(super) struct SledKeyValue {
    tree: ::sled::Tree,
    /// Usage per namespace counted so far; held while a write is checked and applied.
    usage: Mutex<HashMap<String, KeyValueUsage>>,
}

fn kv_key(namespace: &str, bucket: &str, key: &str) -> Vec<u8> {
    format!("{namespace}\0{bucket}\0{key}").into_bytes()
}

fn storage(err: ::sled::Error) -> Cause {
    Cause::new(err)
}

impl SledKeyValue {
    pub(super) fn new(tree: ::sled::Tree) -> SledKeyValue {
        SledKeyValue { tree, usage: Mutex::new(HashMap::new()) }
    }

    /// Drops the usage count of `namespace` (its data was deleted); the next use counts afresh.
    pub(super) fn forget_usage(&self, namespace: &str) {
        self.counters().remove(namespace);
    }

    /// Drops every usage count (the tree was replaced by an import or emptied).
    pub(super) fn forget_all_usage(&self) {
        self.counters().clear();
    }

    fn counters(&self) -> MutexGuard<'_, HashMap<String, KeyValueUsage>> {
        self.usage.locked()
    }

    /// The namespace's usage, counted by a scan the first time.
    fn usage_of(&self, counters: &mut HashMap<String, KeyValueUsage>, namespace: &str) -> Result<KeyValueUsage, Cause> {
        if let Some(usage) = counters.get(namespace) {
            return Ok(*usage);
        }
        let prefix = format!("{namespace}\0");
        let mut usage = KeyValueUsage::default();
        for entry in self.tree.scan_prefix(prefix.as_bytes()) {
            let (key, value) = entry.map_err(storage)?;
            // `bucket\0key`: bucket names have no NUL, so the key is what follows the first one.
            let rest = key.get(prefix.len()..).unwrap_or_default();
            let key_len = rest.iter().position(|&b| b == 0).map_or(0, |nul| rest.len() - nul - 1);
            usage.keys += 1;
            usage.bytes = usage.bytes.saturating_add((key_len + value.len()) as u64);
        }
        counters.insert(namespace.to_string(), usage);
        Ok(usage)
    }

    fn entry_len(&self, key: &str, stored: &[u8]) -> Result<Option<u64>, Cause> {
        self.tree.get(stored).map(|old| old.map(|old| KeyValueUsage::entry_bytes(key, old.len()))).map_err(storage)
    }
}

impl KeyValueStore for SledKeyValue {
    fn get(&self, namespace: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Cause> {
        self.tree.get(kv_key(namespace, bucket, key)).map(|v| v.map(|v| v.to_vec())).map_err(storage)
    }

    fn commit(&self, namespace: &str, changes: ChangeSet, quota: KeyValueQuota) -> Result<(), CommitError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut counters = self.counters();
        let before = self.usage_of(&mut counters, namespace).map_err(CommitError::Storage)?;
        let mut after = before;
        let mut writes = Vec::with_capacity(changes.len());
        for ((bucket, key), value) in changes {
            let stored = kv_key(namespace, &bucket, &key);
            let old = self.entry_len(&key, &stored).map_err(CommitError::Storage)?;
            after = after.replace(old, value.as_ref().map(|v| KeyValueUsage::entry_bytes(&key, v.len())));
            writes.push((stored, value));
        }
        before.check(after, quota)?;
        let applied = match <[_; 1]>::try_from(writes) {
            Ok([(stored, Some(value))]) => self.tree.insert(stored, value).map(|_| ()),
            Ok([(stored, None)]) => self.tree.remove(stored).map(|_| ()),
            Err(writes) => {
                let mut batch = ::sled::Batch::default();
                for (stored, value) in writes {
                    match value {
                        Some(value) => batch.insert(stored, value),
                        None => batch.remove(stored),
                    }
                }
                self.tree.apply_batch(batch)
            }
        };
        applied.map_err(|err| CommitError::Storage(storage(err)))?;
        counters.insert(namespace.to_string(), after);
        Ok(())
    }

    fn keys_after(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, Cause> {
        let prefix = kv_key(namespace, bucket, "");
        let start = match after {
            Some(after) => Bound::Excluded(kv_key(namespace, bucket, after)),
            None => Bound::Included(prefix.clone()),
        };
        let mut keys = Vec::new();
        for key in self.tree.range::<Vec<u8>, _>((start, Bound::Unbounded)).keys().take(limit) {
            let key = key.map_err(storage)?;
            let Some(rest) = key.strip_prefix(prefix.as_slice()) else { break };
            keys.push(String::from_utf8_lossy(rest).into_owned());
        }
        Ok(keys)
    }

    fn usage(&self, namespace: &str) -> Result<KeyValueUsage, Cause> {
        let mut counters = self.counters();
        self.usage_of(&mut counters, namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(
        kv: &dyn KeyValueStore,
        ns: &str,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
        quota: KeyValueQuota,
    ) -> Result<(), CommitError> {
        let mut changes = ChangeSet::default();
        changes.set(bucket, key, value);
        kv.commit(ns, changes, quota)
    }

    fn delete(kv: &dyn KeyValueStore, ns: &str, bucket: &str, key: &str) -> Result<(), CommitError> {
        let mut changes = ChangeSet::default();
        changes.delete(bucket, key);
        kv.commit(ns, changes, KeyValueQuota::default())
    }

    #[test]
    fn usage_is_recounted_at_open_and_kept_by_writes() {
        let db = ::sled::Config::new().temporary(true).open().expect("sled");
        let tree = db.open_tree("kv").expect("tree");
        let quota = KeyValueQuota { max_keys: 3, max_bytes: 1000 };
        let kv = SledKeyValue::new(tree.clone());
        set(&kv, "p", "a", "k1", vec![0; 10], quota).expect("set");
        set(&kv, "p", "b", "k2", vec![0; 20], quota).expect("set");
        set(&kv, "p-2", "a", "k1", vec![0; 30], quota).expect("another namespace");
        set(&kv, "p", "a", "k1", vec![0; 5], quota).expect("overwrite");
        assert_eq!(kv.usage("p").ok(), Some(KeyValueUsage { keys: 2, bytes: 7 + 22 }));

        // A fresh handle (the store reopened) counts the same from the tree.
        let reopened = SledKeyValue::new(tree);
        assert_eq!(reopened.usage("p").ok(), Some(KeyValueUsage { keys: 2, bytes: 29 }));
        assert_eq!(reopened.usage("p-2").ok(), Some(KeyValueUsage { keys: 1, bytes: 32 }));
        set(&reopened, "p", "a", "k3", vec![], quota).expect("third key");
        assert!(matches!(set(&reopened, "p", "c", "k4", vec![], quota), Err(CommitError::Quota(_))));
        assert_eq!(reopened.get("p", "c", "k4").ok(), Some(None));
        delete(&reopened, "p", "b", "k2").expect("delete");
        assert_eq!(reopened.usage("p").ok(), Some(KeyValueUsage { keys: 2, bytes: 9 }));
        set(&reopened, "p", "c", "k4", vec![], quota).expect("room again");
    }

    #[test]
    fn keys_after_is_a_range_scan_within_the_bucket() {
        let db = ::sled::Config::new().temporary(true).open().expect("sled");
        let kv = SledKeyValue::new(db.open_tree("kv").expect("tree"));
        let quota = KeyValueQuota::default();
        for (bucket, key) in [("a", "x"), ("b", "1"), ("b", "2"), ("b", "2\0"), ("b", "3"), ("bb", "0"), ("c", "0")] {
            set(&kv, "p", bucket, key, vec![], quota).expect("set");
        }
        assert_eq!(kv.keys_after("p", "b", None, 2).ok(), Some(vec!["1".to_string(), "2".to_string()]));
        assert_eq!(kv.keys_after("p", "b", Some("2"), 10).ok(), Some(vec!["2\0".to_string(), "3".to_string()]));
        assert_eq!(kv.keys_after("p", "b", Some("3"), 10).ok(), Some(vec![]));
        assert_eq!(kv.keys_after("p", "bb", None, 10).ok(), Some(vec!["0".to_string()]));
    }

    #[test]
    fn a_change_set_applies_whole_or_not_at_all_and_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let quota = KeyValueQuota { max_keys: 3, max_bytes: 1000 };
        {
            let db = ::sled::Config::new().path(dir.path()).open().expect("sled");
            let kv = SledKeyValue::new(db.open_tree("kv").expect("tree"));
            set(&kv, "p", "b", "old", vec![1], quota).expect("set");
            let mut changes = ChangeSet::default();
            changes.delete("b", "old").set("b", "k1", vec![2]).set("b", "k2", vec![3]).set("b", "k3", vec![4]);
            kv.commit("p", changes, quota).expect("within the quota once the delete counts");
            let mut over = ChangeSet::default();
            over.delete("b", "k1").set("b", "k2", vec![9]).set("b", "k4", vec![]).set("b", "k5", vec![]);
            assert!(matches!(kv.commit("p", over, quota), Err(CommitError::Quota(_))));
            assert_eq!(kv.usage("p").ok(), Some(KeyValueUsage { keys: 3, bytes: 9 }), "counters only for what applied");
            db.flush().expect("flush");
        }
        let db = ::sled::Config::new().path(dir.path()).open().expect("reopen");
        let kv = SledKeyValue::new(db.open_tree("kv").expect("tree"));
        assert_eq!(kv.keys_after("p", "b", None, 10).ok(), Some(vec!["k1".into(), "k2".into(), "k3".into()]));
        assert_eq!(kv.get("p", "b", "k2").ok(), Some(Some(vec![3])));
        assert_eq!(kv.usage("p").ok(), Some(KeyValueUsage { keys: 3, bytes: 9 }));
    }

    #[test]
    fn deleting_a_plugin_forgets_its_usage() {
        use crate::{Change, Op, Storage};
        let dir = tempfile::tempdir().expect("tempdir");
        let key = crate::sealed::SecretsKey::ephemeral().expect("key");
        let store = crate::sled::SledStore::open(dir.path(), key).expect("store");
        let kv = store.key_value();
        let quota = KeyValueQuota { max_keys: 1, max_bytes: 1000 };
        set(&*kv, "p", "a", "k1", vec![1], quota).expect("set");
        assert!(matches!(set(&*kv, "p", "a", "k2", vec![1], quota), Err(CommitError::Quota(_))), "at its quota");
        store.apply(Change::new().with(Op::ForgetPlugin("p".into()))).expect("forget");
        assert_eq!(kv.usage("p").ok(), Some(KeyValueUsage::default()));
        set(&*kv, "p", "a", "k2", vec![1], quota).expect("a plugin published again under the name starts empty");
    }
}
