//! The Rust template: a crate depending on `plugboard-plugin-sdk` by path, built by `cargo build
//! --release --target wasm32-wasip2`. Each project is its own Cargo workspace, so creating one
//! inside another workspace does not enrol it there.

use plugboard_runtime::Kind;
use std::path::Path;

/// The files of a Rust project besides the shared ones.
pub(super) fn files(name: &str, kind: Kind, sdk: &Path) -> Vec<(&'static str, String)> {
    vec![("Cargo.toml", cargo_toml(name, sdk)), ("src/lib.rs", lib_rs(kind))]
}

/// Whether `sdk` is the Rust SDK.
pub(super) fn is_sdk(sdk: &Path) -> bool {
    sdk.join("Cargo.toml").is_file()
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
plugboard-plugin-sdk = {{ path = {sdk:?} }}
serde_json = "1"

# Its own workspace: not enrolled in one it happens to sit in.
[workspace]

# Guests run on every record: optimise; keep function names so traps name them.
[profile.release]
opt-level = 3
panic = "abort"
strip = "debuginfo"
"#,
        sdk = sdk.display().to_string()
    )
}

fn lib_rs(kind: Kind) -> String {
    match kind {
        Kind::Transformer => r#"//! A transformer: each JSON object record gets a `tag` field with the configured value.

use plugboard_plugin_sdk::{Batch, PluginError, Transformer, config, json, log};
use serde_json::Value;

struct Plugin;

impl Transformer for Plugin {
    fn transform(input: Batch) -> Result<Batch, PluginError> {
        let tag = config::get("tag")?.unwrap_or_else(|| "untagged".to_string());
        let values: Vec<Value> = json::parse_batch(&input)?;
        log::info(&format!("tagging {} records", values.len()));
        input
            .iter()
            .zip(values)
            .map(|(record, mut value)| {
                if let Value::Object(fields) = &mut value {
                    fields.insert("tag".into(), Value::String(tag.clone()));
                }
                record.with_json(&value)
            })
            .collect()
    }
}

plugboard_plugin_sdk::export_transformer!(Plugin);
"#
        .to_string(),
        Kind::Source => r#"//! A source: numbered records, `max_records` per page; the cursor is the next number, so a flow
//! resumes where its last stored execution ended. Replace `fetch` with a call to a real system
//! (`plugboard_plugin_sdk::http`, with its host in the manifest's `outbound_hosts`).

use plugboard_plugin_sdk::{Page, PluginError, Record, Source, config};
use serde_json::json;

/// Records in the pretend outside system.
const TOTAL: u64 = 10;

struct Plugin;

fn fetch(from: u64, count: u64, prefix: &str) -> Result<Vec<Record>, PluginError> {
    (from..(from + count).min(TOTAL)).map(|n| Record::from_json(&json!({"id": format!("{prefix}{n}"), "n": n}))).collect()
}

impl Source for Plugin {
    fn read(cursor: Option<String>, max_records: u32) -> Result<Page, PluginError> {
        let from = match cursor {
            Some(cursor) => cursor.parse().map_err(|_| PluginError::Internal(format!("cursor `{cursor}` is not a record number")))?,
            None => 0,
        };
        let prefix = config::get("prefix")?.unwrap_or_default();
        let records = fetch(from, u64::from(max_records), &prefix)?;
        // Always the position after the last record read, so later runs read only what is new.
        let next = from + records.len() as u64;
        Ok(Page { records, next_cursor: Some(next.to_string()) })
    }
}

plugboard_plugin_sdk::export_source!(Plugin);
"#
        .to_string(),
        Kind::Sink => r#"//! A sink: logs every JSON record and reports them accepted. Replace the loop with a delivery
//! to a real system (`plugboard_plugin_sdk::http`, with its host in the manifest's
//! `outbound_hosts`); return `PluginError::Retryable` for failures worth retrying.

use plugboard_plugin_sdk::{Batch, PluginError, Sink, WriteReport, json, log};
use serde_json::Value;

struct Plugin;

impl Sink for Plugin {
    fn write(input: Batch) -> Result<WriteReport, PluginError> {
        let values: Vec<Value> = json::parse_batch(&input)?;
        for value in &values {
            log::info(&format!("delivered {value}"));
        }
        Ok(WriteReport { accepted: values.len() as u32, failed: 0 })
    }
}

plugboard_plugin_sdk::export_sink!(Plugin);
"#
        .to_string(),
    }
}
