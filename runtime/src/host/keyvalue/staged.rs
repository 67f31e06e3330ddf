//! A flow execution's key-value writes, held back until the execution itself is stored.
//!
//! An invocation's writes commit when it succeeds ([`super::overlay`]). Inside a flow that is not
//! enough: a step that succeeded early in an execution would have its writes on disk while the
//! execution — and the removal of the queued work it carries — is stored only at the end. A crash
//! in between re-runs the work from its first step with the state already updated, and a `dedupe`
//! step would then drop records that were never delivered: acknowledged input lost.
//!
//! So a flow's plugins run over a [`StagedKeyValue`]: each successful invocation "commits" into it
//! (reads of later invocations of the execution see those writes), and the caller commits the
//! whole of it to the real store with, and after, the execution's own record. A crash before that
//! leaves the state as it was before the execution, which re-runs from the start; a crash between
//! the two loses state writes of a stored execution, never records (the worst case is a record
//! passed on twice, as at-least-once delivery allows).

use super::overlay::Overlay;
use super::store::{ChangeSet, CommitError, KeyValueQuota, KeyValueStore, KeyValueUsage};
use crate::sync::Locked;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Writes staged over a real store, per namespace (plugin), until [`commit_all`](Self::commit_all).
#[derive(Debug)]
pub struct StagedKeyValue {
    store: Arc<dyn KeyValueStore>,
    staged: Mutex<BTreeMap<String, Overlay>>,
}

impl StagedKeyValue {
    /// Nothing staged yet, over `store`.
    pub fn new(store: Arc<dyn KeyValueStore>) -> StagedKeyValue {
        StagedKeyValue { store, staged: Mutex::default() }
    }

    fn staged(&self) -> MutexGuard<'_, BTreeMap<String, Overlay>> {
        self.staged.locked()
    }

    /// Whether nothing was staged.
    pub fn is_empty(&self) -> bool {
        self.staged().values().all(Overlay::is_empty)
    }

    /// Commits every namespace's staged writes to the real store, each atomically (the store
    /// checks the quota against what is stored then), and forgets them; answers the namespaces
    /// whose commit was refused (their writes are dropped, the others' are committed).
    pub fn commit_all(&self, quota: KeyValueQuota) -> Vec<(String, CommitError)> {
        let staged = std::mem::take(&mut *self.staged());
        let mut refused = Vec::new();
        for (namespace, mut overlay) in staged {
            if let Err(err) = self.store.commit(&namespace, overlay.take(), quota) {
                refused.push((namespace, err));
            }
        }
        refused
    }
}

