//! Projection parsing: read from each record only the parts a set of [`Path`]s can reach.
//!
//! A transformer that looks at a few fields of a large record (a mapper, a filter) spends most of
//! its time building, then dropping, a tree of everything it did not look at. A [`Projection`]
//! parses the record once, builds values only where a path can reach, and skips the rest without
//! allocating: parts no path reaches are left out of objects and become `null` in arrays (which keep
//! their length, so indexes from either end still point at the same element). Every path of the
//! projection selects exactly what it would select in the fully parsed record.
//!
//! Skipped parts are checked as [`crate::json::check`] checks a whole record (UTF-8 and the JSON
//! grammar) but not built; parts a path reaches are parsed in full.

use crate::path::{Path, Step};
use crate::{Batch, PluginError};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// How many nodes [`Projection::of`] may visit while building a projection before it keeps the
/// whole document instead. Real path sets (a mapping of a few hundred paths) stay far below it.
pub const MAX_PROJECTION_WORK: usize = 100_000;

/// Takes one unit of `budget`; `false` once it is spent.
fn spend(budget: &mut usize) -> bool {
    *budget = budget.saturating_sub(1);
    *budget > 0
}

/// The parts of a document a set of paths can reach.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    whole: bool,
    fields: BTreeMap<String, Projection>,
    any_field: Option<Box<Projection>>,
    indexes: BTreeMap<u64, Projection>,
    any_index: Option<Box<Projection>>,
}

impl Projection {
    /// The projection that keeps what any of `paths` can reach.
    ///
    /// Each wildcard step needs what follows it both under every field and under every index, so
    /// the projection of a path with many wildcards doubles with each of them. Past
    /// [`MAX_PROJECTION_WORK`] node visits the whole document is kept instead: it selects the same,
    /// only slower to parse, rather than letting a path in a plugin's configuration take time and
    /// memory exponential in its length.
    pub fn of<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Projection {
        let mut root = Projection::default();
        let mut budget = MAX_PROJECTION_WORK;
        for path in paths {
            root.add(path.steps(), &mut budget);
        }
        root.settle(&mut budget);
        if budget == 0 { Projection { whole: true, ..Projection::default() } } else { root }
    }

    /// Whether nothing is skipped (a path reaches the whole document).
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// `budget` counts node visits down; at zero the work stops (and [`Projection::of`] keeps the
    /// whole document).
    fn add(&mut self, steps: &[Step], budget: &mut usize) {
        if !spend(budget) {
            return;
        }
        let Some((step, rest)) = steps.split_first() else {
            self.whole = true;
            return;
        };
        match step {
            Step::Field(name) => self.fields.entry(name.clone()).or_default().add(rest, budget),
            Step::Index(index) => match u64::try_from(*index) {
                Ok(index) => self.indexes.entry(index).or_default().add(rest, budget),
                // From the end: which element depends on the length, so every element may be it.
                Err(_) => self.any_index.get_or_insert_default().add(rest, budget),
            },
            Step::Wildcard => {
                self.any_field.get_or_insert_default().add(rest, budget);
                self.any_index.get_or_insert_default().add(rest, budget);
            }
        }
    }

    /// Folds the wildcard needs into every named field and index, so parsing looks up one place.
    fn settle(&mut self, budget: &mut usize) {
        if !spend(budget) {
            return;
        }
        if self.whole {
            *self = Projection { whole: true, ..Projection::default() };
            return;
        }
        if let Some(any) = &mut self.any_field {
            any.settle(budget);
        }
        if let Some(any) = &mut self.any_index {
            any.settle(budget);
        }
        let fields = self.fields.values_mut().map(|child| (child, &self.any_field));
        let indexes = self.indexes.values_mut().map(|child| (child, &self.any_index));
        for (child, any) in fields.chain(indexes) {
            if let Some(any) = any {
                child.merge(any, budget);
            }
            child.settle(budget);
        }
    }

    fn merge(&mut self, other: &Projection, budget: &mut usize) {
        if !spend(budget) {
            return;
        }
        self.whole |= other.whole;
        for (name, child) in &other.fields {
            self.fields.entry(name.clone()).or_default().merge(child, budget);
        }
        for (index, child) in &other.indexes {
            self.indexes.entry(*index).or_default().merge(child, budget);
        }
        for (mine, theirs) in [(&mut self.any_field, &other.any_field), (&mut self.any_index, &other.any_index)] {
            if let Some(theirs) = theirs {
                mine.get_or_insert_default().merge(theirs, budget);
            }
        }
    }

    /// Parses `json`, keeping what the projection reaches.
    ///
    /// # Errors
    /// serde's error when `json` is not a JSON document.
    pub fn parse(&self, json: &[u8]) -> Result<Value, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(crate::json::utf8(json)?);
        let value = self.deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }

    /// Parses every record of `batch` through the projection.
    ///
    /// # Errors
    /// [`PluginError::InvalidInput`] listing every record that is not valid JSON, by index.
    pub fn parse_batch(&self, batch: &Batch) -> Result<Vec<Value>, PluginError> {
        crate::json::parse_each(batch, |json| self.parse(json))
    }
}

