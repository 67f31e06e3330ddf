//! `wasi:keyvalue/store`: state a plugin keeps between invocations, in granted buckets only.
//!
//! Buckets are namespaced by plugin name, so two plugins never see each other's data, and a plugin
//! may open only the buckets its manifest requests *and* the operator grants; any other is
//! `error.access-denied` (logged as a denial). Where the data lives is the host's choice through the
//! [`KeyValueStore`] trait: [`MemoryKeyValue`] by default, a persistent store in a server.
//! Keys and values are bounded so a plugin cannot grow host storage without limit in one call.

use crate::bindings::keyvalue_store::{self, Error, KeyResponse};
use crate::state::InvocationState;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use wasmtime::component::Resource;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Keys returned per `list-keys` page.
const LIST_PAGE: usize = 1000;

/// Where plugin key-value data is kept. `namespace` is the plugin name.
pub trait KeyValueStore: Send + Sync + std::fmt::Debug {
    /// The value of `key`, if set.
    ///
    /// # Errors
    /// A description of a storage failure.
    fn get(&self, namespace: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// A description of a storage failure.
    fn set(&self, namespace: &str, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), String>;
    /// Removes `key` (no error if absent).
    ///
    /// # Errors
    /// A description of a storage failure.
    fn delete(&self, namespace: &str, bucket: &str, key: &str) -> Result<(), String>;
    /// Keys of the bucket in order, starting after the first `skip`.
    ///
    /// # Errors
    /// A description of a storage failure.
    fn keys(&self, namespace: &str, bucket: &str, skip: usize, limit: usize) -> Result<Vec<String>, String>;
}

/// An in-memory [`KeyValueStore`]: data lives as long as the runtime.
#[derive(Debug, Default)]
pub struct MemoryKeyValue(Mutex<BTreeMap<(String, String, String), Vec<u8>>>);

impl KeyValueStore for MemoryKeyValue {
    fn get(&self, namespace: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(&(namespace.into(), bucket.into(), key.into())).cloned())
    }

    fn set(&self, namespace: &str, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), String> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert((namespace.into(), bucket.into(), key.into()), value);
        Ok(())
    }

    fn delete(&self, namespace: &str, bucket: &str, key: &str) -> Result<(), String> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(&(namespace.into(), bucket.into(), key.into()));
        Ok(())
    }

    fn keys(&self, namespace: &str, bucket: &str, skip: usize, limit: usize) -> Result<Vec<String>, String> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(map
            .keys()
            .filter(|(ns, b, _)| ns == namespace && b == bucket)
            .skip(skip)
            .take(limit)
            .map(|(_, _, key)| key.clone())
            .collect())
    }
}

/// An open bucket, as the guest holds it.
#[derive(Debug)]
pub struct Bucket {
    name: String,
}

impl InvocationState {
    fn bucket_name(&self, bucket: &Resource<Bucket>) -> Result<String, Error> {
        self.table.get(bucket).map(|b| b.name.clone()).map_err(|err| Error::Other(err.to_string()))
    }

    fn check_key(key: &str) -> Result<(), Error> {
        if key.len() > MAX_KEY_BYTES {
            return Err(Error::Other(format!("keys are at most {MAX_KEY_BYTES} bytes")));
        }
        Ok(())
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
        if !self.grant.key_value.contains(&identifier) {
            self.logs.host_warning(format!("key-value bucket `{identifier}` is not granted to this plugin"));
            return Err(Error::AccessDenied);
        }
        self.table.push(Bucket { name: identifier }).map_err(|err| Error::Other(err.to_string()))
    }
}

impl keyvalue_store::HostBucket for InvocationState {
    fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, Error> {
        let name = self.bucket_name(&bucket)?;
        Self::check_key(&key)?;
        self.kv(self.key_value.get(&self.grant.namespace, &name, &key))
    }

    fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Result<(), Error> {
        let name = self.bucket_name(&bucket)?;
        Self::check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(Error::Other(format!("values are at most {MAX_VALUE_BYTES} bytes")));
        }
        self.kv(self.key_value.set(&self.grant.namespace, &name, &key, value))
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), Error> {
        let name = self.bucket_name(&bucket)?;
        self.kv(self.key_value.delete(&self.grant.namespace, &name, &key))
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, Error> {
        let name = self.bucket_name(&bucket)?;
        Ok(self.kv(self.key_value.get(&self.grant.namespace, &name, &key))?.is_some())
    }

    fn list_keys(&mut self, bucket: Resource<Bucket>, cursor: Option<u64>) -> Result<KeyResponse, Error> {
        let name = self.bucket_name(&bucket)?;
        let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        let keys = self.kv(self.key_value.keys(&self.grant.namespace, &name, skip, LIST_PAGE))?;
        let cursor = (keys.len() == LIST_PAGE).then(|| (skip + LIST_PAGE) as u64);
        Ok(KeyResponse { keys, cursor })
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}
