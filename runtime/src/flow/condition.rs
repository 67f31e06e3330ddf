//! Route conditions: the record-expression language of `plugboard-expr` (paths, `header:NAME`,
//! `equals` … `lte`, `contains`, `exists`, `all`/`any`/`not`), evaluated on a flow's records —
//! the same code the `filter` plugin and the Rust SDK use, so a condition means the same in a
//! route and in a plugin (`tests/all/expressions.rs` checks both on one table).

use crate::record::Record;
use serde_json::Value;

pub use plugboard_expr::{Condition, Op};

/// Evaluating a [`Condition`] on a record of a flow.
pub trait RecordCondition {
    /// Whether `record` (with its value parsed as `json`) satisfies the condition; an ill-formed
    /// condition (which a flow's validation refuses) matches nothing.
    fn matches(&self, record: &Record, json: &Value) -> bool;
}

impl RecordCondition for Condition {
    fn matches(&self, record: &Record, json: &Value) -> bool {
        self.compile().is_ok_and(|compiled| compiled.matches(json, &header_of(record)))
    }
}

/// The first header of `record` called `name` (case-insensitive), as text: what a `header:NAME`
/// field reads.
pub(crate) fn header_of(record: &Record) -> impl Fn(&str) -> Option<String> + '_ {
    |name: &str| {
        let found = record.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name));
        found.map(|h| String::from_utf8_lossy(&h.value).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_record_headers_case_insensitively() {
        let value = json!({"total": 5});
        let mut record = Record::json(&value);
        record.headers.push(crate::record::Header { name: "Region".into(), value: b"eu".to_vec() });
        let condition: Condition =
            serde_json::from_value(json!({"all": [{"field": "header:region", "op": "equals", "value": "eu"},
                {"field": "$.total", "op": "lte", "value": 5}]}))
            .expect("condition");
        assert!(condition.matches(&record, &value));
        let other: Condition = serde_json::from_value(json!({"field": "header:region", "op": "equals", "value": "us"}))
            .expect("condition");
        assert!(!other.matches(&record, &value));
    }
}
