//! The edge between what the server holds and what the API answers: each function maps a stored
//! record or a runtime type to its `plugboard-api-types` shape (or a request type back). Only this
//! module knows both sides, so a storage change that would change the API fails to compile here
//! instead of changing an answer.

use crate::domain::connections::credentials::Probe;
use crate::store::{AuditAction, AuditEntry, Role, TokenScope, VersionRecord};
use plugboard_api_types::connections::ConnectionProbe;
use plugboard_api_types::{access as api_access, plugins as api};
use plugboard_runtime::{BudgetLimits, Kind, LogEntry};
use plugboard_runtime::{BudgetSources, LimitSource, LogLevel};
use serde::Serialize;

/// A document (see `plugboard_api_types::documents`) as the JSON the API carries.
pub fn document<T: Serialize, D: From<serde_json::Value>>(value: &T) -> D {
    // Serializing these derived types cannot fail (no maps with non-string keys, no custom
    // serializers that refuse); were it to, null is answered rather than a half document.
    D::from(serde_json::to_value(value).unwrap_or_default())
}

/// A plugin's world.
pub fn kind(kind: Kind) -> api::PluginKind {
    match kind {
        Kind::Transformer => api::PluginKind::Transformer,
        Kind::Source => api::PluginKind::Source,
        Kind::Sink => api::PluginKind::Sink,
    }
}

/// One installed version.
pub fn version(record: &VersionRecord) -> api::PluginVersion {
    api::PluginVersion {
        name: record.name.clone(),
        version: record.version.to_string(),
        digest: record.digest.clone(),
        key_id: record.key_id.clone(),
        kind: kind(record.manifest.kind),
        uploaded_at: record.uploaded_at,
    }
}

/// A budget, API to runtime.
pub fn budget_in(budget: api::BudgetLimits) -> BudgetLimits {
    BudgetLimits {
        fuel: budget.fuel,
        timeout_ms: budget.timeout_ms,
        memory_bytes: budget.memory_bytes,
        max_input_bytes: budget.max_input_bytes,
        max_output_bytes: budget.max_output_bytes,
        max_records: budget.max_records,
    }
}

/// A budget, runtime to API.
pub fn budget_out(budget: &BudgetLimits) -> api::BudgetLimits {
    api::BudgetLimits {
        fuel: budget.fuel,
        timeout_ms: budget.timeout_ms,
        memory_bytes: budget.memory_bytes,
        max_input_bytes: budget.max_input_bytes,
        max_output_bytes: budget.max_output_bytes,
        max_records: budget.max_records,
    }
}

/// A stored grant's capabilities and budget.
pub fn grants(grant: &plugboard_runtime::Grant) -> api::Grants {
    api::Grants {
        outbound_hosts: grant.outbound_hosts.clone(),
        key_value: grant.key_value.clone(),
        connections: grant.connections.clone(),
        allow_private: grant.allow_private,
        budget: budget_out(&grant.budget),
    }
}

fn source(source: LimitSource) -> api::LimitSource {
    match source {
        LimitSource::Host => api::LimitSource::Host,
        LimitSource::Manifest => api::LimitSource::Manifest,
        LimitSource::Grant => api::LimitSource::Grant,
    }
}

/// Who set each effective limit.
pub fn sources(sources: &BudgetSources) -> api::BudgetSources {
    api::BudgetSources {
        fuel: source(sources.fuel),
        timeout: source(sources.timeout),
        memory_bytes: source(sources.memory_bytes),
        max_input_bytes: source(sources.max_input_bytes),
        max_output_bytes: source(sources.max_output_bytes),
        max_records: source(sources.max_records),
    }
}

