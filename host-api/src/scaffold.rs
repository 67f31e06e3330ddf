//! `plugboard new --lang rust --kind transformer|source|sink NAME`: a plugin project that builds
//! and runs as it is, so an author starts from working code, a manifest and a test input instead
//! of a blank page.
//!
//! The project depends on the SDK by path. By default that is the SDK beside the host this binary
//! was built from (`plugin-sdk/` of the same checkout); `--sdk` points elsewhere. Each project is its
//! own Cargo workspace, so creating one inside another workspace does not enrol it there. Other
//! languages (Python, JavaScript) will add their own templates here.

use crate::commands::CommandError;
use plugboard_runtime::Kind;
use std::path::{Path, PathBuf};

/// The SDK of the checkout this binary was built from.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk")
}

/// What `plugboard new` wrote.
#[derive(Debug)]
pub struct Created {
    /// The project directory.
    pub dir: PathBuf,
    /// The files, relative to it.
    pub files: Vec<&'static str>,
}

/// Creates project `name` of `kind` in `parent/name`, depending on the SDK at `sdk`.
///
/// # Errors
/// [`CommandError::Input`] for a name that is not a plugin name, an existing directory, or an SDK
/// path without the SDK; I/O errors writing the files.
pub fn create(parent: &Path, name: &str, kind: Kind, sdk: &Path) -> Result<Created, CommandError> {
    let probe = plugboard_runtime::Manifest {
        name: name.to_string(),
        version: semver::Version::new(0, 1, 0),
        kind,
        world: None,
        description: String::new(),
        author: String::new(),
        capabilities: Default::default(),
        budget: Default::default(),
    };
    probe.validate().map_err(|err| CommandError::input(name, err.message()))?;
    let sdk = sdk.canonicalize().map_err(|err| CommandError::input(sdk.display(), err.to_string()))?;
    if !sdk.join("Cargo.toml").is_file() {
        return Err(CommandError::input(
            sdk.display(),
            "not the plugin SDK (no Cargo.toml); pass --sdk PATH/plugin-sdk",
        ));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(CommandError::input(dir.display(), "already exists"));
    }
    let files: [(&'static str, String); 5] = [
        ("Cargo.toml", cargo_toml(name, &sdk)),
        ("plugin.toml", plugin_toml(name, kind)),
        ("src/lib.rs", lib_rs(kind)),
        ("input.json", input_json(kind).to_string()),
        ("README.md", readme(name, kind)),
    ];
    std::fs::create_dir_all(dir.join("src")).map_err(|err| CommandError::input(dir.display(), err.to_string()))?;
    for (file, text) in &files {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(|err| CommandError::input(path.display(), err.to_string()))?;
    }
    Ok(Created { dir, files: files.iter().map(|(file, _)| *file).collect() })
}

/// The component `cargo build --release --target wasm32-wasip2` writes, relative to the project.
pub fn component_path(name: &str) -> String {
    format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_"))
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

fn plugin_toml(name: &str, kind: Kind) -> String {
    let (description, capabilities) = match kind {
        Kind::Transformer => ("Tags each JSON record with a field set in config.", "config_keys = [\"tag\"]"),
        Kind::Source => {
            ("Reads numbered records, a page at a time, resuming from its cursor.", "config_keys = [\"prefix\"]")
        }
        Kind::Sink => ("Accepts JSON records and logs each one (replace with a real delivery).", "outbound_hosts = []"),
    };
    format!(
        r#"# The manifest: what the plugin is and what it asks for (see docs/MANIFEST.md in Plugboard).
name = "{name}"
version = "0.1.0"
kind = "{kind}"
description = "{description}"
author = ""

[capabilities]
{capabilities}

[budget]
fuel = 1_000_000_000
timeout_ms = 2_000
"#,
        kind = kind.as_str()
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

/// A test input for `plugboard run`: records for transformers and sinks, none for a source.
fn input_json(kind: Kind) -> &'static str {
    match kind {
        Kind::Transformer | Kind::Sink => {
            "[{\"order\": \"A1\", \"total\": 12.5}, {\"order\": \"A2\", \"total\": 40}]\n"
        }
        Kind::Source => "[]\n",
    }
}

fn readme(name: &str, kind: Kind) -> String {
    let run = match kind {
        Kind::Transformer => {
            format!("plugboard run {} --manifest plugin.toml --config tag=new --input input.json", component_path(name))
        }
        Kind::Source => {
            format!("plugboard run {} --manifest plugin.toml --max-records 3 --cursor 0", component_path(name))
        }
        Kind::Sink => format!("plugboard run {} --manifest plugin.toml --input input.json", component_path(name)),
    };
    format!(
        "# {name}\n\nA Plugboard {kind} plugin.\n\n```sh\nrustup target add wasm32-wasip2   # once\ncargo build --release --target wasm32-wasip2\n{run}\n```\n\nThen sign and publish it: `plugboard sign --key KEY --manifest plugin.toml {component} -o {name}.signed.wasm` and\n`plugboard push {name}.signed.wasm --activate`.\n",
        kind = kind.as_str(),
        component = component_path(name),
    )
}
