//! One invocation's uncommitted key-value writes: read through, committed only on success.
//!
//! Retries and replays are at-least-once, so state must not leak from a failed attempt: a
//! `dedupe` transformer that stored the ids of half a batch and then ran out of fuel would drop
//! those records on the retry although they were never delivered. So a guest's `set` and `delete`
//! land here, not in the store; `get`, `exists` and `list-keys` read through the overlay, so the
//! invocation sees its own writes; and [`Plugin::invoke`](crate::Plugin) commits the overlay as one
//! [`ChangeSet`] only when the invocation succeeded. Every failure drops it with the Store.
//!
//! The quota is checked at `set` against the stored usage plus what the overlay changes, so a
//! guest gets the quota error at the write that passes it (the commit checks again, exactly, under
//! the store's lock). That check also bounds the host memory the overlay holds: its values count
//! against the quota, an overwrite replaces the earlier write, and a delete is kept only for a key
//! that is stored (deleting an absent key, or a key only this invocation set, leaves no entry). So
//! the overlay holds at most the quota's bytes in values plus one key per stored key.

use super::store::{ChangeSet, CommitError, KeyValueQuota, KeyValueStore, KeyValueUsage};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

/// One key the invocation wrote.
#[derive(Debug, Clone)]
struct Pending {
    /// What the stored entry counted for when the invocation first wrote the key (`None`: absent).
    base: Option<u64>,
    /// The value written, or `None` for a delete.
    value: Option<Vec<u8>>,
}

impl Pending {
    /// What this write adds to the usage, over the stored entry it replaces: (keys, bytes).
    fn effect(&self, key: &str) -> (i128, i128) {
        let now = self.value.as_ref().map(|v| KeyValueUsage::entry_bytes(key, v.len()));
        (
            i128::from(now.is_some()) - i128::from(self.base.is_some()),
            i128::from(now.unwrap_or(0)) - i128::from(self.base.unwrap_or(0)),
        )
    }
}

/// The writes of one invocation, by `(bucket, key)`, with their net effect on the usage.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overlay {
    pending: BTreeMap<(String, String), Pending>,
    /// The sum of every pending write's [`Pending::effect`].
    delta: (i128, i128),
}

fn clamp(value: i128) -> u64 {
    u64::try_from(value.max(0)).unwrap_or(u64::MAX)
}

fn stored_len(
    store: &dyn KeyValueStore,
    namespace: &str,
    bucket: &str,
    key: &str,
) -> Result<Option<u64>, crate::cause::Cause> {
    Ok(store.get(namespace, bucket, key)?.map(|value| KeyValueUsage::entry_bytes(key, value.len())))
}

impl Overlay {
    /// What the invocation wrote to `key`: `None` if nothing, `Some(None)` if it deleted it.
    pub(crate) fn get(&self, bucket: &str, key: &str) -> Option<Option<&[u8]>> {
        self.pending.get(&(bucket.to_string(), key.to_string())).map(|p| p.value.as_deref())
    }

    /// Whether nothing was written.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The usage of a namespace whose stored usage is `stored`, once these writes are applied.
    pub(crate) fn projected(&self, stored: KeyValueUsage) -> KeyValueUsage {
        KeyValueUsage {
            keys: clamp(i128::from(stored.keys) + self.delta.0),
            bytes: clamp(i128::from(stored.bytes) + self.delta.1),
        }
    }

