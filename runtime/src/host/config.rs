//! `wasi:config/store` backed by the installation's effective grant.
//!
//! The guest sees only values both requested by its manifest and granted by the operator. Asking
//! for any other key is a denial, answered with `error::upstream` (the only upstream error this host
//! produces, which the SDK turns into `plugin-error::denied`); a requested key the operator left unset
//! reads as `none`.

use crate::bindings::config_store::{self, Error};

impl config_store::Host for crate::state::InvocationState {
    fn get(&mut self, key: String) -> Result<Option<String>, Error> {
        if let Some(value) = self.grant.config.get(&key) {
            return Ok(Some(value.clone()));
        }
        if self.grant.requested_keys.contains(&key) {
            return Ok(None);
        }
        let reason = format!(
            "config key `{}` is not among the manifest's `config_keys` or `secret_keys` (add it to plugin.toml and publish a new version)",
            crate::host::logs::guest_text(&key)
        );
        self.logs.host_denial(reason.clone());
        Err(Error::Upstream(format!("capability denied: {reason}")))
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, Error> {
        Ok(self.grant.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}
