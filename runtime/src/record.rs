//! Records and batches as the host sees them, bound from `plugboard:plugin/types`.
//!
//! The types are the ones `bindgen!` generates from the WIT (one definition, no hand-written
//! copy); this module adds what the host needs around them: JSON conveniences and the byte size
//! that input and output budgets are measured in.

pub use crate::bindings::types::{Header, PluginError, Record, RecordIssue};

/// A batch of records.
pub type Batch = Vec<Record>;

/// One page read from a source plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The records of the page.
    pub records: Batch,
    /// Where the next read starts; `None` when the source has nothing more for now.
    pub next_cursor: Option<String>,
}

/// What a sink plugin reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WriteReport {
    /// Records the outside system accepted.
    pub accepted: u32,
    /// Records the outside system rejected.
    pub failed: u32,
}

impl Record {
    /// A record holding `value` as JSON, with no key and no headers.
    pub fn json(value: &serde_json::Value) -> Record {
        Record { key: None, value: value.to_string().into_bytes(), headers: Vec::new() }
    }

    /// The value parsed as JSON.
    ///
    /// # Errors
    /// When the value is not valid JSON.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.value)
    }

    /// Bytes this record occupies for budget purposes: key, value, header names and values.
    pub fn byte_size(&self) -> u64 {
        let key = self.key.as_ref().map_or(0, Vec::len);
        let headers: usize = self.headers.iter().map(|h| h.name.len() + h.value.len()).sum();
        (key + self.value.len() + headers) as u64
    }
}

/// Bytes a batch occupies for budget purposes.
pub fn batch_size(batch: &[Record]) -> u64 {
    batch.iter().map(Record::byte_size).sum()
}