    /// Keys written, deletes included.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending.len()
    }

    /// Sets `key` to `value` if the namespace, as this invocation would leave it, stays within
    /// `quota`.
    ///
    /// # Errors
    /// [`CommitError::Quota`] when refused (nothing changes), [`CommitError::Storage`] when reading
    /// the store failed.
    pub(crate) fn set(
        &mut self,
        store: &dyn KeyValueStore,
        namespace: &str,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
        quota: KeyValueQuota,
    ) -> Result<(), CommitError> {
        let entry = (bucket.to_string(), key.to_string());
        let (base, visible) = match self.pending.get(&entry) {
            Some(p) => (p.base, p.value.as_ref().map(|v| KeyValueUsage::entry_bytes(key, v.len()))),
            None => {
                let base = stored_len(store, namespace, bucket, key).map_err(CommitError::Storage)?;
                (base, base)
            }
        };
        let stored = store.usage(namespace).map_err(CommitError::Storage)?;
        self.projected(stored).after_set(visible, KeyValueUsage::entry_bytes(key, value.len()), quota)?;
        self.put(entry, Some(Pending { base, value: Some(value) }));
        Ok(())
    }

    /// Deletes `key` (nothing to do if it is neither stored nor written).
    ///
    /// # Errors
    /// A description of a storage failure reading the store.
    pub(crate) fn delete(
        &mut self,
        store: &dyn KeyValueStore,
        namespace: &str,
        bucket: &str,
        key: &str,
    ) -> Result<(), crate::cause::Cause> {
        let entry = (bucket.to_string(), key.to_string());
        let base = match self.pending.get(&entry) {
            Some(p) => p.base,
            None => stored_len(store, namespace, bucket, key)?,
        };
        // A key that was not stored needs no delete: dropping the pending write is the delete.
        self.put(entry, base.map(|base| Pending { base: Some(base), value: None }));
        Ok(())
    }

    /// Applies a whole change set, then checks the quota once on the usage it leaves (as a
    /// store's `commit` does: a delete and a set at the key cap fit together in any key order);
    /// refused, the overlay is left exactly as it was (an undo log of the touched keys, not a copy).
    ///
    /// # Errors
    /// [`CommitError::Quota`] when refused, [`CommitError::Storage`] when reading the store failed.
    pub(crate) fn apply(
        &mut self,
        store: &dyn KeyValueStore,
        namespace: &str,
        changes: ChangeSet,
        quota: KeyValueQuota,
    ) -> Result<(), CommitError> {
        let stored = store.usage(namespace).map_err(CommitError::Storage)?;
        let before = self.projected(stored);
        let mut undo: Vec<((String, String), Option<Pending>)> = Vec::with_capacity(changes.len());
        let mut outcome = Ok(());
        for (entry, value) in changes {
            let base = match self.pending.get(&entry) {
                Some(p) => p.base,
                None => match stored_len(store, namespace, &entry.0, &entry.1) {
                    Ok(base) => base,
                    Err(err) => {
                        outcome = Err(CommitError::Storage(err));
                        break;
                    }
                },
            };
            undo.push((entry.clone(), self.pending.get(&entry).cloned()));
            let write = match value {
                Some(value) => Some(Pending { base, value: Some(value) }),
                None => base.map(|base| Pending { base: Some(base), value: None }),
            };
            self.put(entry, write);
        }
        if outcome.is_ok() {
            outcome = before.check(self.projected(stored), quota).map(|_| ()).map_err(CommitError::from);
        }
        if outcome.is_err() {
            for (entry, old) in undo.into_iter().rev() {
                self.put(entry, old);
            }
        }
        outcome
    }

    /// Replaces the pending write of `entry` (`None`: forgets it), keeping `delta` the sum.
    fn put(&mut self, entry: (String, String), write: Option<Pending>) {
        let key = entry.1.clone();
        if let Some(old) = self.pending.remove(&entry) {
            let (keys, bytes) = old.effect(&key);
            self.delta = (self.delta.0 - keys, self.delta.1 - bytes);
        }
        if let Some(write) = write {
            let (keys, bytes) = write.effect(&key);
            self.delta = (self.delta.0 + keys, self.delta.1 + bytes);
            self.pending.insert(entry, write);
        }
    }

    /// Up to `limit` keys of the bucket as this invocation sees it, in order, after `after`: the
    /// stored keys it did not delete merged with the keys it set.
    ///
    /// # Errors
    /// A description of a storage failure.
    pub(crate) fn keys_after(
        &self,
        store: &dyn KeyValueStore,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, crate::cause::Cause> {
        let start = match after {
            Some(after) => Bound::Excluded((bucket.to_string(), after.to_string())),
            None => Bound::Included((bucket.to_string(), String::new())),
        };
        let mut written =
            self.pending.range((start, Bound::Unbounded)).take_while(|((b, _), _)| b == bucket).peekable();
        let (mut stored, mut stored_after, mut stored_done) = (VecDeque::new(), after.map(str::to_string), false);
        let mut keys = Vec::new();
        while keys.len() < limit {
            if stored.is_empty() && !stored_done {
                // Deleted keys may take up a whole page: read on until the page is full.
                let page = store.keys_after(namespace, bucket, stored_after.as_deref(), limit)?;
                stored_done = page.len() < limit;
                if let Some(last) = page.last() {
                    stored_after = Some(last.clone());
                }
                stored.extend(page);
            }
            let take_written = match (stored.front(), written.peek()) {
                (None, None) => break,
                (Some(next), Some(((_, key), _))) => key <= next,
                (None, Some(_)) => true,
                (Some(_), None) => false,
            };
            if take_written {
                let Some(((_, key), pending)) = written.next() else { break };
                if stored.front() == Some(key) {
                    stored.pop_front();
                }
                if pending.value.is_some() {
                    keys.push(key.clone());
                }
            } else if let Some(key) = stored.pop_front() {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// The writes to commit, leaving the overlay empty.
    pub(crate) fn take(&mut self) -> ChangeSet {
        self.delta = (0, 0);
        std::mem::take(&mut self.pending).into_iter().map(|(entry, pending)| (entry, pending.value)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryKeyValue;

    const QUOTA: KeyValueQuota = KeyValueQuota { max_keys: 4, max_bytes: 100 };

    fn stored(keys: &[&str]) -> MemoryKeyValue {
        let kv = MemoryKeyValue::default();
        let mut changes = ChangeSet::default();
        for key in keys {
            changes.set("b", key, vec![0; 9]);
        }
        kv.commit("p", changes, QUOTA).expect("commit");
        kv
    }

    #[test]
    fn reads_see_the_invocations_own_writes_and_the_store_sees_none_until_commit() {
        let kv = stored(&["a", "c", "e"]);
        let mut overlay = Overlay::default();
        overlay.set(&kv, "p", "b", "b", vec![1], QUOTA).expect("set");
        overlay.set(&kv, "p", "b", "c", vec![2], QUOTA).expect("overwrite a stored key");
        overlay.delete(&kv, "p", "b", "e").expect("delete");
        overlay.set(&kv, "p", "other", "z", vec![3], QUOTA).expect("another bucket");
        assert_eq!(overlay.get("b", "b"), Some(Some(&[1u8][..])));
        assert_eq!(overlay.get("b", "e"), Some(None));
        assert_eq!(overlay.get("b", "a"), None);
        let all = overlay.keys_after(&kv, "p", "b", None, 10).expect("list");
        assert_eq!(all, ["a", "b", "c"]);
        assert_eq!(overlay.keys_after(&kv, "p", "b", Some("a"), 1).expect("page"), ["b"]);
        assert_eq!(overlay.keys_after(&kv, "p", "b", Some("b"), 5).expect("page"), ["c"]);
        assert_eq!(kv.keys_after("p", "b", None, 10).ok(), Some(vec!["a".into(), "c".into(), "e".into()]));

        let changes = overlay.take();
        assert_eq!(changes.len(), 4);
        kv.commit("p", changes, QUOTA).expect("commit");
        assert_eq!(kv.keys_after("p", "b", None, 10).ok(), Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(kv.get("p", "b", "c").ok(), Some(Some(vec![2])));
        assert_eq!(overlay.len(), 0);
    }

    #[test]
    fn listing_reads_past_pages_of_deleted_keys() {
        let kv = stored(&["1", "2", "3", "4"]);
        let mut overlay = Overlay::default();
        for key in ["1", "2", "3"] {
            overlay.delete(&kv, "p", "b", key).expect("delete");
        }
        overlay.set(&kv, "p", "b", "5", vec![], QUOTA).expect("set");
        assert_eq!(overlay.keys_after(&kv, "p", "b", None, 1).expect("page"), ["4"]);
        assert_eq!(overlay.keys_after(&kv, "p", "b", Some("4"), 1).expect("page"), ["5"]);
        assert!(overlay.keys_after(&kv, "p", "b", Some("5"), 1).expect("page").is_empty());
    }

    #[test]
    fn the_quota_counts_the_overlay_so_the_guest_is_refused_where_it_writes() {
        let kv = stored(&["a", "b", "c"]);
        let mut overlay = Overlay::default();
        overlay.set(&kv, "p", "b", "d", vec![], QUOTA).expect("the fourth key");
        assert!(matches!(overlay.set(&kv, "p", "b", "e", vec![], QUOTA), Err(CommitError::Quota(_))));
        assert_eq!(overlay.get("b", "e"), None, "a refused write is not pending");
        overlay.delete(&kv, "p", "b", "a").expect("delete frees a key");
        overlay.set(&kv, "p", "b", "e", vec![], QUOTA).expect("room again");
        // 3 stored keys of 10 bytes, now 2 plus `d` and `e` of 1 byte: 22 bytes; `e` may take 78 more.
        assert!(matches!(overlay.set(&kv, "p", "b", "e", vec![0; 79], QUOTA), Err(CommitError::Quota(_))));
        overlay.set(&kv, "p", "b", "e", vec![0; 78], QUOTA).expect("exactly at the byte cap");
    }

    #[test]
    fn a_guest_writing_in_a_loop_holds_no_more_host_memory() {
        let kv = stored(&["a"]);
        let mut overlay = Overlay::default();
        for i in 0..10_000 {
            overlay.delete(&kv, "p", "b", &format!("absent-{i}")).expect("delete of an absent key");
            overlay.set(&kv, "p", "b", "x", vec![0; 50], QUOTA).expect("overwrite");
            overlay.set(&kv, "p", "b", &format!("new-{i}"), vec![0; 10], QUOTA).expect("a new key");
            overlay.delete(&kv, "p", "b", &format!("new-{i}")).expect("delete of a key only written here");
            overlay.delete(&kv, "p", "b", "a").expect("delete of a stored key");
        }
        assert_eq!(overlay.len(), 2, "`x` and the delete of `a`");
        assert_eq!(overlay.delta, (0, 51 - 10), "`x` is 51 bytes, `a` was 10");
    }
}
