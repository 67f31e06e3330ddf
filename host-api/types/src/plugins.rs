//! `/v1/plugins`: what an upload, a listing, a plugin's page, its grants and config, an
//! invocation and its health answer, and the bodies the mutations take.

use crate::documents::Manifest;
use crate::error::ErrorBody;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// Records in, records out.
    Transformer,
    /// Reads pages of records from a cursor.
    Source,
    /// Writes records out.
    Sink,
}

/// One installed version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PluginVersion {
    /// The plugin's name.
    pub name: String,
    /// Its semantic version.
    pub version: String,
    /// Hex SHA-256 of the signed file.
    pub digest: String,
    /// The key that signed it (none for an unsigned development install).
    pub key_id: Option<String>,
    /// Its world.
    pub kind: PluginKind,
    /// Upload time, seconds since the Unix epoch.
    pub uploaded_at: u64,
}

/// Whether an installed version is the active one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstallStatus {
    /// Invocations run it.
    Active,
    /// Installed, not active.
    Inactive,
}

/// `POST /v1/plugins`: the version installed (201), or the one already there (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Installed {
    /// The version.
    #[serde(flatten)]
    pub version: PluginVersion,
    /// Whether it is active now.
    pub status: InstallStatus,
}

/// One plugin in `GET /v1/plugins`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PluginSummary {
    /// Its name.
    pub name: String,
    /// The world of its highest version.
    pub kind: Option<PluginKind>,
    /// The active version, if one is.
    pub active_version: Option<String>,
    /// Every installed version, lowest first.
    pub versions: Vec<String>,
}

/// `GET /v1/plugins`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PluginList {
    /// The plugins the caller may see, by name.
    pub plugins: Vec<PluginSummary>,
}

/// Limits an invocation runs under; each unset one is left to the other parties (the host's
/// caps, the manifest, the grant: the lowest wins).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetLimits {
    /// Fuel units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Deadline in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Memory in bytes, over all memories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Input bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_bytes: Option<u64>,
    /// Output bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
    /// Records per batch, in or out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_records: Option<u64>,
}

/// `PUT /v1/plugins/{name}/grants` (body and answer): what the operator grants a plugin, each
/// capability at most what its manifest requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Outbound host patterns (`api.example.com`, `*.example.com`, `host:8443`).
    #[serde(default)]
    pub outbound_hosts: Vec<String>,
    /// Key-value buckets.
    #[serde(default)]
    pub key_value: Vec<String>,
    /// The manifest's name for each connection, bound to the operator's connection.
    #[serde(default)]
    pub connections: BTreeMap<String, String>,
    /// Whether exactly granted host names may resolve to private or loopback addresses.
    #[serde(default)]
    pub allow_private: bool,
    /// The grant's budget.
    #[serde(default)]
    pub budget: BudgetLimits,
}

/// A plugin's grant as `GET /v1/plugins/{name}` shows it: secret keys, never their values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GrantsView {
    /// The capabilities and budget.
    #[serde(flatten)]
    pub grants: Grants,
    /// Config values.
    pub config: BTreeMap<String, String>,
    /// The names of the secrets set.
    pub secrets: Vec<String>,
}

/// Body of `PUT /v1/plugins/{name}/config`: replaces every value and secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigRequest {
    /// Config values; a value that is not a string is stored as its JSON text.
    #[serde(default)]
    pub values: BTreeMap<String, Value>,
    /// Secrets, write-only.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

/// `PUT /v1/plugins/{name}/config`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigView {
    /// The values as stored.
    pub values: BTreeMap<String, String>,
    /// The names of the secrets set.
    pub secrets: Vec<String>,
}

/// The limits the active version runs with, each a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EffectiveBudget {
    /// Fuel units.
    pub fuel: u64,
    /// Deadline in milliseconds.
    pub timeout_ms: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Input bytes.
    pub max_input_bytes: u64,
    /// Output bytes.
    pub max_output_bytes: u64,
    /// Records per batch.
    pub max_records: u64,
}

/// Which party set a limit: where to go to raise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LimitSource {
    /// The host's cap (the server's config).
    Host,
    /// The signed manifest (a new version raises it).
    Manifest,
    /// The operator's grant (`plugboard grant`).
    Grant,
}

/// Which party set each limit of [`EffectiveBudget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BudgetSources {
    /// Of `fuel`.
    pub fuel: LimitSource,
    /// Of `timeout_ms`.
    pub timeout: LimitSource,
    /// Of `memory_bytes`.
    pub memory_bytes: LimitSource,
    /// Of `max_input_bytes`.
    pub max_input_bytes: LimitSource,
    /// Of `max_output_bytes`.
    pub max_output_bytes: LimitSource,
    /// Of `max_records`.
    pub max_records: LimitSource,
}

