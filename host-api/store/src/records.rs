//! What the control plane stores: plugin versions, tokens, audit entries, usage, executions,
//! dead letters and queued work, with the enums that name their states.
//!
//! These types are the storage contract shared by every backend. The HTTP API answers its own
//! types (`plugboard-api-types`), mapped from these at its edge; executions and dead letters it
//! carries as documents in the shape serde writes here, so their enum values
//! (`completed-with-dead-letters`) are strings API clients match on: rename none.

use plugboard_runtime::Manifest;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One installed version of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Plugin name.
    pub name: String,
    /// Version.
    pub version: semver::Version,
    /// Hex SHA-256 of the signed file (the blob key).
    pub digest: String,
    /// Signer key id.
    pub key_id: Option<String>,
    /// The signed manifest.
    pub manifest: Manifest,
    /// Upload time, seconds since the Unix epoch.
    pub uploaded_at: u64,
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A plugin version was uploaded.
    Upload,
    /// A version became active.
    Activate,
    /// A plugin was deactivated.
    Deactivate,
    /// A version (or a whole plugin) was deleted.
    Delete,
    /// Capabilities or budget were granted.
    Grants,
    /// Config values or secrets were set.
    Config,
    /// A publisher key was trusted.
    KeyAdd,
    /// A publisher key was revoked.
    KeyRevoke,
    /// A version below the highest installed was admitted.
    RollbackOverride,
    /// An API token was created.
    TokenCreate,
    /// The admin token was replaced at start-up (from the config or environment).
    AdminTokenReplace,
    /// A flow was defined.
    FlowCreate,
    /// A flow definition was replaced.
    FlowUpdate,
    /// A flow was deleted.
    FlowDelete,
    /// A flow's webhook secret was set.
    WebhookSecret,
    /// Dead letters were replayed.
    DlqReplay,
    /// A dead letter was deleted.
    DlqDelete,
    /// An API token was revoked.
    TokenRevoke,
    /// A connection was created or replaced.
    ConnectionPut,
    /// A connection was deleted.
    ConnectionDelete,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number (assigned when stored).
    pub id: u64,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// Who: the token's name.
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// Which plugin, key, token or flow.
    pub target: String,
    /// The signer key id of the plugin concerned, when there is one.
    pub key_id: Option<String>,
    /// Free-form detail (never secret values).
    pub detail: String,
}

impl AuditEntry {
    /// The one constructor: `actor` did `action` to `target`, now.
    pub fn new(actor: &str, action: AuditAction, target: impl Into<String>) -> AuditEntry {
        AuditEntry {
            id: 0,
            at: now(),
            actor: actor.into(),
            action,
            target: target.into(),
            key_id: None,
            detail: String::new(),
        }
    }

    /// With the signer key id concerned.
    #[must_use]
    pub fn key(mut self, key_id: Option<String>) -> AuditEntry {
        self.key_id = key_id;
        self
    }

    /// With a detail (never a secret value).
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> AuditEntry {
        self.detail = detail.into();
        self
    }
}

/// Invocation counters per plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Invocations.
    pub invocations: u64,
    /// Failed invocations.
    pub errors: u64,
    /// Fuel consumed in total.
    pub fuel: u64,
    /// Failed invocations by error code (totals stored before it existed count none).
    #[serde(default)]
    pub errors_by_code: BTreeMap<String, u64>,
    /// Attempts a flow step retried after a retryable failure (each also counted in
    /// `invocations` and `errors_by_code`; totals stored before it existed count none).
    #[serde(default)]
    pub retries: u64,
}

impl UsageTotals {
    /// Adds `delta` to these totals.
    pub fn add(&mut self, delta: &UsageTotals) {
        self.invocations += delta.invocations;
        self.retries += delta.retries;
        self.errors += delta.errors;
        self.fuel = self.fuel.saturating_add(delta.fuel);
        for (code, count) in &delta.errors_by_code {
            *self.errors_by_code.entry(code.clone()).or_default() += count;
        }
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Upload plugins.
    Publisher,
    /// Invoke and read.
    Invoker,
}

/// Stored API token: only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// A name for the audit log.
    pub name: String,
    /// The role.
    pub role: Role,
    /// `hmac-sha256:HEX`, keyed by the server's token hash key (see `domain::tokens`); plain
    /// hex SHA-256 in records written before keyed hashes.
    pub hash: String,
    /// What the token is limited to; none: everything its role allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<TokenScope>,
}