impl KeyValueStore for StagedKeyValue {
    fn get(&self, namespace: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, crate::cause::Cause> {
        if let Some(written) = self.staged().get(namespace).and_then(|overlay| overlay.get(bucket, key)) {
            return Ok(written.map(<[u8]>::to_vec));
        }
        self.store.get(namespace, bucket, key)
    }

    /// Stages `changes` over what is already staged for the namespace, if the namespace as the
    /// execution would leave it stays within `quota` (checked once, on the whole set); all or
    /// nothing.
    fn commit(&self, namespace: &str, changes: ChangeSet, quota: KeyValueQuota) -> Result<(), CommitError> {
        let mut staged = self.staged();
        staged.entry(namespace.to_string()).or_default().apply(self.store.as_ref(), namespace, changes, quota)
    }

    fn keys_after(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, crate::cause::Cause> {
        match self.staged().get(namespace) {
            Some(overlay) => overlay.keys_after(self.store.as_ref(), namespace, bucket, after, limit),
            None => self.store.keys_after(namespace, bucket, after, limit),
        }
    }

    fn usage(&self, namespace: &str) -> Result<KeyValueUsage, crate::cause::Cause> {
        let stored = self.store.usage(namespace)?;
        Ok(self.staged().get(namespace).map_or(stored, |overlay| overlay.projected(stored)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryKeyValue;

    const QUOTA: KeyValueQuota = KeyValueQuota { max_keys: 3, max_bytes: 1 << 20 };

    fn changes(writes: &[(&str, Option<&str>)]) -> ChangeSet {
        let mut set = ChangeSet::default();
        for (key, value) in writes {
            match value {
                Some(value) => set.set("b", key, value.as_bytes().to_vec()),
                None => set.delete("b", key),
            };
        }
        set
    }

    #[test]
    fn staged_writes_are_read_through_and_reach_the_store_only_when_committed() {
        let store = Arc::new(MemoryKeyValue::default());
        store.commit("p", changes(&[("old", Some("1")), ("gone", Some("2"))]), QUOTA).expect("seed");
        let staged = StagedKeyValue::new(store.clone());
        staged.commit("p", changes(&[("new", Some("3")), ("gone", None)]), QUOTA).expect("stage");
        assert_eq!(staged.get("p", "b", "new").ok(), Some(Some(b"3".to_vec())));
        assert_eq!(staged.get("p", "b", "gone").ok(), Some(None));
        assert_eq!(staged.keys_after("p", "b", None, 10).ok(), Some(vec!["new".to_string(), "old".to_string()]));
        assert_eq!(staged.usage("p").map(|u| u.keys).ok(), Some(2));
        // Nothing reached the store yet.
        assert_eq!(store.get("p", "b", "new").ok(), Some(None));
        assert_eq!(store.get("p", "b", "gone").ok(), Some(Some(b"2".to_vec())));
        assert!(staged.commit_all(QUOTA).is_empty());
        assert_eq!(store.keys_after("p", "b", None, 10).ok(), Some(vec!["new".to_string(), "old".to_string()]));
        assert!(staged.is_empty());
    }

    #[test]
    fn a_staged_commit_past_the_quota_stages_nothing() {
        let store = Arc::new(MemoryKeyValue::default());
        let staged = StagedKeyValue::new(store.clone());
        staged.commit("p", changes(&[("a", Some("1")), ("b", Some("2"))]), QUOTA).expect("fits");
        let refused = staged.commit("p", changes(&[("c", Some("3")), ("d", Some("4"))]), QUOTA);
        assert!(matches!(refused, Err(CommitError::Quota(_))), "{refused:?}");
        assert_eq!(staged.get("p", "b", "c").ok(), Some(None), "all or nothing");
        assert_eq!(staged.usage("p").map(|u| u.keys).ok(), Some(2));
        // Another execution filled the store meanwhile: the final commit is refused for this
        // plugin only, and applies nothing of it.
        staged.commit("q", changes(&[("a", Some("1"))]), QUOTA).expect("another plugin");
        store.commit("p", changes(&[("x", Some("1")), ("y", Some("1"))]), QUOTA).expect("other writer");
        let refused = staged.commit_all(QUOTA);
        assert_eq!(refused.iter().map(|(ns, _)| ns.as_str()).collect::<Vec<_>>(), vec!["p"]);
        assert_eq!(store.get("p", "b", "a").ok(), Some(None));
        assert_eq!(store.get("q", "b", "a").ok(), Some(Some(b"1".to_vec())));
    }

    #[test]
    fn a_delete_and_a_set_at_the_key_cap_fit_in_any_key_order() {
        let store = Arc::new(MemoryKeyValue::default());
        store.commit("p", changes(&[("x", Some("1")), ("y", Some("1")), ("zzz", Some("1"))]), QUOTA).expect("at cap");
        let staged = StagedKeyValue::new(store.clone());
        // `aaa` sorts before `zzz`: a per-key check would see four keys.
        staged.commit("p", changes(&[("zzz", None), ("aaa", Some("1"))]), QUOTA).expect("net zero");
        assert_eq!(staged.usage("p").map(|u| u.keys).ok(), Some(3));
        assert!(staged.commit_all(QUOTA).is_empty());
        assert_eq!(store.keys_after("p", "b", None, 10).map(|k| k.len()).ok(), Some(3));
    }
}
