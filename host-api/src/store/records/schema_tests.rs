//! The JSON Schemas of what the control plane stores and answers (`Execution`, `DeadLetter`,
//! `ConnectionDefinition`, `Connection`) describe what serde writes and reads: real values,
//! serialized, are checked against the schemas generated for both contracts. The checker is
//! `plugboard_runtime::schema_check` (its `schema-check` feature).

use super::{DeadLetterRecord, ExecutionRecord, ExecutionStatus, TriggerKind};
use crate::domain::connections::{ConnectionDefinition, ConnectionKind, PublicConnection, RateLimit};
use plugboard_runtime::flow::{DeadLetter, ErrorReport, RunOutcome, StepReport, StoredRecord};
use plugboard_runtime::schema_check::{check, conforms, schema};
use plugboard_runtime::{LogEntry, LogLevel};
use serde_json::json;

fn error(code: &str) -> ErrorReport {
    ErrorReport { code: code.into(), message: "it broke".into(), backtrace: Vec::new() }
}

fn letter() -> DeadLetter {
    DeadLetter {
        step: "check".into(),
        attempts: 2,
        error: error("invalid-input"),
        reasons: vec!["total is negative".into()],
        logs: vec![LogEntry { level: LogLevel::Error, context: "host".into(), message: "refused".into() }],
        record: StoredRecord {
            key: Some("order-7".into()),
            value: json!({"total": -1}),
            headers: [("region".to_string(), "eu".to_string())].into(),
        },
    }
}

#[test]
fn stored_and_answered_schemas_describe_what_serde_writes_and_reads() {
    // An execution with everything optional present (its outcome flattened into it).
    let outcome = RunOutcome {
        steps: vec![StepReport {
            step: "check".into(),
            records_in: 2,
            records_out: 1,
            attempts: 2,
            duration_ms: 3.25,
            fuel: 1_000,
            error: None,
            retried: vec![error("timeout")],
            logs: Vec::new(),
        }],
        delivered: 1,
        dropped: 0,
        dead_letters: vec![letter()],
        failure: None,
        batch_failure: Some(error("plugin-error")),
    };
    let execution = ExecutionRecord {
        id: 7,
        flow: "order-sync".into(),
        status: ExecutionStatus::CompletedWithDeadLetters,
        trigger: TriggerKind::Webhook,
        queued: vec![3, 4],
        started_at: 1_700_000_000,
        finished_at: Some(1_700_000_002),
        plugin_versions: [("json-mapper".to_string(), "0.1.0".to_string())].into(),
        records_in: 2,
        dead_letter_count: 1,
        state_error: Some(error("kv-quota")),
        node: Some("node-a".into()),
        outcome,
    };
    check(&execution, None);
    let running = ExecutionRecord {
        status: ExecutionStatus::Running,
        trigger: TriggerKind::Manual,
        queued: Vec::new(),
        finished_at: None,
        state_error: None,
        node: None,
        outcome: RunOutcome::default(),
        ..execution.clone()
    };
    check(&running, None);
    let root = schema::<ExecutionRecord>(false);
    assert_eq!(root["title"], "Execution");
    assert!(root["properties"].get("dead_letters").is_some(), "the outcome is flattened into the execution");
    assert!(root["$defs"].get("DeadLetterDetail").is_some(), "inline dead letters are the runtime's");
    for status in [ExecutionStatus::Succeeded, ExecutionStatus::Failed, ExecutionStatus::Interrupted] {
        check(&status, None);
    }
    for trigger in [TriggerKind::Replay, TriggerKind::Cron] {
        check(&trigger, None);
    }

    // A stored dead letter: the runtime's flattened into it, under the name `DeadLetter`.
    check(&DeadLetterRecord::new("order-sync", 7, letter()), None);
    let root = schema::<DeadLetterRecord>(false);
    assert_eq!(root["title"], "DeadLetter");
    assert!(root["properties"].get("record").is_some());

    // A connection as defined (its secrets write-only) and as answered (never its secrets).
    let input = json!({
        "kind": "oauth2-refresh-token", "hosts": ["api.example.com"], "secret": "refresh",
        "client_secret": "shh", "token_url": "https://auth.example.com/token", "client_id": "plugboard",
        "scopes": ["read"], "audience": "crm", "probe_url": "https://api.example.com/me",
        "rate_limit": {"per_second": 2.5, "burst": 5, "concurrent": 2}
    });
    let definition: ConnectionDefinition = serde_json::from_value(input.clone()).expect("a definition");
    definition.validate().expect("a valid definition");
    check(&definition, Some(&input));
    let api_key = json!({"kind": "api-key", "hosts": ["*.example.com"], "secret": "k", "header": "X-Key"});
    check(&serde_json::from_value::<ConnectionDefinition>(api_key.clone()).expect("a definition"), Some(&api_key));
    let root = schema::<ConnectionDefinition>(false);
    assert_eq!(root["title"], "ConnectionDefinition");
    assert_eq!(root["properties"]["secret"]["writeOnly"], true);
    assert_eq!(root["properties"]["client_secret"]["writeOnly"], true);
    let answered = PublicConnection {
        name: "crm".into(),
        definition: ConnectionDefinition { secret: None, client_secret: None, ..definition.clone() },
        has_secret: true,
        used_by: vec!["http-sink".into()],
    };
    check(&answered, None);
    let root = schema::<PublicConnection>(false);
    assert_eq!(root["title"], "Connection");
    assert!(root["properties"].get("secret").is_none() && root["properties"].get("client_secret").is_none());
    let leaked = serde_json::to_value(PublicConnection { definition, ..answered }).expect("serializes");
    assert!(conforms(&root, &root, &leaked, "$").is_err(), "an answer with a secret is not a `Connection`");
    let limit = RateLimit { per_second: None, burst: None, concurrent: Some(1) };
    check(&limit, None);
    check(&ConnectionKind::Basic, None);
}
