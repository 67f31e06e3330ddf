//! Conditions on records: `{"field": "$.total", "op": "gte", "value": 1000}`, combined with
//! `{"all": [...]}`, `{"any": [...]}` and `{"not": ...}`. Flow routes and the `filter` plugin
//! both evaluate them with this code.
//!
//! `field` is a [`Path`] into the record's JSON value, or `header:NAME` for a record header
//! (compared as a string; names are case-insensitive). A wildcard path (`$.items[*].sku`) stands
//! for the array of everything it matches. Operators: `equals`, `not-equals`, `gt`, `gte`, `lt`,
//! `lte` (numbers, or strings compared lexically; other pairs never compare), `contains`
//! (substring of a string, element of an array, key of an object) and `exists` (`value` true, the
//! default, or false). A missing field satisfies only `not-equals` and `exists: false`.
//!
//! A [`Condition`] is the data as written (what a flow definition stores); [`Condition::compile`]
//! parses its paths once into a [`Compiled`] condition, which is what evaluates.

use crate::error::ExprError;
use crate::path::Path;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// A condition on one record, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// What a test reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A path into the record's value.
    Path(Path),
    /// A record header, by name.
    Header(String),
}

/// A condition with its fields parsed, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum Compiled {
    /// Every one holds.
    All(Vec<Compiled>),
    /// At least one holds.
    Any(Vec<Compiled>),
    /// It does not hold.
    Not(Box<Compiled>),
    /// A test: the field, the operator, the operand.
    Test(Field, Op, Value),
}

impl Condition {
    /// Parses every field.
    ///
    /// # Errors
    /// A reason naming the bad field: not `$…` or `header:…`, a path that does not parse, or a
    /// test other than `exists` without a `value`.
    pub fn compile(&self) -> Result<Compiled, ExprError> {
        let each = |list: &[Condition]| list.iter().map(Condition::compile).collect::<Result<Vec<_>, _>>();
        Ok(match self {
            Condition::All { all } => Compiled::All(each(all)?),
            Condition::Any { any } => Compiled::Any(each(any)?),
            Condition::Not { not } => Compiled::Not(Box::new(not.compile()?)),
            Condition::Test { field, op, value } => {
                let parsed = match field.strip_prefix("header:") {
                    Some(name) if !name.is_empty() => Field::Header(name.to_string()),
                    _ if field.starts_with('$') => Field::Path(Path::parse(field)?),
                    _ => return Err(ExprError::Field { field: field.clone() }),
                };
                let value = match (op, value) {
                    (_, Some(value)) => value.clone(),
                    (Op::Exists, None) => Value::Bool(true),
                    (_, None) => return Err(ExprError::NoValue { field: field.clone() }),
                };
                Compiled::Test(parsed, *op, value)
            }
        })
    }

    /// Whether the condition is well formed (see [`Condition::compile`]).
    ///
    /// # Errors
    /// The reason, naming the bad field.
    pub fn check(&self) -> Result<(), ExprError> {
        self.compile().map(|_| ())
    }
}

impl Compiled {
    /// Every path the condition reads (what a projection of the record needs).
    pub fn paths(&self) -> Vec<&Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a Path>) {
        match self {
            Compiled::All(list) | Compiled::Any(list) => list.iter().for_each(|c| c.collect_paths(out)),
            Compiled::Not(inner) => inner.collect_paths(out),
            Compiled::Test(Field::Path(path), _, _) => out.push(path),
            Compiled::Test(Field::Header(_), _, _) => {}
        }
    }

    /// Whether the record whose value is `value` and whose headers `header` answers (the first
    /// header of a name, case-insensitive) satisfies the condition.
    pub fn matches(&self, value: &Value, header: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Compiled::All(all) => all.iter().all(|c| c.matches(value, header)),
            Compiled::Any(any) => any.iter().any(|c| c.matches(value, header)),
            Compiled::Not(inner) => !inner.matches(value, header),
            Compiled::Test(field, op, expected) => {
                let found: Option<Cow<'_, Value>> = match field {
                    // A plain path is read in place; a wildcard path gathers its matches.
                    Field::Path(path) if path.is_multi() => path.get(value).map(Cow::Owned),
                    Field::Path(path) => path.find(value).map(Cow::Borrowed),
                    Field::Header(name) => header(name).map(|text| Cow::Owned(Value::String(text))),
                };
                test(*op, found.as_deref(), expected)
            }
        }
    }
}

/// One operator on what was found (`None`: missing) and the operand.
fn test(op: Op, found: Option<&Value>, expected: &Value) -> bool {
    let Some(actual) = found else {
        return match op {
            Op::Exists => *expected == Value::Bool(false),
            Op::NotEquals => true,
            _ => false,
        };
    };
    let order = || compare(actual, expected);
    match op {
        Op::Exists => *expected == Value::Bool(true),
        Op::Equals => actual == expected,
        Op::NotEquals => actual != expected,
        Op::Gt => order() == Some(Ordering::Greater),
        Op::Gte => matches!(order(), Some(Ordering::Greater | Ordering::Equal)),
        Op::Lt => order() == Some(Ordering::Less),
        Op::Lte => matches!(order(), Some(Ordering::Less | Ordering::Equal)),
        Op::Contains => match (actual, expected) {
            (Value::String(text), Value::String(part)) => text.contains(part.as_str()),
            (Value::Array(items), needle) => items.contains(needle),
            (Value::Object(map), Value::String(key)) => map.contains_key(key),
            _ => false,
        },
    }
}

/// Numbers by value, strings lexically; anything else does not compare.
fn compare(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(condition: Value, value: Value) -> bool {
        let condition: Condition = serde_json::from_value(condition).expect("condition");
        let compiled = condition.compile().expect("well formed");
        compiled.matches(&value, &|name| name.eq_ignore_ascii_case("region").then(|| "eu".to_string()))
    }

    #[test]
    fn evaluates_fields_headers_wildcards_and_combinations() {
        let order = json!({"total": 1000, "items": [{"sku": "a"}, {"sku": "b"}], "tags": ["vip"]});
        assert!(holds(json!({"field": "$.total", "op": "gte", "value": 1000}), order.clone()));
        assert!(holds(json!({"field": "$.total", "op": "lte", "value": 1000}), order.clone()));
        assert!(!holds(json!({"field": "$.total", "op": "gt", "value": 1000}), order.clone()));
        assert!(holds(json!({"field": "$.items[-1].sku", "op": "equals", "value": "b"}), order.clone()));
        assert!(holds(json!({"field": "$.items[*].sku", "op": "contains", "value": "a"}), order.clone()));
        assert!(holds(json!({"field": "header:Region", "op": "equals", "value": "eu"}), order.clone()));
        assert!(holds(json!({"not": {"field": "header:other", "op": "exists"}}), order.clone()));
        assert!(holds(json!({"field": "$.nope", "op": "not-equals", "value": 1}), order.clone()));
        assert!(holds(json!({"field": "$.nope", "op": "exists", "value": false}), order.clone()));
        assert!(!holds(json!({"field": "$.total", "op": "gt", "value": "1"}), order));
        for bad in [
            json!({"field": "total", "op": "gt", "value": 1}),
            json!({"field": "$.a[x]", "op": "gt", "value": 1}),
            json!({"field": "header:", "op": "exists"}),
            json!({"field": "$.a", "op": "gt"}),
        ] {
            let condition: Condition = serde_json::from_value(bad.clone()).expect("parses");
            assert!(condition.check().is_err(), "{bad}");
        }
    }
}