/// The plugins and flows a scoped token may act on (see `api::auth`): an invoker invokes and
/// reads only these plugins and runs and reads only these flows, their executions, deliveries and
/// dead letters; a publisher uploads only versions of these plugins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenScope {
    /// Plugin names.
    #[serde(default)]
    pub plugins: Vec<String>,
    /// Flow names.
    #[serde(default)]
    pub flows: Vec<String>,
}

impl std::fmt::Display for TokenScope {
    /// `plugins a, b; flows c` (for the audit log and the CLI).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |names: &[String]| if names.is_empty() { "none".to_string() } else { names.join(", ") };
        write!(f, "plugins {}; flows {}", list(&self.plugins), list(&self.flows))
    }
}

/// Where an execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionStatus {
    /// Started, not yet stored as finished.
    Running,
    /// Every record delivered (or filtered) without dead letters.
    Succeeded,
    /// Finished; some records went to the dead-letter queue.
    CompletedWithDeadLetters,
    /// Failed as a whole.
    Failed,
    /// The server stopped (a crash) while it ran; its queued work runs again.
    Interrupted,
}

/// What started an execution or queued a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerKind {
    /// `POST /v1/flows/{name}/run`.
    Manual,
    /// A dead-letter replay.
    Replay,
    /// A webhook delivery.
    Webhook,
    /// A cron schedule.
    Cron,
}

/// One execution of a flow, as stored and answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Execution")]
pub struct ExecutionRecord {
    /// Sequence number.
    pub id: u64,
    /// The flow.
    pub flow: String,
    /// Where it stands.
    pub status: ExecutionStatus,
    /// What started it.
    pub trigger: TriggerKind,
    /// The queued runs (webhook deliveries, cron firings) it ran, oldest first: one execution may
    /// carry several consecutive deliveries of its flow (micro-batching).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queued: Vec<u64>,
    /// Start, seconds since the Unix epoch.
    pub started_at: u64,
    /// End.
    pub finished_at: Option<u64>,
    /// Plugin versions pinned at start.
    pub plugin_versions: BTreeMap<String, String>,
    /// Records in.
    pub records_in: u64,
    /// Dead letters it produced, all stored in the flow's dead-letter queue; the execution itself
    /// keeps only the first [`INLINE_DEAD_LETTERS`] of them in `dead_letters`, so one failing batch
    /// of many records does not become one huge execution record.
    #[serde(default)]
    pub dead_letter_count: u64,
    /// Set when the key-value writes of a finished execution could not be committed (another
    /// execution took the plugin's quota meanwhile); the execution's records were not affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_error: Option<plugboard_runtime::flow::ErrorReport>,
    /// In a cluster, the node that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub outcome: plugboard_runtime::flow::RunOutcome,
}

/// Dead letters an execution record keeps inline (see [`ExecutionRecord::dead_letter_count`]).
pub const INLINE_DEAD_LETTERS: usize = 100;

/// A dead letter in the queue of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "DeadLetter")]
pub struct DeadLetterRecord {
    /// Sequence number (assigned when stored).
    pub id: u64,
    /// The flow.
    pub flow: String,
    /// The execution that produced it (0 when the work could not start at all).
    pub execution: u64,
    /// When, seconds since the Unix epoch.
    pub at: u64,
    /// The record, step, error and attempts.
    #[serde(flatten)]
    pub letter: plugboard_runtime::flow::DeadLetter,
}

impl DeadLetterRecord {
    /// The one constructor: `letter` of `flow`, produced by `execution`, now.
    pub fn new(flow: &str, execution: u64, letter: plugboard_runtime::flow::DeadLetter) -> DeadLetterRecord {
        DeadLetterRecord { id: 0, flow: flow.into(), execution, at: now(), letter }
    }
}

/// Work acknowledged to a trigger (a webhook caller, a cron firing) and not yet run to completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedRun {
    /// Sequence number.
    pub id: u64,
    /// The flow.
    pub flow: String,
    /// Input records.
    pub records: Vec<serde_json::Value>,
    /// Each record's headers (as many lists as records: a webhook's chosen request headers, a
    /// CloudEvent's attributes), or none when no record has any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Vec<(String, String)>>,
    /// What queued it.
    pub trigger: TriggerKind,
    /// When it was acknowledged, seconds since the Unix epoch.
    pub received_at: u64,
    /// In a cluster, the node that runs it: the one that accepted it, the one running its
    /// `ordered: true` flow's other queued runs, or the one that adopted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// In a cluster, its place in the change log (`sequence << 16 | index`), set by the applier:
    /// runs are taken in this order, which is the order nodes accepted them in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<u64>,
}

