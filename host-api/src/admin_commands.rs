//! The administration commands: `keys add|ls|revoke` (trusted publisher keys), `tokens
//! create|ls|revoke` (API tokens), `audit` (the audit log, a page at a time), `whoami`, `metrics`
//! (the recent metrics history) and `samples ls|install` (the sample plugins built into the
//! binary, installed on any server).
//!
//! A token's value is printed once, by `tokens create`, and never again: the server keeps only
//! its hash, so the text says so next to the value.
//!
//! `samples install` does what `serve --demo` does in-process, but through the API as an operator
//! would by hand: sign each sample with a publisher key, make sure the server trusts that key
//! (`POST /v1/keys`, only when asked or when the key was generated for this install), push with
//! activation, and set the demo config (`samples::demo_config`) so the samples answer useful
//! invocations at once. Trusting a key is a security decision, so a key the user brings is trusted
//! only with `--trust`.

use crate::cli::{KeysCommand, SamplesInstall, TokensCommand};
use crate::client::ApiClient;
use crate::commands::{CommandError, Reply};
use crate::render::{self, plain, spelled, table};
use crate::samples::{self, EmbeddedPlugin, SAMPLE_PLUGINS};
use plugboard_runtime::Manifest;
use plugboard_runtime::signing::{self, SecretKey};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;

/// Runs a `plugboard keys` command.
///
/// # Errors
/// [`CommandError::Client`] when the key file is unreadable or the server refuses.
pub async fn keys(api: &ApiClient, command: &KeysCommand) -> Result<Reply, CommandError> {
    Ok(match command {
        KeysCommand::Add { public_key, name } => Reply::new(api.keys_add(public_key, name).await?, |a| {
            format!("trusted key {} ({})", plain(&a.key_id), plain(&a.name))
        }),
        KeysCommand::Ls => Reply::new(api.keys_list().await?, render::render_keys),
        KeysCommand::Revoke { id } => {
            Reply::new(api.keys_revoke(id).await?, |a| format!("revoked key {}", plain(&a.key_id)))
        }
    })
}

/// Runs a `plugboard tokens` command.
///
/// # Errors
/// [`CommandError::Client`] when the server refuses (`conflict` for the reserved `admin` name).
pub async fn tokens(api: &ApiClient, command: &TokensCommand) -> Result<Reply, CommandError> {
    Ok(match command {
        TokensCommand::Create { name, role, plugins, flows } => {
            let role = serde_json::from_value(Value::String(role.clone()))
                .map_err(|_| CommandError::input("--role", format!("`{role}` is not admin, publisher or invoker")))?;
            Reply::new(api.tokens_create(name, role, plugins, flows).await?, |a| {
                format!(
                    "created {} token {}{}:\n{}\n(shown only now: the server keeps its hash, not the value)",
                    spelled(&a.info.role),
                    plain(&a.info.name),
                    render::scope_suffix(a.info.scope.as_ref()),
                    plain(&a.token)
                )
            })
        }
        TokensCommand::Ls => Reply::new(api.tokens_list().await?, render::render_tokens),
        TokensCommand::Revoke { name } => {
            api.tokens_revoke(name).await?;
            Reply::text(json!({"revoked": name}), format!("revoked token {name}"))
        }
    })
}

/// `plugboard audit [--limit N] [--cursor C]`.
///
/// # Errors
/// [`CommandError::Client`] when the server refuses.
pub async fn audit(api: &ApiClient, limit: Option<usize>, cursor: Option<u64>) -> Result<Reply, CommandError> {
    Ok(Reply::new(api.audit_page(limit, cursor).await?, render::render_audit))
}

/// `plugboard whoami`: the token's name, role and scope.
///
/// # Errors
/// The server's refusal (401 for a token it does not know).
pub async fn whoami(api: &ApiClient) -> Result<Reply, CommandError> {
    Ok(Reply::new(api.whoami().await?, |me| {
        format!("{} ({}){}", plain(&me.name), spelled(&me.role), render::scope_suffix(me.scope.as_ref()))
    }))
}

/// `plugboard metrics`: the latest `last` samples of the server's metrics history.
///
/// # Errors
/// The server's refusal.
pub async fn metrics(api: &ApiClient, last: usize) -> Result<Reply, CommandError> {
    let mut answer = api.metrics_history().await?;
    let skip = answer.samples.len().saturating_sub(last);
    answer.samples.drain(..skip);
    Ok(Reply::new(answer, render::render_metrics))
}

/// `plugboard samples ls`: name, kind, version and description of each embedded sample.
///
/// # Errors
/// When printing fails.
pub fn list(out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = SAMPLE_PLUGINS
        .iter()
        .map(|sample| match Manifest::from_toml(sample.manifest) {
            Ok(m) => vec![m.name, m.kind.as_str().to_string(), m.version.to_string(), m.description],
            Err(err) => vec![sample.name.to_string(), "-".into(), "-".into(), format!("invalid manifest: {err}")],
        })
        .collect();
    writeln!(out, "{}", table(&["name", "kind", "version", "description"], &rows))
}

