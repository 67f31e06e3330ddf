//! The connection calls: list, read, create or replace, delete, test.

use crate::{ApiClient, ClientError};
use plugboard_api_types::connections::{ConnectionList, ConnectionProbe};
use plugboard_api_types::documents::Connection;
use serde_json::Value;

impl ApiClient {
    /// Every connection.
    pub async fn connections_list(&self) -> Result<ConnectionList, ClientError> {
        self.send(self.http.get(self.url("/v1/connections"))).await
    }

    /// One connection.
    pub async fn connection(&self, name: &str) -> Result<Connection, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/connections/{name}")))).await
    }

    /// Creates or replaces a connection.
    pub async fn connection_put(&self, name: &str, definition: &Value) -> Result<Connection, ClientError> {
        self.send(self.http.put(self.url(&format!("/v1/connections/{name}"))).json(definition)).await
    }

    /// Deletes a connection.
    pub async fn connection_delete(&self, name: &str) -> Result<(), ClientError> {
        self.send(self.http.delete(self.url(&format!("/v1/connections/{name}")))).await
    }

    /// Tries a connection.
    pub async fn connection_test(&self, name: &str) -> Result<ConnectionProbe, ClientError> {
        self.send(self.http.post(self.url(&format!("/v1/connections/{name}/test")))).await
    }
}
