//! `/v1/flows`, `/v1/executions`, `/v1/hooks`: the bodies a run, a replay and a webhook secret
//! take, and the lists and answers around the flow documents (see [`crate::documents`]).

use crate::documents::{DeadLetter, Execution, FlowDefinition};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /v1/flows`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlowList {
    /// The flows the caller may see.
    pub flows: Vec<FlowDefinition>,
}

/// Body of `POST /v1/flows/{name}/run` (optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Input records (JSON values).
    #[serde(default)]
    pub records: Vec<Value>,
}

/// `GET /v1/flows/{name}/executions`: a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecutionPage {
    /// The executions, in the order asked for.
    pub executions: Vec<Execution>,
    /// Pass as `cursor` for the next page; none on the last page.
    pub next_cursor: Option<u64>,
}

/// `GET /v1/flows/{name}/dlq`: a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeadLetterPage {
    /// The dead letters, in the order asked for.
    pub dead_letters: Vec<DeadLetter>,
    /// Pass as `cursor` for the next page; none on the last page.
    pub next_cursor: Option<u64>,
}

/// Body of `POST /v1/flows/{name}/dlq/replay` (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The dead letters to replay; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<u64>>,
}

/// `POST /v1/flows/{name}/dlq/replay`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Replayed {
    /// The executions the replay ran.
    pub executions: Vec<Execution>,
}

/// Body of `PUT /v1/flows/{name}/webhook-secret`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSecret {
    /// The secret, as the sender hands it out (`whsec_…`, free text, `user:password`).
    pub secret: String,
    /// Keep accepting the secret this one replaces for this many seconds (a rotation).
    #[serde(default)]
    pub keep_previous_secs: u64,
}

/// What `POST /v1/hooks/{name}` answers a delivery it took: 202 when queued, 200 when it repeats
/// one already queued (`duplicate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookQueued {
    /// The queued run's id.
    pub queued: u64,
    /// Records it carries.
    pub records: u64,
    /// A repeat of a delivery already queued.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// Where to follow it (`GET`).
    pub delivery: String,
}

/// `POST /v1/hooks/{name}`'s 200 for a delivery the flow does not take (its events are not the
/// flow's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookIgnored {
    /// Always true.
    pub ignored: bool,
    /// The event types the delivery carried.
    pub events: Vec<String>,
}

/// Every answer of `POST /v1/hooks/{name}` that is not an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum WebhookAnswer {
    /// Queued (or a repeat).
    Queued(WebhookQueued),
    /// Not for this flow.
    Ignored(WebhookIgnored),
    /// A sender's handshake (Slack's `url_verification`, CloudEvents' validation), answered as
    /// the sender expects.
    Handshake(Value),
}

/// `GET /v1/flows/{name}/deliveries/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for a worker.
    Queued {
        /// The delivery.
        queued: u64,
    },
    /// Run, by this execution (possibly with other deliveries of the flow).
    Ran {
        /// The delivery.
        queued: u64,
        /// The execution.
        execution: Execution,
    },
}
