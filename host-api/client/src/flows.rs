//! The flow calls: apply (create or replace), list, read, delete, run, executions, deliveries,
//! webhook secrets and dead letters.

use crate::{ApiClient, ClientError};
use plugboard_api_types::documents::{Execution, FlowDefinition};
use plugboard_api_types::flows::{DeadLetterPage, DeliveryState, ExecutionPage, FlowList, Replayed, WebhookSecret};
use serde_json::{Value, json};

impl ApiClient {
    /// Replaces the flow `definition` names, or creates it; answers `{"action", "flow"}`.
    pub async fn flow_apply(&self, definition: &Value) -> Result<Value, ClientError> {
        let name = definition["name"].as_str().unwrap_or_default();
        let put = || self.http.put(self.url(&format!("/v1/flows/{name}"))).json(definition);
        match self.send::<Value>(put()).await {
            Ok(flow) => Ok(json!({"action": "updated", "flow": flow})),
            Err(ClientError::Api { status: 404, .. }) => {
                match self.send::<Value>(self.http.post(self.url("/v1/flows")).json(definition)).await {
                    Ok(flow) => Ok(json!({"action": "created", "flow": flow})),
                    // Someone created it in between: replace it after all.
                    Err(ClientError::Api { status: 409, .. }) => {
                        Ok(json!({"action": "updated", "flow": self.send::<Value>(put()).await?}))
                    }
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// Lists flows.
    pub async fn flow_list(&self) -> Result<FlowList, ClientError> {
        self.send(self.http.get(self.url("/v1/flows"))).await
    }

    /// A flow's definition.
    pub async fn flow_get(&self, name: &str) -> Result<FlowDefinition, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/flows/{name}")))).await
    }

    /// Deletes a flow.
    pub async fn flow_delete(&self, name: &str) -> Result<(), ClientError> {
        self.send(self.http.delete(self.url(&format!("/v1/flows/{name}")))).await
    }

    /// Runs a flow on `records`; answers the execution.
    pub async fn flow_run(&self, name: &str, records: Value) -> Result<Execution, ClientError> {
        self.send(self.http.post(self.url(&format!("/v1/flows/{name}/run"))).json(&json!({"records": records}))).await
    }

    /// A flow's executions.
    pub async fn flow_executions(&self, name: &str) -> Result<ExecutionPage, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/flows/{name}/executions")))).await
    }

    /// One execution.
    pub async fn execution(&self, id: u64) -> Result<Execution, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/executions/{id}")))).await
    }

    /// Where a webhook delivery is: queued, or the execution that ran it.
    pub async fn delivery(&self, flow: &str, id: u64) -> Result<DeliveryState, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/flows/{flow}/deliveries/{id}")))).await
    }

    /// Sets a flow's webhook secret; the one it replaces stays accepted `keep_previous_secs`.
    pub async fn flow_webhook_secret(
        &self,
        name: &str,
        secret: &str,
        keep_previous_secs: u64,
    ) -> Result<(), ClientError> {
        let body = WebhookSecret { secret: secret.to_string(), keep_previous_secs };
        self.send(self.http.put(self.url(&format!("/v1/flows/{name}/webhook-secret"))).json(&body)).await
    }

    /// A flow's dead letters.
    pub async fn dlq_list(&self, flow: &str) -> Result<DeadLetterPage, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/flows/{flow}/dlq")))).await
    }

    /// Replays the dead letters `ids` (all when empty); answers the replay executions.
    pub async fn dlq_replay(&self, flow: &str, ids: &[u64]) -> Result<Replayed, ClientError> {
        let body = if ids.is_empty() { json!({}) } else { json!({"ids": ids}) };
        self.send(self.http.post(self.url(&format!("/v1/flows/{flow}/dlq/replay"))).json(&body)).await
    }

    /// Deletes a dead letter.
    pub async fn dlq_delete(&self, flow: &str, id: u64) -> Result<(), ClientError> {
        self.send(self.http.delete(self.url(&format!("/v1/flows/{flow}/dlq/{id}")))).await
    }
}
