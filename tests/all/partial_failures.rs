//! One bad record does not take the others down: a transform step whose plugin answers
//! `invalid-input` naming some records dead-letters exactly those, with the plugin's reasons, and
//! passes the rest on — with real guests in Rust (schema-validator), Python (enrich) and
//! TypeScript (normalize-contact) in a transform step of a real flow run.

use crate::support::common::{cached_runtime, config, records};
use plugboard_runtime::flow::{FlowDefinition, FlowRun};
use plugboard_tests::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Runs `plugin` as the one transform step of a flow over `input`.
async fn transform_step(
    plugin: &SamplePlugin,
    settings: &[(&str, &str)],
    input: &[Value],
) -> plugboard_runtime::flow::RunOutcome {
    let loaded = plugin.load(&cached_runtime(), &config(settings));
    let flow: FlowDefinition = serde_json::from_value(json!({
        "name": "partial",
        "steps": [{"type": "transform", "id": "shape", "plugin": plugin.name}]
    }))
    .expect("flow");
    let plugins = BTreeMap::from([(plugin.name.to_string(), loaded)]);
    FlowRun::new(flow, plugins).run(records(input)).await
}

fn assert_only_the_named_record_is_dead_lettered(outcome: &plugboard_runtime::flow::RunOutcome, bad: &Value) {
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    let step = &outcome.steps[0];
    assert_eq!((step.records_in, step.records_out), (3, 2), "{step:?}");
    assert_eq!(step.error.as_ref().map(|e| e.code.as_str()), Some("guest-error"), "{step:?}");
    assert_eq!(outcome.dead_letters.len(), 1, "{:?}", outcome.dead_letters);
    let letter = &outcome.dead_letters[0];
    assert_eq!(letter.step, "shape");
    assert!(!letter.reasons.is_empty(), "the plugin's reasons are kept: {letter:?}");
    assert_eq!(&letter.record.value, bad);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_dead_letters_only_the_records_it_names_in_every_language() {
    // Rust: schema-validator used as a transform.
    let schema = json!({"type": "object", "required": ["id"]}).to_string();
    let bad = json!({"x": 2});
    let outcome =
        transform_step(&SCHEMA_VALIDATOR, &[("schema", &schema)], &[json!({"id": 1}), bad.clone(), json!({"id": 3})])
            .await;
    assert_only_the_named_record_is_dead_lettered(&outcome, &bad);

    // Python: enrich refuses a record that is not a JSON object.
    let bad = json!("not an object");
    let input = [json!({"id": 1}), bad.clone(), json!({"id": 3})];
    let outcome = transform_step(&PY_ENRICH, &[("key", "id"), ("table", "{}")], &input).await;
    assert_only_the_named_record_is_dead_lettered(&outcome, &bad);

    // TypeScript: normalize-contact refuses a contact without an email or a name.
    let bad = json!({"phone": "555 0100"});
    let input =
        [json!({"email": "a@example.com", "name": "A"}), bad.clone(), json!({"email": "c@example.com", "name": "C"})];
    let outcome = transform_step(&TS_NORMALIZE_CONTACT, &[("default_country_code", "1")], &input).await;
    assert_only_the_named_record_is_dead_lettered(&outcome, &bad);

    // Every record named: all dead-lettered, nothing passes, nothing fails as a whole.
    let all_bad = [json!(1), json!(2), json!(3)];
    let outcome = transform_step(&PY_ENRICH, &[("key", "id"), ("table", "{}")], &all_bad).await;
    assert_eq!(outcome.dead_letters.len(), 3);
    assert_eq!(outcome.steps[0].records_out, 0);
}
