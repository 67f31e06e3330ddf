//! A transformer built against the pinned `plugboard:plugin@0.1.0` WIT
//! (`wit/earlier/plugboard-plugin-0.1.0.wit`) with bare wit-bindgen, as a plugin built before the
//! 0.2.0 contract was: the host must load and run it unchanged, next to current plugins.
//!
//! Each JSON object record gets `"contract": "0.1.0"` and goes on. A record with a `fail` field
//! fails the batch with the 0.1.0 error case it names (`retryable`, `invalid-input` naming that
//! record, `internal`), so a test sees each case cross the contract boundary intact.

#![allow(unsafe_code)]

wit_bindgen::generate!({
    path: ["../../../wit", "../../../wit/earlier/plugboard-plugin-0.1.0.wit"],
    world: "plugboard:plugin/transformer@0.1.0",
    generate_all,
});

use exports::plugboard::plugin0_1_0::transform::Guest;
use plugboard::plugin0_1_0::types::{PluginError, Record, RecordIssue};

struct Contract01;

impl Guest for Contract01 {
    fn transform(input: Vec<Record>) -> Result<Vec<Record>, PluginError> {
        let mut output = Vec::with_capacity(input.len());
        for (index, mut record) in input.into_iter().enumerate() {
            let mut value: serde_json::Value = serde_json::from_slice(&record.value)
                .map_err(|err| PluginError::InvalidInput(vec![issue(index, format!("not JSON: {err}"))]))?;
            match value.get("fail").and_then(serde_json::Value::as_str) {
                Some("retryable") => return Err(PluginError::Retryable(format!("record {index} asked to fail"))),
                Some("invalid-input") => {
                    return Err(PluginError::InvalidInput(vec![issue(index, "asked to be invalid".into())]));
                }
                Some(other) => return Err(PluginError::Internal(format!("record {index} asked for `{other}`"))),
                None => {}
            }
            if let Some(object) = value.as_object_mut() {
                object.insert("contract".into(), "0.1.0".into());
            }
            record.value = value.to_string().into_bytes();
            output.push(record);
        }
        Ok(output)
    }
}

fn issue(index: usize, reason: String) -> RecordIssue {
    RecordIssue { index: u32::try_from(index).unwrap_or(u32::MAX), reasons: vec![reason] }
}

export!(Contract01);