fn chosen(only: &[String]) -> Result<Vec<&'static EmbeddedPlugin>, CommandError> {
    if only.is_empty() {
        return Ok(SAMPLE_PLUGINS.iter().collect());
    }
    only.iter()
        .map(|name| {
            SAMPLE_PLUGINS.iter().find(|s| s.name == name).ok_or_else(|| {
                let names: Vec<&str> = SAMPLE_PLUGINS.iter().map(|s| s.name).collect();
                CommandError::input(format!("--only {name}"), format!("no such sample; there are {}", names.join(", ")))
            })
        })
        .collect()
}

/// The signing key, and whether it was generated now.
fn signing_key(args: &SamplesInstall) -> Result<(SecretKey, bool), CommandError> {
    let local = |err: signing::SignatureError| CommandError::Local(err.into());
    match &args.key {
        Some(path) if path.exists() => Ok((SecretKey::from_file(path).map_err(local)?, false)),
        Some(path) => {
            let key = SecretKey::generate().map_err(local)?;
            key.write_files(path).map_err(local)?;
            Ok((key, true))
        }
        None => Ok((SecretKey::generate().map_err(local)?, true)),
    }
}

/// Makes sure the server trusts `key`; answers what was done (`trusted`, `already trusted`).
async fn ensure_trusted(api: &ApiClient, key: &SecretKey, may_trust: bool) -> Result<&'static str, CommandError> {
    let public = key.public();
    let key_id = public.key_id();
    let keys = api.keys_list().await?;
    let known = keys.keys.iter().find(|k| k.key_id == key_id);
    match known {
        Some(entry) if entry.revoked_at.is_some() => {
            Err(CommandError::input(format!("key {key_id}"), "is revoked on the server; sign with another key"))
        }
        Some(_) => Ok("already trusted"),
        None if may_trust => {
            api.keys_add_bytes(&public.to_bytes(), "samples publisher").await?;
            Ok("trusted now")
        }
        None => Err(CommandError::input(
            format!("key {key_id}"),
            "is not trusted by the server: pass --trust, or `plugboard keys add` its .pub file",
        )),
    }
}

/// `plugboard samples install`: signs, trusts (if asked or generated), pushes with activation
/// and configures each chosen sample; answers `{"key_id", "key", "installed": [...]}`.
///
/// # Errors
/// [`CommandError::Input`] for an unknown sample or an untrusted key; [`CommandError::Client`]
/// when the server refuses a step (what was installed before stays).
pub async fn install(api: &ApiClient, args: &SamplesInstall) -> Result<Reply, CommandError> {
    let samples = chosen(&args.only)?;
    let (key, generated) = signing_key(args)?;
    let trust = ensure_trusted(api, &key, generated || args.trust).await?;
    let mut installed = Vec::new();
    for sample in samples {
        let manifest = Manifest::from_toml(sample.manifest).map_err(|err| CommandError::Local(err.into()))?;
        let signed = signing::sign(sample.component, &manifest, &key).map_err(|err| CommandError::Local(err.into()))?;
        let pushed = api.push_bytes(signed, true).await?;
        let config = samples::demo_config(sample.name);
        let values: BTreeMap<String, String> = config
            .as_object()
            .map(|map| {
                map.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect()
            })
            .unwrap_or_default();
        let configured = !args.no_config && !values.is_empty();
        if configured {
            api.set_config(sample.name, &values, &BTreeMap::new()).await?;
        }
        installed.push(Installed { pushed, configured });
    }
    let answer = SamplesInstalled { key_id: key.public().key_id(), key: trust, installed };
    Ok(Reply::new(answer, render_install))
}

/// What `samples install` answers: the signing key, whether the server trusted it now, and each
/// sample as the server installed it.
#[derive(serde::Serialize)]
struct SamplesInstalled {
    key_id: String,
    key: &'static str,
    installed: Vec<Installed>,
}

/// One installed sample: the server's answer, and whether its demo config was set.
#[derive(serde::Serialize)]
struct Installed {
    #[serde(flatten)]
    pushed: plugboard_api_types::plugins::Installed,
    configured: bool,
}

fn render_install(answer: &SamplesInstalled) -> String {
    let rows: Vec<Vec<String>> = answer
        .installed
        .iter()
        .map(|p| {
            let config = if p.configured { "demo config" } else { "-" };
            let v = &p.pushed.version;
            vec![plain(&v.name), plain(&v.version), spelled(&p.pushed.status), config.to_string()]
        })
        .collect();
    format!(
        "signed with key {} ({})\n{}",
        answer.key_id,
        answer.key,
        table(&["name", "version", "status", "config"], &rows)
    )
}