/// A plugin's log lines.
pub fn logs(entries: &[LogEntry]) -> Vec<api::LogLine> {
    let level = |level: LogLevel| match level {
        LogLevel::Trace => api::LogLevel::Trace,
        LogLevel::Debug => api::LogLevel::Debug,
        LogLevel::Info => api::LogLevel::Info,
        LogLevel::Warn => api::LogLevel::Warn,
        LogLevel::Error => api::LogLevel::Error,
        LogLevel::Critical => api::LogLevel::Critical,
    };
    entries
        .iter()
        .map(|entry| api::LogLine {
            level: level(entry.level),
            context: entry.context.clone(),
            message: entry.message.clone(),
        })
        .collect()
}

/// A role, store to API.
pub fn role_out(role: Role) -> api_access::Role {
    match role {
        Role::Admin => api_access::Role::Admin,
        Role::Publisher => api_access::Role::Publisher,
        Role::Invoker => api_access::Role::Invoker,
    }
}

/// A role, API to store.
pub fn role_in(role: api_access::Role) -> Role {
    match role {
        api_access::Role::Admin => Role::Admin,
        api_access::Role::Publisher => Role::Publisher,
        api_access::Role::Invoker => Role::Invoker,
    }
}

/// A scope, store to API.
pub fn scope_out(scope: Option<&TokenScope>) -> Option<api_access::TokenScope> {
    scope.map(|scope| api_access::TokenScope { plugins: scope.plugins.clone(), flows: scope.flows.clone() })
}

/// A scope, API to store.
pub fn scope_in(scope: Option<api_access::TokenScope>) -> Option<TokenScope> {
    scope.map(|scope| TokenScope { plugins: scope.plugins, flows: scope.flows })
}

/// A token's name, role and scope.
pub fn token(name: &str, role: Role, scope: Option<&TokenScope>) -> api_access::TokenInfo {
    api_access::TokenInfo { name: name.to_string(), role: role_out(role), scope: scope_out(scope) }
}

/// A trusted (or revoked) publisher key.
pub fn key(key: &plugboard_runtime::signing::TrustedKey) -> api_access::Key {
    api_access::Key {
        key_id: key.key_id.clone(),
        name: key.name.clone(),
        public_key: hex::encode(key.key.to_bytes()),
        added_at: key.added_at,
        revoked_at: key.revoked_at,
    }
}

/// An audit entry.
pub fn audit(entry: &AuditEntry) -> api_access::AuditEntry {
    use api_access::AuditAction as Api;
    let action = match entry.action {
        AuditAction::Upload => Api::Upload,
        AuditAction::Activate => Api::Activate,
        AuditAction::Deactivate => Api::Deactivate,
        AuditAction::Delete => Api::Delete,
        AuditAction::Grants => Api::Grants,
        AuditAction::Config => Api::Config,
        AuditAction::KeyAdd => Api::KeyAdd,
        AuditAction::KeyRevoke => Api::KeyRevoke,
        AuditAction::RollbackOverride => Api::RollbackOverride,
        AuditAction::TokenCreate => Api::TokenCreate,
        AuditAction::AdminTokenReplace => Api::AdminTokenReplace,
        AuditAction::FlowCreate => Api::FlowCreate,
        AuditAction::FlowUpdate => Api::FlowUpdate,
        AuditAction::FlowDelete => Api::FlowDelete,
        AuditAction::WebhookSecret => Api::WebhookSecret,
        AuditAction::DlqReplay => Api::DlqReplay,
        AuditAction::DlqDelete => Api::DlqDelete,
        AuditAction::TokenRevoke => Api::TokenRevoke,
        AuditAction::ConnectionPut => Api::ConnectionPut,
        AuditAction::ConnectionDelete => Api::ConnectionDelete,
    };
    api_access::AuditEntry {
        id: entry.id,
        at: entry.at,
        actor: entry.actor.clone(),
        action,
        target: entry.target.clone(),
        key_id: entry.key_id.clone(),
        detail: entry.detail.clone(),
    }
}

/// What trying a connection found.
pub fn probe(probe: &Probe) -> ConnectionProbe {
    ConnectionProbe {
        ok: probe.ok,
        status: probe.status,
        token_fetched: probe.token_fetched,
        error: probe.error.clone(),
        elapsed_ms: probe.elapsed.map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
    }
}
