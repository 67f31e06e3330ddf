//! The access calls: publisher keys, API tokens, the audit log, who the token is, and the
//! server's metrics history.

use crate::{ApiClient, ClientError};
use plugboard_api_types::access::{
    AddKey, AuditPage, CreateToken, CreatedToken, Key, KeyList, Role, TokenInfo, TokenList, TokenScope,
};
use plugboard_api_types::connections::MetricsHistory;
use std::path::Path;

impl ApiClient {
    /// Trusts a public key file.
    pub async fn keys_add(&self, public_key: &Path, name: &str) -> Result<Key, ClientError> {
        let bytes = std::fs::read(public_key)
            .map_err(|source| ClientError::File { path: public_key.display().to_string(), source })?;
        self.keys_add_bytes(&bytes, name).await
    }

    /// Trusts a public key given as its file's bytes.
    pub async fn keys_add_bytes(&self, public_key: &[u8], name: &str) -> Result<Key, ClientError> {
        let body = AddKey { name: name.to_string(), public_key: hex::encode(public_key) };
        self.send(self.http.post(self.url("/v1/keys")).json(&body)).await
    }

    /// Lists trusted and revoked keys.
    pub async fn keys_list(&self) -> Result<KeyList, ClientError> {
        self.send(self.http.get(self.url("/v1/keys"))).await
    }

    /// Revokes a key.
    pub async fn keys_revoke(&self, id: &str) -> Result<Key, ClientError> {
        self.send(self.http.post(self.url(&format!("/v1/keys/{id}/revoke")))).await
    }

    /// Creates an API token with `role`, limited to `plugins` and `flows` when either is given;
    /// the answer holds its value, shown only this once.
    pub async fn tokens_create(
        &self,
        name: &str,
        role: Role,
        plugins: &[String],
        flows: &[String],
    ) -> Result<CreatedToken, ClientError> {
        let scope = (!plugins.is_empty() || !flows.is_empty())
            .then(|| TokenScope { plugins: plugins.to_vec(), flows: flows.to_vec() });
        let body = CreateToken { name: name.to_string(), role, scope };
        self.send(self.http.post(self.url("/v1/tokens")).json(&body)).await
    }

    /// Lists API tokens (names and roles).
    pub async fn tokens_list(&self) -> Result<TokenList, ClientError> {
        self.send(self.http.get(self.url("/v1/tokens"))).await
    }

    /// Revokes an API token.
    pub async fn tokens_revoke(&self, name: &str) -> Result<(), ClientError> {
        self.send(self.http.delete(self.url(&format!("/v1/tokens/{name}")))).await
    }

    /// A page of the audit log, oldest first.
    pub async fn audit_page(&self, limit: Option<usize>, cursor: Option<u64>) -> Result<AuditPage, ClientError> {
        let mut query = Vec::new();
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_string()));
        }
        self.send(self.http.get(self.url("/v1/audit")).query(&query)).await
    }

    /// The first page of the audit log.
    pub async fn audit(&self) -> Result<AuditPage, ClientError> {
        self.audit_page(None, None).await
    }

    /// The caller's token name and role.
    pub async fn whoami(&self) -> Result<TokenInfo, ClientError> {
        self.send(self.http.get(self.url("/v1/whoami"))).await
    }

    /// The server's metrics history (the last hour of samples).
    pub async fn metrics_history(&self) -> Result<MetricsHistory, ClientError> {
        self.send(self.http.get(self.url("/v1/metrics/history"))).await
    }
}
