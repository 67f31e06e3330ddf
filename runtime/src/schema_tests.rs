//! The JSON Schemas of flow definitions, run reports and manifests describe what serde writes and
//! reads: real values, serialized, are checked against the schemas generated for both contracts.

use crate::flow::{DeadLetter, ErrorReport, FlowDefinition, RunOutcome, StepReport, StoredRecord, Trigger};
use crate::host::logs::{LogEntry, LogLevel};
use crate::manifest::{Contract, Kind, Manifest};
use crate::schema_check::{check, conforms, schema};
use serde_json::{Value, json};

fn flow_json() -> Value {
    json!({
        "name": "order-sync",
        "triggers": [
            {"type": "webhook", "scheme": "hmac", "body": "event", "headers": ["X-Region"],
             "events": ["order.created"], "allow_from": ["10.0.0.0/8", "2001:db8::1"], "tolerance_secs": 120,
             "hmac": {"header": "X-Signature", "prefix": "sha256=", "algorithm": "sha512", "encoding": "base64",
                      "signed": "{timestamp}.{id}.{body}", "timestamp_header": "X-Timestamp",
                      "id_header": "X-Delivery", "event_header": "X-Event"}},
            {"type": "cron", "schedule": "*/5 * * * *", "timezone": "Europe/Berlin", "allow_overlap": true}
        ],
        "ordered": true,
        "source": {"id": "read", "plugin": "http-source", "max_records": 10},
        "steps": [
            {"type": "transform", "id": "map", "plugin": "json-mapper",
             "retry": {"max_attempts": 5, "initial_backoff_ms": 10, "max_backoff_ms": 100}},
            {"type": "validate", "id": "check", "plugin": "schema-validator", "on_invalid": "fail"},
            {"type": "route", "id": "by-size", "default": "small", "routes": [
                {"when": {"all": [{"field": "$.total", "op": "gte", "value": 1000},
                                  {"not": {"field": "header:region", "op": "exists"}}]}, "to": "big"},
                {"when": {"any": [{"field": "$.tags", "op": "contains", "value": "vip"},
                                  {"field": "$.items[*].sku", "op": "not-equals", "value": ["a"]}]}, "to": "copies"}
            ]}
        ],
        "branches": {
            "big": {"sinks": [{"id": "crm", "plugin": "http-sink", "retry": {"max_attempts": 1}}]},
            "small": {"steps": [{"type": "validate", "id": "small-check", "plugin": "schema-validator"}],
                      "sinks": [{"id": "mail", "plugin": "webhook-sink"}]},
            "copies": {"steps": [{"type": "fan-out", "id": "copy", "to": ["big", "small"]}]}
        }
    })
}

#[test]
fn schemas_describe_what_serde_writes_and_reads() {
    // A flow with every kind of trigger, step and condition: valid, and described both as written
    // (defaults filled in) and as read (defaults left out).
    let input = flow_json();
    let flow: FlowDefinition = serde_json::from_value(input.clone()).expect("a flow");
    let kind_of = |plugin: &str| {
        Some(match plugin {
            "http-source" => Kind::Source,
            "http-sink" | "webhook-sink" => Kind::Sink,
            _ => Kind::Transformer,
        })
    };
    flow.validate(kind_of).expect("a valid flow");
    assert!(matches!(flow.triggers.first(), Some(Trigger::Webhook(_))));
    check(&flow, Some(&input));
    let minimal = json!({"name": "tiny", "sinks": [{"id": "out", "plugin": "http-sink"}]});
    check(&serde_json::from_value::<FlowDefinition>(minimal.clone()).expect("a flow"), Some(&minimal));
    // What serde refuses, the reading schema refuses.
    let root = schema::<FlowDefinition>(false);
    assert_eq!(root.get("additionalProperties"), Some(&Value::Bool(false)), "unknown fields are refused");
    assert!(serde_json::from_value::<FlowDefinition>(json!({"name": "x", "surprise": 1})).is_err(), "as serde does");
    let on_invalid =
        json!({"name": "x", "steps": [{"type": "validate", "id": "v", "plugin": "p", "on_invalid": "drop"}]});
    assert!(serde_json::from_value::<FlowDefinition>(on_invalid.clone()).is_err());
    assert!(conforms(&root, &root, &on_invalid, "$").is_err());

    // Reports: an outcome with every optional part present, and an empty one.
    let error = |code: &str| ErrorReport { code: code.into(), message: "it broke".into(), backtrace: vec!["f".into()] };
    let logs = vec![LogEntry { level: LogLevel::Warn, context: "stderr".into(), message: "careful".into() }];
    let record = StoredRecord {
        key: Some("order-7".into()),
        value: json!({"total": 1200}),
        headers: [("region".to_string(), "eu".to_string())].into(),
    };
    let outcome = RunOutcome {
        steps: vec![StepReport {
            step: "map".into(),
            records_in: 3,
            records_out: 2,
            attempts: 2,
            duration_ms: 12.5,
            fuel: 9_000,
            error: Some(error("guest-trap")),
            retried: vec![error("timeout")],
            logs: logs.clone(),
        }],
        delivered: 2,
        dropped: 1,
        dead_letters: vec![DeadLetter {
            step: "check".into(),
            attempts: 1,
            error: error("invalid-input").without_backtrace(),
            reasons: vec!["total is negative".into()],
            logs,
            record,
        }],
        failure: Some(error("invalid-input")),
        batch_failure: Some(error("plugin-error")),
    };
    check(&outcome, None);
    check(&RunOutcome::default(), None);
    let dead_letter = &schema::<RunOutcome>(true)["$defs"]["DeadLetterDetail"];
    assert!(dead_letter.get("properties").is_some(), "the runtime's dead letter is `DeadLetterDetail`");

    // Every sample plugin's manifest, as parsed and as written; the version is a string.
    let manifests = [
        include_str!("../../sample-plugins/aggregate/plugin.toml"),
        include_str!("../../sample-plugins/csv-to-json/plugin.toml"),
        include_str!("../../sample-plugins/filter/plugin.toml"),
        include_str!("../../sample-plugins/http-sink/plugin.toml"),
        include_str!("../../sample-plugins/http-source/plugin.toml"),
        include_str!("../../sample-plugins/json-mapper/plugin.toml"),
        include_str!("../../sample-plugins/redact/plugin.toml"),
        include_str!("../../sample-plugins/schema-validator/plugin.toml"),
        include_str!("../../sample-plugins/webhook-sink/plugin.toml"),
    ];
    for text in manifests {
        let manifest = Manifest::from_toml(text).expect("a sample manifest");
        let input = serde_json::to_value(toml::from_str::<toml::Value>(text).expect("toml")).expect("json");
        check(&manifest, Some(&input));
    }
    let root = schema::<Manifest>(false);
    assert_eq!(root["properties"]["version"]["type"], "string");
    assert_eq!(root["title"], "Manifest");
    for contract in Contract::ALL {
        check(&contract, None);
    }
}
