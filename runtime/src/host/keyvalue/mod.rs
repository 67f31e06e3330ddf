//! `wasi:keyvalue/store`: state a plugin keeps between invocations, in granted buckets only.
//!
//! Buckets are namespaced by plugin name, so two plugins never see each other's data, and a plugin
//! may open only the buckets its manifest requests *and* the operator grants; any other is
//! `error.access-denied` (logged as a denial). Where the data lives is the host's choice through the
//! [`KeyValueStore`] trait: [`MemoryKeyValue`] by default, a persistent store in a server.
//!
//! **State guarantee.** The key-value writes of one invocation commit atomically if and only if
//! the invocation succeeds. Retries and replays are at-least-once, so a failed attempt must leave
//! nothing behind for the next one to trip over: a trap, a budget overrun (fuel, memory, output,
//! records), a plugin error or a timeout discards every write of the invocation. Until then the
//! writes wait in the invocation's overlay (`overlay.rs`), which `get`, `exists` and `list-keys` read
//! through, so the invocation sees its own writes; other invocations see only committed state.
//! Concurrent commits on one plugin's data serialize: each key ends with the value of the
//! invocation that committed it last. In a flow, an invocation commits into the execution's
//! [`StagedKeyValue`] (`staged.rs`), which the control plane commits with the stored execution:
//! work that runs again after a crash finds the state as it was before. A step that succeeded keeps
//! its writes when a later step dead-letters records (a replay starts at that later step); an
//! execution that fails as a whole commits none.
//!
//! A plugin cannot grow host storage without limit: keys and values are bounded per call
//! ([`MAX_KEY_BYTES`], [`MAX_VALUE_BYTES`]) and its data over all its buckets by a
//! [`KeyValueQuota`] (keys and bytes), checked at each `set` (so the guest gets the error where it
//! writes) and again, exactly, when the backend commits under one lock, so concurrent invocations
//! of one plugin cannot together pass it.
//!
//! `list-keys` pages continue after the last key returned (a range scan, not a rescan from the
//! start). The WIT cursor is a `u64`, so the host hands out cursor ids and keeps, per invocation,
//! the key each one continues after ([`Cursors`]).

pub(crate) mod overlay;
mod staged;
mod store;

pub use staged::StagedKeyValue;
pub use store::{ChangeSet, CommitError, KeyValueQuota, KeyValueStore, KeyValueUsage, MemoryKeyValue, QuotaExceeded};

use crate::bindings::keyvalue_store::{self, Error, KeyResponse};
use crate::host::logs::guest_text;
use crate::state::InvocationState;
use std::collections::BTreeMap;
use wasmtime::component::Resource;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Keys returned per `list-keys` page.
pub const LIST_PAGE: usize = 1000;
/// Unfinished `list-keys` listings one invocation may keep; starting another forgets the oldest.
const MAX_OPEN_CURSORS: usize = 16;

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

    fn kv<T>(&self, result: Result<T, crate::cause::Cause>) -> Result<T, Error> {
        result.map_err(|err| {
            tracing::error!(%err, "key-value storage failed");
            Error::Other("storage failure".into())
        })
    }

    /// The value of `key` as this invocation sees it: its own write, else the stored value.
    fn read(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
        match self.kv_overlay.get(bucket, key) {
            Some(written) => Ok(written.map(<[u8]>::to_vec)),
            None => self.kv(self.key_value.get(&self.grant.namespace, bucket, key)),
        }
    }

    /// Commits the invocation's key-value writes (see the state guarantee in the module docs);
    /// called only once the invocation succeeded.
    ///
    /// # Errors
    /// [`crate::Error::KeyValueQuota`] when the writes no longer fit the plugin's quota (a
    /// concurrent invocation committed first), [`crate::Error::Internal`] when the storage failed;
    /// nothing was committed either way.
    pub(crate) fn commit_key_value(&mut self) -> crate::Result<()> {
        let changes = self.kv_overlay.take();
        if changes.is_empty() {
            return Ok(());
        }
        match self.key_value.commit(&self.grant.namespace, changes, self.key_value_quota) {
            Ok(()) => Ok(()),
            Err(CommitError::Quota(exceeded)) => {
                self.logs.host_warning(format!("key-value writes discarded: {exceeded}"));
                Err(crate::Error::KeyValueQuota(exceeded))
            }
            Err(CommitError::Storage(err)) => {
                tracing::error!(%err, "committing key-value writes failed");
                Err(crate::Error::internal_from("committing key-value writes", err))
            }
        }
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
                format!(
                    "key-value bucket `{name}` is requested by the plugin's manifest but not granted by the operator (grant it: `plugboard grant <plugin> --bucket {name}`)"
                )
            } else {
                format!(
                    "key-value bucket `{name}` is not among the manifest's `key_value` buckets (add it to plugin.toml and publish a new version)"
                )
            });
            return Err(Error::AccessDenied);
        }
        self.table.push(Bucket { name: identifier }).map_err(|err| Error::Other(err.to_string()))
    }
}

impl keyvalue_store::HostBucket for InvocationState {
    fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, Error> {
        let name = self.bucket_for_key(&bucket, &key)?;
        self.read(&name, &key)
    }

    fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Result<(), Error> {
        let name = self.bucket_for_key(&bucket, &key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(Error::Other(format!("values are at most {MAX_VALUE_BYTES} bytes")));
        }
        let written =
            self.kv_overlay.set(&*self.key_value, &self.grant.namespace, &name, &key, value, self.key_value_quota);
        match written {
            Ok(()) => Ok(()),
            Err(CommitError::Quota(exceeded)) => {
                let message = exceeded.to_string();
                self.logs.host_warning(message.clone());
                Err(Error::Other(message))
            }
            Err(CommitError::Storage(err)) => self.kv(Err(err)),
        }
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), Error> {
        let name = self.bucket_for_key(&bucket, &key)?;
        let deleted = self.kv_overlay.delete(&*self.key_value, &self.grant.namespace, &name, &key);
        self.kv(deleted)
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, Error> {
        let name = self.bucket_for_key(&bucket, &key)?;
        Ok(self.read(&name, &key)?.is_some())
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
        let listed =
            self.kv_overlay.keys_after(&*self.key_value, &self.grant.namespace, &name, after.as_deref(), LIST_PAGE);
        let keys = self.kv(listed)?;
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
