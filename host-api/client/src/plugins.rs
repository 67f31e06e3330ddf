//! The plugin calls: push, list, inspect, health, activate, deactivate, delete, grants, config,
//! invoke.

use crate::{ApiClient, ClientError};
use plugboard_api_types::plugins::{
    ActiveVersion, ConfigRequest, ConfigView, Grants, Health, Installed, InvokeRequest, Invoked, PluginDetail,
    PluginList,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

impl ApiClient {
    /// Uploads a signed plugin file.
    pub async fn push(&self, file: &Path, activate: bool) -> Result<Installed, ClientError> {
        let bytes =
            std::fs::read(file).map_err(|source| ClientError::File { path: file.display().to_string(), source })?;
        self.push_bytes(bytes, activate).await
    }

    /// Uploads a signed plugin.
    pub async fn push_bytes(&self, bytes: Vec<u8>, activate: bool) -> Result<Installed, ClientError> {
        let query = if activate { "?activate=true" } else { "" };
        self.send(
            self.http
                .post(self.url(&format!("/v1/plugins{query}")))
                .header("content-type", "application/wasm")
                .body(bytes),
        )
        .await
    }

    /// Lists plugins.
    pub async fn list(&self) -> Result<PluginList, ClientError> {
        self.send(self.http.get(self.url("/v1/plugins"))).await
    }

    /// One plugin: versions, manifest, grants (secret keys only), health, usage.
    pub async fn plugin(&self, name: &str) -> Result<PluginDetail, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/plugins/{name}")))).await
    }

    /// Whether a plugin's active version is loaded.
    pub async fn health(&self, name: &str) -> Result<Health, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/plugins/{name}/health")))).await
    }

    /// Activates a version; `allow_rollback` activates one below the highest ever installed.
    pub async fn activate(
        &self,
        name: &str,
        version: &str,
        allow_rollback: bool,
    ) -> Result<ActiveVersion, ClientError> {
        let query = if allow_rollback { "?allow_rollback=true" } else { "" };
        self.send(self.http.post(self.url(&format!("/v1/plugins/{name}/versions/{version}/activate{query}")))).await
    }

    /// Deactivates a plugin.
    pub async fn deactivate(&self, name: &str) -> Result<ActiveVersion, ClientError> {
        self.send(self.http.post(self.url(&format!("/v1/plugins/{name}/deactivate")))).await
    }

    /// Deletes an inactive plugin, or one inactive version of it.
    pub async fn delete(&self, name: &str, version: Option<&str>) -> Result<(), ClientError> {
        let path = match version {
            Some(version) => format!("/v1/plugins/{name}/versions/{version}"),
            None => format!("/v1/plugins/{name}"),
        };
        self.send(self.http.delete(self.url(&path))).await
    }

    /// Replaces a plugin's grants.
    pub async fn set_grants(&self, name: &str, grants: &Grants) -> Result<Grants, ClientError> {
        self.send(self.http.put(self.url(&format!("/v1/plugins/{name}/grants"))).json(grants)).await
    }

    /// Replaces a plugin's config values and secrets.
    pub async fn set_config(
        &self,
        name: &str,
        values: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, String>,
    ) -> Result<ConfigView, ClientError> {
        let values = values.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let body = ConfigRequest { values, secrets: secrets.clone() };
        self.send(self.http.put(self.url(&format!("/v1/plugins/{name}/config"))).json(&body)).await
    }

    /// Invokes a plugin: `records` for transformers and sinks, `cursor` and `max_records` for
    /// sources.
    pub async fn invoke(
        &self,
        name: &str,
        records: Vec<Value>,
        cursor: Option<&str>,
        max_records: Option<u32>,
    ) -> Result<Invoked, ClientError> {
        let body = InvokeRequest { records, cursor: cursor.map(str::to_string), max_records };
        self.send(self.http.post(self.url(&format!("/v1/plugins/{name}/invoke"))).json(&body)).await
    }
}
