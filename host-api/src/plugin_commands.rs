//! The plugin commands: `push`, `ls`, `show`, `health`, `activate`, `deactivate`, `delete`,
//! `grant`, `config set`, `invoke`.
//!
//! Each builds the request body the server's handler takes (see `api/plugins.rs`), so operators
//! never guess a JSON shape, and answers a [`Reply`]. `grant` and `config set` replace what the
//! plugin had, as the API does: a merge would be a read-modify-write race between two operators,
//! and secrets cannot be read back to merge anyway. Both print the resulting state.

use crate::cli::{BudgetArgs, ConfigCommand};
use crate::client::ApiClient;
use crate::commands::{CommandError, Reply};
use crate::flow_commands::read_records;
use crate::render::{self, maybe, plain, spelled};
use plugboard_api_types::plugins::{BudgetLimits, Grants, Health};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// `plugboard push FILE [--activate]`.
pub async fn push(api: &ApiClient, file: &Path, activate: bool) -> Result<Reply, CommandError> {
    Ok(Reply::new(api.push(file, activate).await?, |a| {
        let v = &a.version;
        format!(
            "{} {} uploaded ({}), digest {}",
            plain(&v.name),
            plain(&v.version),
            spelled(&a.status),
            plain(&v.digest)
        )
    }))
}

/// `plugboard ls`.
pub async fn list(api: &ApiClient) -> Result<Reply, CommandError> {
    Ok(Reply::new(api.list().await?, render::render_plugins))
}

/// `plugboard show NAME`.
pub async fn show(api: &ApiClient, name: &str) -> Result<Reply, CommandError> {
    Ok(Reply::new(api.plugin(name).await?, render::render_plugin))
}

/// `plugboard health NAME`: status 1 unless the active version is loaded.
pub async fn health(api: &ApiClient, name: &str) -> Result<Reply, CommandError> {
    let answer = api.health(name).await?;
    let mut reply = Reply::text(&answer, String::new());
    match &answer {
        Health::Ready { version, compiled } => {
            reply.text = format!("{name}: ready ({version} {})", spelled(compiled));
        }
        Health::Failed { error } => {
            reply.text = format!("{name}: failed: {}", render::plain(error));
            reply.failure = Some(format!("{name} failed to load: {}", render::plain(error)));
        }
        Health::Inactive => {
            reply.text = format!("{name}: inactive");
            reply.failure = Some(format!("{name} has no active version"));
        }
    }
    Ok(reply)
}

/// `plugboard activate NAME VERSION [--allow-rollback]`.
pub async fn activate(api: &ApiClient, name: &str, version: &str, allow_rollback: bool) -> Result<Reply, CommandError> {
    Ok(Reply::new(api.activate(name, version, allow_rollback).await?, |a| {
        format!("{} now runs {}", plain(&a.name), maybe(a.active_version.as_ref()))
    }))
}

/// `plugboard deactivate NAME`.
pub async fn deactivate(api: &ApiClient, name: &str) -> Result<Reply, CommandError> {
    let answer = api.deactivate(name).await?;
    Ok(Reply::text(answer, format!("{name} deactivated")))
}

/// `plugboard delete NAME [--version V]`.
pub async fn delete(api: &ApiClient, name: &str, version: Option<&str>) -> Result<Reply, CommandError> {
    api.delete(name, version).await?;
    let what = version.map_or_else(|| format!("{name} (every version)"), |v| format!("{name} {v}"));
    Ok(Reply::text(json!({"deleted": name, "version": version}), format!("deleted {what}")))
}

/// The outbound hosts of a grant: patterns, and whether names among them may be private.
pub struct HostGrant {
    /// Host patterns.
    pub patterns: Vec<String>,
    /// See [`plugboard_runtime::Grant::allow_private`].
    pub allow_private: bool,
}