impl<'de> DeserializeSeed<'de> for &Projection {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.whole { serde::Deserialize::deserialize(deserializer) } else { deserializer.deserialize_any(self) }
    }
}

/// What to do with an object's key: keep it (and how), or skip its value.
enum KeyNeed<'p> {
    Named(&'p str, &'p Projection),
    Other(String, &'p Projection),
    Skip,
}

struct KeySeed<'p>(&'p Projection);

impl<'de, 'p> DeserializeSeed<'de> for KeySeed<'p> {
    type Value = KeyNeed<'p>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<KeyNeed<'p>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'p> Visitor<'_> for KeySeed<'p> {
    type Value = KeyNeed<'p>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<KeyNeed<'p>, E> {
        Ok(match (self.0.fields.get_key_value(key), &self.0.any_field) {
            (Some((name, child)), _) => KeyNeed::Named(name, child),
            (None, Some(any)) => KeyNeed::Other(key.to_string(), any),
            (None, None) => KeyNeed::Skip,
        })
    }
}

impl<'de> Visitor<'de> for &Projection {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(need) = map.next_key_seed(KeySeed(self))? {
            match need {
                KeyNeed::Named(name, child) => {
                    out.insert(name.to_string(), map.next_value_seed(child)?);
                }
                KeyNeed::Other(name, child) => {
                    out.insert(name, map.next_value_seed(child)?);
                }
                KeyNeed::Skip => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let index = out.len() as u64;
            let element = match self.indexes.get(&index).or(self.any_index.as_deref()) {
                Some(child) => seq.next_element_seed(child)?,
                None => seq.next_element::<IgnoredAny>()?.map(|_| Value::Null),
            };
            match element {
                Some(value) => out.push(value),
                None => return Ok(Value::Array(out)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(texts: &[&str]) -> Vec<Path> {
        texts.iter().map(|t| Path::parse(t).expect("valid path")).collect()
    }

    #[test]
    fn every_path_selects_what_it_selects_in_the_full_document() {
        let doc = json!({
            "id": "A1", "note": "skip me", "n": 1.5, "ok": true, "none": null,
            "customer": {"id": 7, "name": "Ada", "tags": ["x", "y"]},
            "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}, {"sku": "c", "qty": 3}],
            "weird key": {"deep": [[1, 2], [3, 4]]}
        });
        let text = serde_json::to_vec(&doc).expect("json");
        let sets: [&[&str]; 8] = [
            &["$.items[*].sku", "$.items[0].qty", "$.customer.*", "$.customer.tags[0]"],
            &["$.id", "$.customer.id", "$.items[0].sku"],
            &["$.items[-1].qty", "$.items[1]"],
            &["$.items[*].sku", "$.customer.*"],
            &["$['weird key'].deep[1][0]", "$.n", "$.ok", "$.none"],
            &["$.*", "$.customer.tags[1]"],
            &["$.missing.path", "$.id[0]", "$.items.sku"],
            &["$"],
        ];
        for set in sets {
            let paths = paths(set);
            let projected = Projection::of(&paths).parse(&text).expect("parses");
            for path in &paths {
                assert_eq!(path.get(&projected), path.get(&doc), "{} in {set:?}", path.as_str());
            }
        }
    }

    #[test]
    fn unreached_parts_are_left_out() {
        let projection = Projection::of(&paths(&["$.a.b", "$.list[1]"]));
        let value = projection.parse(br#"{"a": {"b": 1, "c": "x"}, "d": [1], "list": [{"big": 1}, 2, 3]}"#);
        assert_eq!(value.expect("parses"), json!({"a": {"b": 1}, "list": [null, 2, null]}));
        assert!(Projection::of(&paths(&["$.x", "$"])).is_whole());
        assert!(projection.parse(b"{\"a\": ").is_err());
        assert!(projection.parse(b"{\"skipped\": [1, }").is_err());
        assert!(projection.parse(b"{} trailing").is_err());
        assert!(projection.parse(b"{\"skipped\": \"\xff\"}").is_err(), "unread strings are still checked");
    }

    #[test]
    fn many_wildcards_keep_the_whole_document_instead_of_growing_exponentially() {
        // Found by the `sdk_json` fuzz target: each wildcard doubled the projection (out of memory).
        let text = format!("$.a{}", "[*].s".repeat(40));
        let paths = paths(&[text.as_str(), "$.b"]);
        let projection = Projection::of(&paths);
        assert!(projection.is_whole());
        let json = br#"{"a": [{"s": 1}], "b": 2}"#;
        let full: Value = serde_json::from_slice(json).expect("valid");
        let projected = projection.parse(json).expect("valid");
        for path in &paths {
            assert_eq!(path.select(&projected), path.select(&full));
        }
    }
}