/// What the active version runs with: manifest ∩ grant ∩ the host's caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Effective {
    /// Hosts both requested and granted.
    pub outbound_hosts: Vec<String>,
    /// Buckets both requested and granted.
    pub key_value: Vec<String>,
    /// The limits.
    pub budget: EffectiveBudget,
    /// Who set each limit.
    pub budget_set_by: BudgetSources,
}

/// Where a plugin's active artifact came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CompileSource {
    /// The artifact cache.
    Cached,
    /// Compiled at load.
    Compiled,
}

/// `GET /v1/plugins/{name}/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Health {
    /// The active version is loaded.
    Ready {
        /// Which.
        version: String,
        /// From the cache or compiled.
        compiled: CompileSource,
    },
    /// The active version could not be loaded.
    Failed {
        /// Why.
        error: String,
    },
    /// No version is active.
    Inactive,
}

/// Median and 99th percentile, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// A plugin's durable usage totals (API invocations and flow steps).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PluginUsage {
    /// Invocations.
    pub invocations: u64,
    /// Failed invocations.
    pub errors: u64,
    /// Fuel consumed.
    pub fuel: u64,
    /// Failed invocations by error code.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Flow step attempts retried.
    pub retries: u64,
    /// Latency over its last invocations since the server started (none before the first).
    pub latency_ms: Option<Latency>,
}

/// `GET /v1/plugins/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PluginDetail {
    /// Its name.
    pub name: String,
    /// The active version, if one is.
    pub active_version: Option<String>,
    /// Every installed version, lowest first.
    pub versions: Vec<PluginVersion>,
    /// The active (else the highest) version's manifest.
    pub manifest: Option<Manifest>,
    /// The operator's grant.
    pub grants: GrantsView,
    /// What the active version runs with; none when none is loaded.
    pub effective: Option<Effective>,
    /// Whether the active version is loaded.
    pub health: Health,
    /// Usage totals and latency.
    pub usage: PluginUsage,
}

/// `POST /v1/plugins/{name}/versions/{version}/activate` and `…/deactivate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ActiveVersion {
    /// The plugin.
    pub name: String,
    /// Its active version now (none after a deactivation).
    pub active_version: Option<String>,
}

/// Body of `POST /v1/plugins/{name}/invoke`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// Records as JSON values (transformers and sinks).
    #[serde(default)]
    pub records: Vec<Value>,
    /// Where to start reading (sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Most records to read (sources); 100 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_records: Option<u32>,
}

/// What one invocation cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InvocationUsage {
    /// Fuel consumed.
    pub fuel: u64,
    /// Wall time, milliseconds.
    pub wall_time_ms: f64,
    /// The largest memory the plugin held.
    pub peak_memory_bytes: u64,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
    /// Critical.
    Critical,
}

/// One line a plugin logged (secrets it was given are redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// `wasi:logging` context, or `stdout`, `stderr`, `host`.
    pub context: String,
    /// The text.
    pub message: String,
}

/// `POST /v1/plugins/{name}/invoke`'s answer: what the plugin produced, by its world — a
/// transformer's `records`, a source's `records` and `next_cursor`, a sink's `report` — with what
/// it cost and logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Invoked {
    /// Records out (a transformer) or read (a source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<Value>>,
    /// A source's cursor of its next page (null: the end); absent for the other worlds.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub next_cursor: Option<Option<String>>,
    /// What a sink reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
    /// What it cost.
    pub usage: InvocationUsage,
    /// What the plugin logged.
    pub logs: Vec<LogLine>,
}

/// A field that is there, even as `null`: `Some(None)`, where serde alone reads `null` as absent.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// A failed invocation's answer: the error body with what the invocation cost and logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InvokeFailed {
    /// The error.
    #[serde(flatten)]
    pub error: ErrorBody,
    /// What it cost.
    pub usage: InvocationUsage,
    /// What the plugin logged.
    pub logs: Vec<LogLine>,
    /// The plugin's own typed error (`guest-error`), as it returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sources_last_page_keeps_its_null_cursor_and_a_transformers_answer_has_none() {
        let last = serde_json::json!({"records": [], "next_cursor": null, "usage": {"fuel": 1, "wall_time_ms": 0.5, "peak_memory_bytes": 2}, "logs": []});
        let parsed: Invoked = serde_json::from_value(last.clone()).expect("parses");
        assert_eq!(parsed.next_cursor, Some(None));
        assert_eq!(serde_json::to_value(&parsed).ok(), Some(last));
        let transformed = serde_json::json!({"records": [1], "usage": {"fuel": 1, "wall_time_ms": 0.5, "peak_memory_bytes": 2}, "logs": []});
        let parsed: Invoked = serde_json::from_value(transformed.clone()).expect("parses");
        assert_eq!(parsed.next_cursor, None);
        assert_eq!(serde_json::to_value(&parsed).ok(), Some(transformed));
    }
}
