//! JSONPath-like paths for record values: `$.order.items[0].sku`, `$.items[*].price`.
//!
//! Supported: the root `$`, `.field` (or `['field']` for names with dots or spaces), `[N]` array
//! indexes (negative counts from the end), and `[*]` / `.*` wildcards over arrays and objects. That is
//! the part of JSONPath integration mappings use; filters and recursive descent are left out on
//! purpose so every path has one obvious meaning.

use crate::error::ExprError;
use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `.name` or `['name']`.
    Field(String),
    /// `[N]`; negative counts from the end.
    Index(i64),
    /// `[*]` or `.*`.
    Wildcard,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    steps: Vec<Step>,
    text: String,
}

impl Path {
    /// Parses `text`, which must start with `$`.
    ///
    /// # Errors
    /// [`ExprError`] naming the position of the problem.
    pub fn parse(text: &str) -> Result<Path, ExprError> {
        let path = || text.to_string();
        let rest = text.strip_prefix('$').ok_or_else(|| ExprError::NoRoot { path: path() })?;
        let bytes = rest.as_bytes();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'.' => {
                    let start = i + 1;
                    let end = rest[start..].find(['.', '[']).map_or(rest.len(), |n| start + n);
                    let name = &rest[start..end];
                    if name.is_empty() {
                        return Err(ExprError::EmptyField { path: path(), at: start + 1 });
                    }
                    steps.push(if name == "*" { Step::Wildcard } else { Step::Field(name.to_string()) });
                    i = end;
                }
                b'[' => {
                    let close =
                        rest[i..].find(']').map(|n| i + n).ok_or_else(|| ExprError::Unclosed { path: path() })?;
                    let inner = rest[i + 1..close].trim();
                    let step = if inner == "*" {
                        Step::Wildcard
                    } else if let Some(quoted) = inner
                        .strip_prefix('\'')
                        .and_then(|s| s.strip_suffix('\''))
                        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                    {
                        Step::Field(quoted.to_string())
                    } else {
                        let not_an_index = || ExprError::NotAnIndex { path: path(), inner: inner.to_string() };
                        Step::Index(inner.parse().map_err(|_| not_an_index())?)
                    };
                    steps.push(step);
                    i = close + 1;
                }
                other => return Err(ExprError::Unexpected { path: path(), found: other as char, at: i + 1 }),
            }
        }
        Ok(Path { steps, text: text.to_string() })
    }

    /// The steps, in order (what a projection follows).
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether the path can match more than one value.
    pub fn is_multi(&self) -> bool {
        self.steps.contains(&Step::Wildcard)
    }

    /// Every value the path matches in `root`, in document order.
    pub fn select<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for step in &self.steps {
            let mut next = Vec::new();
            for value in current {
                match (step, value) {
                    (Step::Field(name), Value::Object(map)) => next.extend(map.get(name)),
                    (Step::Index(index), Value::Array(items)) => {
                        next.extend(resolve(*index, items.len()).map(|at| &items[at]))
                    }
                    (Step::Wildcard, Value::Array(items)) => next.extend(items),
                    (Step::Wildcard, Value::Object(map)) => next.extend(map.values()),
                    _ => {}
                }
            }
            current = next;
        }
        current
    }

    /// The value at this path: the single match for a plain path, an array of all matches for a
    /// wildcard path, `None` when a plain path matches nothing.
    pub fn get(&self, root: &Value) -> Option<Value> {
        if self.is_multi() {
            Some(Value::Array(self.select(root).into_iter().cloned().collect()))
        } else {
            self.find(root).cloned()
        }
    }

    /// The value at a plain path (no wildcards), if present; found without allocating.
    pub fn find<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        let mut current = root;
        for step in &self.steps {
            current = match (step, current) {
                (Step::Field(name), Value::Object(map)) => map.get(name)?,
                (Step::Index(index), Value::Array(items)) => &items[resolve(*index, items.len())?],
                _ => return None,
            };
        }
        Some(current)
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A mutable reference to the value at a plain path (no wildcards), if present.
    pub fn get_mut<'a>(&self, root: &'a mut Value) -> Option<&'a mut Value> {
        let mut current = root;
        for step in &self.steps {
            current = match (step, current) {
                (Step::Field(name), Value::Object(map)) => map.get_mut(name)?,
                (Step::Index(index), Value::Array(items)) => {
                    let at = resolve(*index, items.len())?;
                    &mut items[at]
                }
                _ => return None,
            };
        }
        Some(current)
    }
}

/// The position `index` names in an array of `len` elements (negative counts from the end).
fn resolve(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let at = if index < 0 { len + index } else { index };
    if (0..len).contains(&at) { usize::try_from(at).ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_fields_indexes_and_wildcards() {
        let doc = json!({"order": {"id": 7, "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]}, "a.b": 1});
        let get = |p: &str| Path::parse(p).expect("valid path").get(&doc);
        assert_eq!(get("$.order.id"), Some(json!(7)));
        assert_eq!(get("$.order.items[1].sku"), Some(json!("b")));
        assert_eq!(get("$.order.items[-1].qty"), Some(json!(2)));
        assert_eq!(get("$.order.items[*].sku"), Some(json!(["a", "b"])));
        assert_eq!(get("$['a.b']"), Some(json!(1)));
        assert_eq!(get("$.missing"), None);
        assert_eq!(get("$"), Some(doc.clone()));
        assert!(Path::parse("order.id").is_err());
        assert!(Path::parse("$.a[x]").is_err());
        assert!(Path::parse("$.a[0").is_err());
        assert!(Path::parse("$..a").is_err());
    }
}
