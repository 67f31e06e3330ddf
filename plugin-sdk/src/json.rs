//! JSON helpers for batches: parse every record, report every bad one with its index.

use crate::{Batch, PluginError, RecordIssue};
use serde::de::DeserializeOwned;

/// Parses one record value as JSON; `index` is the record's position, used in the issue.
///
/// # Errors
/// A [`RecordIssue`] for `index` with serde's reason.
pub fn parse_value<T: DeserializeOwned>(value: &[u8], index: u32) -> Result<T, RecordIssue> {
    serde_json::from_slice(value)
        .map_err(|err| RecordIssue { index, reasons: vec![format!("value is not valid JSON: {err}")] })
}

/// Parses every record of `batch` as JSON.
///
/// # Errors
/// [`PluginError::InvalidInput`] listing every record that is not valid JSON, by index.
pub fn parse_batch<T: DeserializeOwned>(batch: &Batch) -> Result<Vec<T>, PluginError> {
    let mut values = Vec::with_capacity(batch.len());
    let mut issues = Vec::new();
    for (index, record) in batch.iter().enumerate() {
        match parse_value(&record.value, u32::try_from(index).unwrap_or(u32::MAX)) {
            Ok(value) => values.push(value),
            Err(issue) => issues.push(issue),
        }
    }
    if issues.is_empty() { Ok(values) } else { Err(PluginError::InvalidInput(issues)) }
}

/// The batch's values as one JSON array (`[v1,v2,…]`), each value checked to be JSON without
/// building it as a tree: what a sink that forwards records as they are needs, at a fraction of the
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
        match parse_value::<serde::de::IgnoredAny>(&record.value, index) {
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
