//! The JSON Schemas of what the control plane stores and answers (`Execution`, `DeadLetter`)
//! describe what serde writes and reads: real values,
//! serialized, are checked against the schemas generated for both contracts. The checker is
//! `plugboard_runtime::schema_check` (its `schema-check` feature).

use super::{DeadLetterRecord, ExecutionRecord, ExecutionStatus, TriggerKind};
use plugboard_runtime::flow::{DeadLetter, ErrorReport, RunOutcome, StepReport, StoredRecord};
use plugboard_runtime::schema_check::{check, schema};
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
fn execution_and_dead_letter_schemas_describe_what_serde_writes_and_reads() {
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
}
