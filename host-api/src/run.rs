//! `plugboard run`: invoke one plugin locally, the way a plugin author tries a build.
//!
//! Nothing is granted but what the flags say (`--config`, `--allow-host`, `--allow-bucket`), so a
//! run shows what the plugin would do under exactly that grant. Key-value buckets live in the
//! runtime's in-memory store ([`plugboard_runtime::MemoryKeyValue`]) for this one run: every run
//! starts empty, which keeps local tries repeatable and leaves no files behind. (A plugin that
//! needs earlier state is better tried against a server, where buckets are durable.)
//!
//! Compiled components are kept in the user's cache (`--cache-dir`, `--no-cache`), verified as
//! a server's are, so trying a Python or JavaScript build again costs milliseconds, not seconds.
//!
//! The output goes to stdout as JSON; logs and usage go to stderr, so the output pipes cleanly.
//! A plugin that fails makes the command fail: `error: CODE: MESSAGE`, status 1.

use crate::cli::RunArgs;
use crate::commands::{CommandError, Io};
use crate::plugin_commands::key_value;
use anyhow::Context;
use plugboard_runtime::{Grant, Kind, Manifest, Record, Runtime, RuntimeConfig};
use serde_json::{Value, json};

/// The grant the flags describe; `--config` keys the manifest lists as secrets become secrets.
fn grant(args: &RunArgs, manifest: &Manifest) -> Result<Grant, CommandError> {
    let mut grant =
        Grant { outbound_hosts: args.allow_hosts.clone(), key_value: args.allow_buckets.clone(), ..Grant::default() };
    for pair in &args.config {
        let (key, value) = key_value(pair, "--config")?;
        if manifest.capabilities.secret_keys.contains(&key) {
            grant.secrets.insert(key, value);
        } else {
            grant.config.insert(key, value);
        }
    }
    Ok(grant)
}

fn records(args: &RunArgs) -> Result<Vec<Record>, CommandError> {
    let Some(path) = &args.input else { return Ok(Vec::new()) };
    let text =
        if path.as_os_str() == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) }
            .map_err(|err| CommandError::input(path.display(), err.to_string()))?;
    let document: Value = serde_json::from_str(&text)
        .map_err(|err| CommandError::input(path.display(), format!("expected JSON records: {err}")))?;
    let values = crate::flow_commands::records_in(document).ok_or_else(|| {
        CommandError::input(path.display(), "expected an array of records, {\"records\": [...]} or one JSON object")
    })?;
    Ok(values.iter().map(Record::json).collect())
}

/// The user's cache for compiled components: `$XDG_CACHE_HOME/plugboard`, else
/// `~/.cache/plugboard`; none without either.
fn default_cache_dir() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()).map(std::path::PathBuf::from).or_else(
        || {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| std::path::PathBuf::from(home).join(".cache"))
        },
    )?;
    Some(base.join("plugboard"))
}

/// Runs the component once and prints its output; fails when the plugin failed.
///
/// # Errors
/// Unreadable files, a bad manifest or grant, a component that does not load, and
/// [`CommandError::Failed`] (`CODE: MESSAGE`) when the plugin's invocation failed.
pub async fn run(args: &RunArgs, io: &mut Io<'_>) -> Result<(), CommandError> {
    let bytes = std::fs::read(&args.component).with_context(|| format!("reading {}", args.component.display()))?;
    let text =
        std::fs::read_to_string(&args.manifest).with_context(|| format!("reading {}", args.manifest.display()))?;
    let manifest = Manifest::from_toml(&text).map_err(anyhow::Error::from)?;
    let grant = grant(args, &manifest)?;
    let records = records(args)?;
    let cache_dir = if args.no_cache { None } else { args.cache_dir.clone().or_else(default_cache_dir) };
    let runtime = match Runtime::new(RuntimeConfig { cache_dir: cache_dir.clone(), ..RuntimeConfig::default() }) {
        Ok(runtime) => runtime,
        // A cache that cannot be opened (a read-only home) only costs time: run without it.
        Err(err) if cache_dir.is_some() => {
            writeln!(io.err, "warning: compiling without a cache: {err}")?;
            Runtime::new(RuntimeConfig::default()).map_err(anyhow::Error::from)?
        }
        Err(err) => return Err(anyhow::Error::from(err).into()),
    };
    let plugin = runtime.load(&bytes, manifest.clone(), &grant).map_err(anyhow::Error::from)?;
    let (output, usage, logs) = match manifest.kind {
        Kind::Transformer => {
            let out = plugin.transform(records).await;
            (out.outcome.map(|batch| json_values(&batch)), out.usage, out.logs)
        }
        Kind::Source => {
            let out = plugin.read(args.cursor.clone(), args.max_records).await;
            let page =
                out.outcome.map(|page| json!({"records": json_values(&page.records), "next_cursor": page.next_cursor}));
            (page, out.usage, out.logs)
        }
        Kind::Sink => {
            let out = plugin.write(records).await;
            (out.outcome.map(|report| json!(report)), out.usage, out.logs)
        }
    };
    for entry in &logs.entries {
        writeln!(io.err, "[{:?} {}] {}", entry.level, entry.context, entry.message)?;
    }
    writeln!(
        io.err,
        "usage: {} fuel, {:?}, {} bytes peak memory",
        usage.fuel_consumed, usage.wall_time, usage.peak_memory_bytes
    )?;
    match output {
        Ok(value) => {
            writeln!(io.out, "{}", serde_json::to_string_pretty(&value).unwrap_or_default())?;
            Ok(())
        }
        Err(err) => {
            if let plugboard_runtime::Error::GuestTrap { backtrace, .. } = &err
                && !backtrace.is_empty()
            {
                let frames = crate::render::backtrace(&json!(backtrace));
                writeln!(io.err, "backtrace:\n{}", frames.join("\n"))?;
            }
            if err.code() == plugboard_runtime::ErrorCode::CapabilityDenied {
                // The host's reason names the server's `plugboard grant`; a local run grants by flags.
                writeln!(
                    io.err,
                    "hint: `plugboard run` grants only what its flags say: --allow-host HOST, --allow-bucket BUCKET, \
                     --config KEY=VALUE"
                )?;
            }
            Err(CommandError::Failed(format!("{}: {}", err.code(), err.message())))
        }
    }
}

fn json_values(batch: &[Record]) -> Value {
    batch
        .iter()
        .map(|r| r.to_json().unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.value).into())))
        .collect()
}
