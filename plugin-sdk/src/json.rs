//! JSON helpers for batches: parse every record, report every bad one with its index.

use crate::{Batch, PluginError, RecordIssue};
use serde::de::DeserializeOwned;

/// Parses one record value as JSON; `index` is the record's position, used in the issue.
///
/// # Errors
/// A [`RecordIssue`] for `index` with serde's reason.
pub fn parse_value<T: DeserializeOwned>(value: &[u8], index: u32) -> Result<T, RecordIssue> {
    serde_json::from_slice(value).map_err(|err| issue(index as usize, &err))
}

/// Parses every record of `batch` as JSON.
///
/// # Errors
/// [`PluginError::InvalidInput`] listing every record that is not valid JSON, by index.
pub fn parse_batch<T: DeserializeOwned>(batch: &Batch) -> Result<Vec<T>, PluginError> {
    parse_each(batch, |json| serde_json::from_slice(json))
}

/// Parses every record's value with `parse`; every failure becomes a [`RecordIssue`] for its index.
pub(crate) fn parse_each<T>(
    batch: &Batch,
    parse: impl Fn(&[u8]) -> Result<T, serde_json::Error>,
) -> Result<Vec<T>, PluginError> {
    let mut values = Vec::with_capacity(batch.len());
    let mut issues = Vec::new();
    for (index, record) in batch.iter().enumerate() {
        match parse(&record.value) {
            Ok(value) => values.push(value),
            Err(err) => issues.push(issue(index, &err)),
        }
    }
    if issues.is_empty() { Ok(values) } else { Err(PluginError::InvalidInput(issues)) }
}

fn issue(index: usize, err: &serde_json::Error) -> RecordIssue {
    RecordIssue {
        index: u32::try_from(index).unwrap_or(u32::MAX),
        reasons: vec![format!("value is not valid JSON: {err}")],
    }
}

/// The batch's values as one JSON array (`[v1,v2,…]`), each value checked to be JSON (as strictly as
/// parsing it would) without building it as a tree: what a sink that forwards records as they are needs, at a fraction of the
/// cost of [`parse_batch`] and re-serializing.
///
/// # Errors
/// [`PluginError::InvalidInput`] listing every record that is not valid JSON, by index.
pub fn batch_to_array(batch: &Batch) -> Result<Vec<u8>, PluginError> {
    let mut body = Vec::with_capacity(2 + batch.iter().map(|record| record.value.len() + 1).sum::<usize>());
    let mut issues = Vec::new();
    body.push(b'[');
    for (index, record) in batch.iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        match parse_value::<Checked>(&record.value, index) {
            Ok(_) => {
                if index > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&record.value);
            }
            Err(issue) => issues.push(issue),
        }
    }
    body.push(b']');
    if issues.is_empty() { Ok(body) } else { Err(PluginError::InvalidInput(issues)) }
}

/// A JSON value checked as strictly as parsing it into a `serde_json::Value` would check it (UTF-8
/// and escapes in strings, numbers in range, nesting depth), and then thrown away. `IgnoredAny`
/// would skip strings and numbers without checking them.
pub(crate) struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_refuses_what_parsing_refuses() {
        let check = |json: &[u8]| serde_json::from_slice::<Checked>(json).is_ok();
        let full = |json: &[u8]| serde_json::from_slice::<serde_json::Value>(json).is_ok();
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let cases: [&[u8]; 9] = [
            br#"{"a": [1, 2.5, "x", true, null, {"b": "\u00e9"}]}"#,
            b"\"\xff\"",
            br#""\ud800""#,
            b"1e400",
            br#""\q""#,
            b"[1, }",
            b"{\"a\" 1}",
            b"{} trailing",
            deep.as_bytes(),
        ];
        for json in cases {
            assert_eq!(check(json), full(json), "{}", String::from_utf8_lossy(json));
        }
        assert!(check(cases[0]));
    }
}