/// `plugboard grant NAME --allow-host H --bucket B --fuel N …`.
pub async fn grant(
    api: &ApiClient,
    name: &str,
    hosts: HostGrant,
    key_value: Vec<String>,
    connections: Vec<String>,
    budget: &BudgetArgs,
) -> Result<Reply, CommandError> {
    let budget = BudgetLimits {
        fuel: budget.fuel,
        timeout_ms: budget.timeout_ms,
        memory_bytes: budget.memory_bytes,
        max_input_bytes: budget.max_input_bytes,
        max_output_bytes: budget.max_output_bytes,
        max_records: budget.max_records,
    };
    let connections = connections
        .iter()
        .map(|binding| match binding.split_once('=') {
            Some((wanted, connection)) => (wanted.to_string(), connection.to_string()),
            None => (binding.clone(), binding.clone()),
        })
        .collect();
    let grants =
        Grants { outbound_hosts: hosts.patterns, key_value, connections, allow_private: hosts.allow_private, budget };
    let answer = api.set_grants(name, &grants).await?;
    let text = format!("granted {name}:\n{}", render::render_grants(&answer));
    Ok(Reply::text(answer, text))
}

/// Splits `KEY=VALUE`; a malformed pair is quoted in the error unless it is a `--secret`'s (it
/// may be the secret itself).
pub fn key_value(pair: &str, flag: &str) -> Result<(String, String), CommandError> {
    match pair.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ if flag == SECRET_FLAG => Err(CommandError::input(flag, "expected KEY=VALUE (the value is not shown)")),
        _ => Err(CommandError::input(flag, format!("expected KEY=VALUE, got `{pair}`"))),
    }
}

/// The flag secrets are given with.
const SECRET_FLAG: &str = "--secret";

/// A secret's value: `@FILE` reads it from a file (`@-` from stdin), without the trailing newline.
fn secret_value(key: &str, value: String) -> Result<String, CommandError> {
    let Some(path) = value.strip_prefix('@') else { return Ok(value) };
    let read = if path == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) };
    let text = read.map_err(|err| CommandError::input(format!("--secret {key}=@{path}"), err.to_string()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// `plugboard config set NAME KEY=VALUE… [--secret KEY=VALUE]…`.
pub async fn config(api: &ApiClient, command: &ConfigCommand) -> Result<Reply, CommandError> {
    let ConfigCommand::Set { name, values, secrets } = command;
    let values: BTreeMap<String, String> =
        values.iter().map(|pair| key_value(pair, "KEY=VALUE")).collect::<Result<_, _>>()?;
    let mut secret_values = BTreeMap::new();
    for pair in secrets {
        let (key, value) = key_value(pair, SECRET_FLAG)?;
        let value = secret_value(&key, value)?;
        secret_values.insert(key, value);
    }
    let answer = api.set_config(name, &values, &secret_values).await?;
    let text = format!("configured {name}:\n{}", render::render_config(&answer));
    Ok(Reply::text(answer, text))
}

/// `plugboard invoke NAME [--input FILE] [--cursor C] [--max-records N]`: status 1 when the
/// plugin failed (the server answers its error with usage and logs, printed on stderr).
pub async fn invoke(
    api: &ApiClient,
    name: &str,
    input: Option<&Path>,
    cursor: Option<&str>,
    max_records: Option<u32>,
) -> Result<Reply, CommandError> {
    let records = match input {
        None => Vec::new(),
        Some(path) => match read_records(path)? {
            serde_json::Value::Array(records) => records,
            other => vec![other],
        },
    };
    Ok(Reply::new(api.invoke(name, records, cursor, max_records).await?, render::render_invocation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_secret_pair_is_not_echoed() {
        for pair in ["hunter2", "=hunter2"] {
            let err = key_value(pair, SECRET_FLAG).expect_err("malformed");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let err = key_value("plain", "KEY=VALUE").expect_err("malformed");
        assert!(err.to_string().contains("`plain`"), "{err}");
    }
}
