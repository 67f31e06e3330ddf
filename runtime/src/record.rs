//! Records and batches as the host sees them, bound from `plugboard:plugin/types`.
//!
//! The types are the ones `bindgen!` generates from the WIT (one definition, no hand-written
//! copy); this module adds what the host needs around them: JSON conveniences and the byte size
//! that input and output budgets are measured in.

pub use crate::bindings::types::{DelayedRetry, Header, PluginError, Record, RecordIssue};

/// A batch of records.
pub type Batch = Vec<Record>;

/// One page read from a source plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The records of the page.
    pub records: Batch,
    /// Where the next read starts. `Some(c)` becomes the flow's stored cursor once the execution
    /// is stored; `None` leaves the stored cursor as it was, so the next run reads this page again.
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

/// What one record costs against input and output budgets besides its bytes.
pub const RECORD_OVERHEAD_BYTES: usize = 64;

/// What one header costs besides its name and value.
pub const HEADER_OVERHEAD_BYTES: usize = 32;

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

    /// Bytes this record occupies for budget purposes: key, value, header names and values, plus
    /// [`RECORD_OVERHEAD_BYTES`] and [`HEADER_OVERHEAD_BYTES`] per header, so a flood of empty
    /// records is not free (each costs the host an allocation, a dead letter, a line of JSON).
    pub fn byte_size(&self) -> u64 {
        let key = self.key.as_ref().map_or(0, Vec::len);
        let headers: usize = self.headers.iter().map(|h| HEADER_OVERHEAD_BYTES + h.name.len() + h.value.len()).sum();
        (RECORD_OVERHEAD_BYTES + key + self.value.len() + headers) as u64
    }
}

/// Bytes a batch occupies for budget purposes.
pub fn batch_size(batch: &[Record]) -> u64 {
    batch.iter().map(Record::byte_size).sum()
}