impl QueuedRun {
    /// The run's input as records, each with its headers.
    pub fn input(&self) -> impl Iterator<Item = plugboard_runtime::Record> + '_ {
        self.records.iter().enumerate().map(|(index, value)| {
            let mut record = plugboard_runtime::Record::json(value);
            if let Some(headers) = self.headers.get(index) {
                record.headers = headers
                    .iter()
                    .map(|(name, value)| plugboard_runtime::record::Header {
                        name: name.clone(),
                        value: value.clone().into_bytes(),
                    })
                    .collect();
            }
            record
        })
    }
}

/// One page of a list, in the order asked for, and where the next page starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<u64>,
}

/// Which page of a list to read: at most `limit` items after `cursor` (oldest first), or before
/// it (`newest_first`, as a dashboard shows executions and audit entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// The previous page's `next_cursor`; `None` for the first page.
    pub cursor: Option<u64>,
    /// Most items.
    pub limit: usize,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
}

impl PageRequest {
    /// Oldest first, after `cursor`.
    pub fn after(cursor: Option<u64>, limit: usize) -> PageRequest {
        PageRequest { cursor, limit, newest_first: false }
    }
}

/// Which audit entries to answer; every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AuditFilter {
    /// The token name, exactly.
    pub actor: Option<String>,
    /// The action.
    pub action: Option<AuditAction>,
    /// Part of the target's name.
    pub target: Option<String>,
    /// At or after, seconds since the Unix epoch.
    pub since: Option<u64>,
    /// At or before, seconds since the Unix epoch.
    pub until: Option<u64>,
}

impl AuditFilter {
    /// Whether `entry` passes.
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.actor.as_ref().is_none_or(|actor| *actor == entry.actor)
            && self.action.is_none_or(|action| action == entry.action)
            && self.target.as_ref().is_none_or(|target| entry.target.contains(target.as_str()))
            && self.since.is_none_or(|since| entry.at >= since)
            && self.until.is_none_or(|until| entry.at <= until)
    }
}

/// Who owns a plugin name (see [`super::Op::PutOwner`]): the key that first published it, or
/// unsigned uploads (`--allow-unsigned`). Stored as the key id, `""` for unsigned uploads — the
/// format owners had as strings, so records and change logs written before read the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum PluginOwner {
    /// The key with this id.
    Key(String),
    /// Unsigned uploads.
    Unsigned,
}

impl PluginOwner {
    /// The owner an upload signed by `key_id` (none: unsigned) presents.
    pub fn signed_by(key_id: Option<&str>) -> PluginOwner {
        match key_id {
            Some(id) if !id.is_empty() => PluginOwner::Key(id.to_string()),
            _ => PluginOwner::Unsigned,
        }
    }
}

impl From<String> for PluginOwner {
    fn from(stored: String) -> PluginOwner {
        if stored.is_empty() { PluginOwner::Unsigned } else { PluginOwner::Key(stored) }
    }
}

impl From<PluginOwner> for String {
    fn from(owner: PluginOwner) -> String {
        match owner {
            PluginOwner::Key(id) => id,
            PluginOwner::Unsigned => String::new(),
        }
    }
}

impl std::fmt::Display for PluginOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginOwner::Key(id) => write!(f, "key {id}"),
            PluginOwner::Unsigned => f.write_str("unsigned uploads"),
        }
    }
}

#[cfg(test)]
mod schema_tests;

#[cfg(test)]
mod tests {
    use super::PluginOwner;

    #[test]
    fn an_owner_is_stored_as_the_string_owners_were_stored_as() {
        for (owner, stored) in [(PluginOwner::Key("3f2a".into()), "\"3f2a\""), (PluginOwner::Unsigned, "\"\"")] {
            assert_eq!(serde_json::to_string(&owner).ok().as_deref(), Some(stored));
            assert_eq!(serde_json::from_str::<PluginOwner>(stored).ok(), Some(owner));
        }
        assert_eq!(PluginOwner::signed_by(Some("")), PluginOwner::Unsigned, "an empty key id is no key");
    }
}
