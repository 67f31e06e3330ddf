//! `filter`: keeps the JSON records that match conditions from config.
//!
//! Config `condition` is one condition or a combination:
//!
//! ```json
//! {"all": [{"field": "$.status", "op": "equals", "value": "paid"},
//!          {"any": [{"field": "$.total", "op": "gt", "value": 100},
//!                   {"field": "$.tags", "op": "contains", "value": "vip"}]}]}
//! ```
//!
//! Operators: `equals`, `not-equals`, `gt`, `lt` (numbers, or strings compared lexically),
//! `contains` (substring of a string, element of an array, key of an object) and `exists`
//! (`value` true or false; default true). A missing field matches only `not-equals` and
//! `exists: false`.

use plugboard_plugin_sdk::path::Path;
use plugboard_plugin_sdk::projection::Projection;
use plugboard_plugin_sdk::{Batch, PluginError, Transformer, config};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

#[derive(Deserialize)]
#[serde(untagged)]
enum Condition {
    All {
        all: Vec<Condition>,
    },
    Any {
        any: Vec<Condition>,
    },
    Not {
        not: Box<Condition>,
    },
    Test {
        field: String,
        op: Op,
        #[serde(default)]
        value: Option<Value>,
    },
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Op {
    Equals,
    NotEquals,
    Gt,
    Lt,
    Contains,
    Exists,
}

/// A condition with its paths parsed.
enum Compiled {
    All(Vec<Compiled>),
    Any(Vec<Compiled>),
    Not(Box<Compiled>),
    Test(Path, Op, Value),
}

fn compile(condition: Condition) -> Result<Compiled, String> {
    Ok(match condition {
        Condition::All { all } => Compiled::All(all.into_iter().map(compile).collect::<Result<_, _>>()?),
        Condition::Any { any } => Compiled::Any(any.into_iter().map(compile).collect::<Result<_, _>>()?),
        Condition::Not { not } => Compiled::Not(Box::new(compile(*not)?)),
        Condition::Test { field, op, value } => {
            let value = match (op, value) {
                (Op::Exists, None) => Value::Bool(true),
                (_, Some(value)) => value,
                (_, None) => return Err(format!("condition on `{field}` needs a `value`")),
            };
            Compiled::Test(Path::parse(&field)?, op, value)
        }
    })
}

fn compare(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn contains(haystack: &Value, needle: &Value) -> bool {
    match (haystack, needle) {
        (Value::String(text), Value::String(part)) => text.contains(part.as_str()),
        (Value::Array(items), needle) => items.contains(needle),
        (Value::Object(map), Value::String(key)) => map.contains_key(key),
        _ => false,
    }
}

impl Compiled {
    /// Every path the condition reads.
    fn paths<'a>(&'a self, out: &mut Vec<&'a Path>) {
        match self {
            Compiled::All(all) | Compiled::Any(all) => all.iter().for_each(|c| c.paths(out)),
            Compiled::Not(inner) => inner.paths(out),
            Compiled::Test(path, _, _) => out.push(path),
        }
    }

    fn matches(&self, record: &Value) -> bool {
        match self {
            Compiled::All(all) => all.iter().all(|c| c.matches(record)),
            Compiled::Any(any) => any.iter().any(|c| c.matches(record)),
            Compiled::Not(inner) => !inner.matches(record),
            Compiled::Test(path, op, expected) => {
                // A plain path is read in place; a wildcard path gathers its matches into an array.
                let found = if path.is_multi() {
                    path.get(record).map(Cow::Owned)
                } else {
                    path.find(record).map(Cow::Borrowed)
                };
                match (op, found.as_deref()) {
                    (Op::Exists, found) => found.is_some() == (expected == &Value::Bool(true)),
                    (Op::NotEquals, None) => true,
                    (_, None) => false,
                    (Op::Equals, Some(actual)) => actual == expected,
                    (Op::NotEquals, Some(actual)) => actual != expected,
                    (Op::Gt, Some(actual)) => compare(actual, expected) == Some(Ordering::Greater),
                    (Op::Lt, Some(actual)) => compare(actual, expected) == Some(Ordering::Less),
                    (Op::Contains, Some(actual)) => contains(actual, expected),
                }
            }
        }
    }
}

struct Filter;

impl Transformer for Filter {
    fn transform(input: Batch) -> Result<Batch, PluginError> {
        let condition: Condition = config::json("condition")?;
        let condition = compile(condition).map_err(PluginError::InvalidConfig)?;
        let mut paths = Vec::new();
        condition.paths(&mut paths);
        // Only the fields the condition reads are built; records pass through unchanged.
        let values = Projection::of(paths).parse_batch(&input)?;
        Ok(input
            .into_iter()
            .zip(values)
            .filter(|(_, value)| condition.matches(value))
            .map(|(record, _)| record)
            .collect())
    }
}

plugboard_plugin_sdk::export_transformer!(Filter);
