//! Conveniences on [`Record`]: building one from JSON, reading its value as JSON, and headers.

use crate::{Header, PluginError, Record};
use serde::Serialize;
use serde::de::DeserializeOwned;

impl Record {
    /// A record whose value is `value` serialised as JSON, with no key and no headers.
    pub fn from_json<T: Serialize + ?Sized>(value: &T) -> Result<Record, PluginError> {
        let value = serde_json::to_vec(value)
            .map_err(|err| PluginError::Internal(format!("cannot serialise record: {err}")))?;
        Ok(Record { key: None, value, headers: Vec::new() })
    }

    /// This record's value parsed as JSON into `T`.
    ///
    /// # Errors
    /// [`PluginError::InvalidInput`] naming record index 0; use [`crate::json::parse_batch`] to get
    /// every bad record of a batch with its real index.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        crate::json::parse_value(&self.value, 0).map_err(|issue| PluginError::InvalidInput(vec![issue]))
    }

    /// A copy of this record with its value replaced by `value` as JSON; key and headers are kept.
    pub fn with_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<Record, PluginError> {
        let fresh = Record::from_json(value)?;
        Ok(Record { key: self.key.clone(), value: fresh.value, headers: self.headers.clone() })
    }

    /// The value of the first header called `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|header| header.name.eq_ignore_ascii_case(name)).map(|header| header.value.as_slice())
    }

    /// Adds a header.
    pub fn push_header(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.headers.push(Header { name: name.into(), value: value.into() });
    }
}
