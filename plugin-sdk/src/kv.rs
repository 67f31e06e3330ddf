//! State kept between invocations, through `wasi:keyvalue/store`.
//!
//! A plugin may open only the buckets its manifest lists under `capabilities.key_value` and the
//! operator grants; opening any other is [`PluginError::Denied`]. Buckets are private to the plugin.

use crate::PluginError;
use crate::bindings::wasi::keyvalue::store::{self, Error};

fn convert(err: Error) -> PluginError {
    match err {
        Error::AccessDenied => PluginError::Denied("key-value bucket not granted".into()),
        Error::NoSuchStore => PluginError::InvalidConfig("no such key-value bucket".into()),
        Error::Other(message) => PluginError::Internal(format!("key-value: {message}")),
    }
}

/// An open bucket.
pub struct Bucket(store::Bucket);

/// Opens the bucket called `name`.
///
/// # Errors
/// [`PluginError::Denied`] when the bucket was not granted.
pub fn open(name: &str) -> Result<Bucket, PluginError> {
    store::open(name).map(Bucket).map_err(convert)
}

impl Bucket {
    /// The value of `key`, if set.
    ///
    /// # Errors
    /// [`PluginError::Internal`] when the host's storage fails.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PluginError> {
        self.0.get(key).map_err(convert)
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// [`PluginError::Internal`] when the value is too large or the host's storage fails.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), PluginError> {
        self.0.set(key, value).map_err(convert)
    }

    /// Removes `key`.
    ///
    /// # Errors
    /// [`PluginError::Internal`] when the host's storage fails.
    pub fn delete(&self, key: &str) -> Result<(), PluginError> {
        self.0.delete(key).map_err(convert)
    }

    /// Every key in the bucket, in order.
    ///
    /// # Errors
    /// [`PluginError::Internal`] when the host's storage fails.
    pub fn keys(&self) -> Result<Vec<String>, PluginError> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.0.list_keys(cursor).map_err(convert)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }
}
