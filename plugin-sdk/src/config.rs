//! Configuration values the operator granted, through `wasi:config/store`.
//!
//! Secrets are config keys the manifest marks as secret; a plugin reads them the same way. The
//! Plugboard host answers `error::upstream` only for a key the operator did not grant, which this
//! module turns into [`PluginError::Denied`].

use crate::PluginError;
use crate::bindings::wasi::config::store;
use serde::de::DeserializeOwned;

/// The value of `key`, or `None` when it is granted but not set.
///
/// # Errors
/// [`PluginError::Denied`] when the key was not granted.
pub fn get(key: &str) -> Result<Option<String>, PluginError> {
    store::get(key).map_err(|err| match err {
        store::Error::Upstream(message) => PluginError::Denied(message),
        store::Error::Io(message) => PluginError::Internal(message),
    })
}

/// The value of `key`, which the plugin cannot work without.
///
/// # Errors
/// [`PluginError::InvalidConfig`] when it is not set, [`PluginError::Denied`] when not granted.
pub fn require(key: &str) -> Result<String, PluginError> {
    get(key)?.ok_or_else(|| PluginError::InvalidConfig(format!("config key `{key}` is not set")))
}

/// The value of `key` parsed as JSON into `T`.
///
/// # Errors
/// [`PluginError::InvalidConfig`] when it is missing or not valid JSON for `T`.
pub fn json<T: DeserializeOwned>(key: &str) -> Result<T, PluginError> {
    let text = require(key)?;
    serde_json::from_str(&text)
        .map_err(|err| PluginError::InvalidConfig(format!("config key `{key}` is not valid: {err}")))
}
