//! `plugboard run`: invoke one plugin locally, the way a plugin author tries a build.

use anyhow::{Context, bail};
use plugboard_runtime::{Grant, Manifest, Record, Runtime, RuntimeConfig};
use std::path::PathBuf;

pub async fn run(
    component: PathBuf,
    manifest: PathBuf,
    config: Vec<String>,
    allow_hosts: Vec<String>,
    input: Option<PathBuf>,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(&component).with_context(|| format!("reading {}", component.display()))?;
    let text = std::fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let manifest = Manifest::from_toml(&text)?;
    let mut grant = Grant { outbound_hosts: allow_hosts, ..Grant::default() };
    for pair in config {
        let Some((key, value)) = pair.split_once('=') else { bail!("--config expects KEY=VALUE, got `{pair}`") };
        if manifest.capabilities.secret_keys.iter().any(|k| k == key) {
            grant.secrets.insert(key.into(), value.into());
        } else {
            grant.config.insert(key.into(), value.into());
        }
    }
    let records: Vec<Record> = match input {
        None => Vec::new(),
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
            };
            let values: Vec<serde_json::Value> = serde_json::from_str(&text).context("input must be a JSON array")?;
            values.iter().map(Record::json).collect()
        }
    };
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let plugin = runtime.load(&bytes, manifest.clone(), &grant)?;
    let (output, usage, logs) = match manifest.kind {
        plugboard_runtime::Kind::Transformer => {
            let out = plugin.transform(records).await;
            (out.outcome.map(|batch| json_values(&batch)), out.usage, out.logs)
        }
        plugboard_runtime::Kind::Source => {
            let out = plugin.read(None, 100).await;
            let page = out.outcome.map(
                |page| serde_json::json!({"records": json_values(&page.records), "next_cursor": page.next_cursor}),
            );
            (page, out.usage, out.logs)
        }
        plugboard_runtime::Kind::Sink => {
            let out = plugin.write(records).await;
            (out.outcome.map(|report| serde_json::json!(report)), out.usage, out.logs)
        }
    };
    for entry in &logs.entries {
        eprintln!("[{:?} {}] {}", entry.level, entry.context, entry.message);
    }
    eprintln!(
        "usage: {} fuel, {:?}, {} bytes peak memory",
        usage.fuel_consumed, usage.wall_time, usage.peak_memory_bytes
    );
    match output {
        Ok(value) => {
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(())
        }
        Err(err) => bail!("{} ({})", err, err.code()),
    }
}

fn json_values(batch: &[Record]) -> serde_json::Value {
    batch
        .iter()
        .map(|r| r.to_json().unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&r.value).into())))
        .collect()
}
