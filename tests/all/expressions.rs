//! One record-expression language (issue 28, point 3): a table of conditions × records, each
//! evaluated as a flow route evaluates it (the runtime) and by the `filter` sample plugin (a real
//! component built from source, running in the sandbox). Both must agree with each other and
//! with the table — `gte`/`lte`, negative indexes, wildcards and headers included, which the two
//! once disagreed on.

use crate::support::common::{config, runtime};
use plugboard_runtime::flow::{Condition, RecordCondition};
use plugboard_runtime::{Header, Record};
use plugboard_tests::*;
use serde_json::{Value, json};

/// The records every condition is evaluated on (the third has a `Region: eu` header).
fn records() -> Vec<Record> {
    let values = [
        json!({"id": 0, "total": 1000, "status": "paid", "items": [{"sku": "a"}, {"sku": "b"}], "tags": ["vip"]}),
        json!({"id": 1, "total": 999.5, "status": "open", "items": [], "meta": {"a.b": 1}}),
        json!({"id": 2, "total": "1000", "status": "paid", "items": [{"sku": "b"}]}),
        json!({"id": 3, "name": "Zoë", "items": [{"sku": "a"}, {"sku": "c"}]}),
    ];
    let mut records: Vec<Record> = values.iter().map(Record::json).collect();
    records[2].headers.push(Header { name: "Region".into(), value: b"eu".to_vec() });
    records
}

/// Each condition and the ids of the records it keeps.
fn table() -> Vec<(Value, Vec<u64>)> {
    vec![
        (json!({"field": "$.total", "op": "gte", "value": 1000}), vec![0]),
        (json!({"field": "$.total", "op": "lte", "value": 1000}), vec![0, 1]),
        (json!({"field": "$.total", "op": "gt", "value": 999}), vec![0, 1]),
        (json!({"field": "$.total", "op": "lt", "value": "2"}), vec![2]),
        (json!({"field": "$.status", "op": "equals", "value": "paid"}), vec![0, 2]),
        (json!({"field": "$.status", "op": "not-equals", "value": "paid"}), vec![1, 3]),
        (json!({"field": "$.items[-1].sku", "op": "equals", "value": "b"}), vec![0, 2]),
        (json!({"field": "$.items[0].sku", "op": "equals", "value": "a"}), vec![0, 3]),
        (json!({"field": "$.items[*].sku", "op": "contains", "value": "c"}), vec![3]),
        (json!({"field": "$.tags", "op": "contains", "value": "vip"}), vec![0]),
        (json!({"field": "$.name", "op": "contains", "value": "oë"}), vec![3]),
        (json!({"field": "$.meta", "op": "contains", "value": "a.b"}), vec![1]),
        (json!({"field": "$.meta['a.b']", "op": "equals", "value": 1}), vec![1]),
        (json!({"field": "$.total", "op": "exists", "value": false}), vec![3]),
        (json!({"field": "header:region", "op": "equals", "value": "eu"}), vec![2]),
        (json!({"field": "header:REGION", "op": "exists"}), vec![2]),
        (
            json!({"all": [{"field": "$.status", "op": "equals", "value": "paid"},
                           {"not": {"field": "header:region", "op": "exists"}}]}),
            vec![0],
        ),
        (
            json!({"any": [{"field": "$.total", "op": "gte", "value": 1000},
                           {"field": "$.items[*]", "op": "contains", "value": {"sku": "c"}}]}),
            vec![0, 3],
        ),
    ]
}

fn ids(records: &[Record]) -> Vec<u64> {
    records.iter().filter_map(|r| r.to_json().ok()?["id"].as_u64()).collect()
}

#[tokio::test]
async fn a_condition_means_the_same_in_a_route_and_in_the_filter_plugin() {
    let runtime = runtime();
    for (condition, expected) in table() {
        let parsed: Condition = serde_json::from_value(condition.clone()).expect("condition");
        parsed.check().unwrap_or_else(|reason| panic!("{condition} is refused: {reason}"));
        let input = records();
        let by_route: Vec<Record> =
            input.iter().filter(|r| parsed.matches(r, &r.to_json().expect("JSON"))).cloned().collect();
        let filter = FILTER.load(&runtime, &config(&[("condition", &condition.to_string())]));
        let by_plugin = filter.transform(input).await.into_result().expect("the filter runs");
        assert_eq!(ids(&by_route), expected, "a route with {condition}");
        assert_eq!(ids(&by_plugin), expected, "the filter plugin with {condition}");
    }
}

#[tokio::test]
async fn an_ill_formed_condition_is_refused_by_both() {
    let runtime = runtime();
    for condition in [
        json!({"field": "total", "op": "gt", "value": 1}),
        json!({"field": "$.a[x]", "op": "gt", "value": 1}),
        json!({"field": "$.total", "op": "gte"}),
    ] {
        let parsed: Condition = serde_json::from_value(condition.clone()).expect("parses");
        assert!(parsed.check().is_err(), "a route accepts {condition}");
        let filter = FILTER.load(&runtime, &config(&[("condition", &condition.to_string())]));
        let outcome = filter.transform(records()).await.outcome;
        assert!(
            matches!(outcome, Err(plugboard_runtime::Error::Guest(plugboard_runtime::PluginError::InvalidConfig(_)))),
            "the filter plugin with {condition}: {outcome:?}"
        );
    }
}
