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
