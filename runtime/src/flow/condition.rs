//! Conditions on records, for route steps: `{"field": "$.total", "op": "gte", "value": 1000}`,
//! combined with `{"all": [...]}`, `{"any": [...]}` and `{"not": ...}`.
//!
//! `field` is a path into the record's JSON value (`$`, `.name`, `[index]`) or `header:NAME` for a
//! record header (compared as a string). Operators: `equals`, `not-equals`, `gt`, `gte`, `lt`,
//! `lte` (numbers, or strings lexically), `contains` (substring, array element or object key) and
//! `exists` (`value` true, the default, or false). A missing field only satisfies `not-equals` and
//! `exists: false`.

use crate::record::Record;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cmp::Ordering;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Equal.
    Equals,
    /// Not equal (or missing).
    NotEquals,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Substring, element or key.
    Contains,
    /// Presence.
    Exists,
}

/// A condition on one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    /// Every sub-condition holds.
    All {
        /// Sub-conditions.
        all: Vec<Condition>,
    },
    /// At least one holds.
    Any {
        /// Sub-conditions.
        any: Vec<Condition>,
    },
    /// The sub-condition does not hold.
    Not {
        /// Sub-condition.
        not: Box<Condition>,
    },
    /// A test on one field.
    Test {
        /// `$.path` or `header:NAME`.
        field: String,
        /// The operator.
        op: Op,
        /// The operand (`exists` defaults to `true`).
        #[serde(default)]
        value: Option<Value>,
    },
}

fn lookup(value: &Value, path: &str) -> Option<Value> {
    let mut current = value;
    let rest = path.strip_prefix('$')?;
    for segment in rest.split('.').filter(|s| !s.is_empty()) {
        let (name, indexes) = segment.split_once('[').map_or((segment, ""), |(n, i)| (n, i));
        if !name.is_empty() {
            current = current.get(name)?;
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            let index: usize = index.trim_end_matches(']').parse().ok()?;
            current = current.get(index)?;
        }
    }
    Some(current.clone())
}

fn compare(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

impl Condition {
    /// Whether the condition is well formed: every field is `$…` or `header:…`.
    ///
    /// # Errors
    /// A reason naming the bad field.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Condition::All { all: list } | Condition::Any { any: list } => list.iter().try_for_each(Condition::check),
            Condition::Not { not } => not.check(),
            Condition::Test { field, op, value } => {
                if !field.starts_with('$') && !field.starts_with("header:") {
                    return Err(format!("field `{field}` must be `$.path` or `header:NAME`"));
                }
                if value.is_none() && *op != Op::Exists {
                    return Err(format!("the condition on `{field}` needs a `value`"));
                }
                Ok(())
            }
        }
    }

    /// Whether `record` (with its value parsed as `json`) satisfies the condition.
    pub fn matches(&self, record: &Record, json: &Value) -> bool {
        match self {
            Condition::All { all } => all.iter().all(|c| c.matches(record, json)),
            Condition::Any { any } => any.iter().any(|c| c.matches(record, json)),
            Condition::Not { not } => !not.matches(record, json),
            Condition::Test { field, op, value } => {
                let found = match field.strip_prefix("header:") {
                    Some(name) => record
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| Value::String(String::from_utf8_lossy(&h.value).into_owned())),
                    None => lookup(json, field),
                };
                let expected = value.clone().unwrap_or(Value::Bool(true));
                match (op, found) {
                    (Op::Exists, found) => found.is_some() == (expected == Value::Bool(true)),
                    (Op::NotEquals, None) => true,
                    (_, None) => false,
                    (Op::Equals, Some(actual)) => actual == expected,
                    (Op::NotEquals, Some(actual)) => actual != expected,
                    (Op::Gt, Some(actual)) => compare(&actual, &expected) == Some(Ordering::Greater),
                    (Op::Gte, Some(actual)) => {
                        matches!(compare(&actual, &expected), Some(Ordering::Greater | Ordering::Equal))
                    }
                    (Op::Lt, Some(actual)) => compare(&actual, &expected) == Some(Ordering::Less),
                    (Op::Lte, Some(actual)) => {
                        matches!(compare(&actual, &expected), Some(Ordering::Less | Ordering::Equal))
                    }
                    (Op::Contains, Some(actual)) => match (&actual, &expected) {
                        (Value::String(text), Value::String(part)) => text.contains(part.as_str()),
                        (Value::Array(items), needle) => items.contains(needle),
                        (Value::Object(map), Value::String(key)) => map.contains_key(key),
                        _ => false,
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(condition: Value, value: Value) -> bool {
        let condition: Condition = serde_json::from_value(condition).expect("condition");
        condition.check().expect("well formed");
        let mut record = Record::json(&value);
        record.headers.push(crate::record::Header { name: "Region".into(), value: b"eu".to_vec() });
        condition.matches(&record, &value)
    }

    #[test]
    fn evaluates_fields_headers_and_combinations() {
        let order = json!({"total": 1000, "items": [{"sku": "a"}], "tags": ["vip"]});
        assert!(holds(json!({"field": "$.total", "op": "gte", "value": 1000}), order.clone()));
        assert!(!holds(json!({"field": "$.total", "op": "gt", "value": 1000}), order.clone()));
        assert!(holds(json!({"field": "$.items[0].sku", "op": "equals", "value": "a"}), order.clone()));
        assert!(holds(json!({"field": "header:region", "op": "equals", "value": "eu"}), order.clone()));
        assert!(holds(
            json!({"any": [{"field": "$.nope", "op": "exists"}, {"field": "$.tags", "op": "contains", "value": "vip"}]}),
            order.clone()
        ));
        assert!(holds(json!({"not": {"field": "$.nope", "op": "exists"}}), order.clone()));
        assert!(holds(json!({"field": "$.nope", "op": "not-equals", "value": 1}), order));
        let bad: Condition = serde_json::from_value(json!({"field": "total", "op": "gt", "value": 1})).expect("parses");
        assert!(bad.check().is_err());
    }
}
