//! The administration commands: `keys add|ls|revoke` (trusted publisher keys), `tokens
//! create|ls|revoke` (API tokens) and `audit` (the audit log, a page at a time).
//!
//! A token's value is printed once, by `tokens create`, and never again: the server keeps only
//! its hash, so the text says so next to the value.

use crate::cli::{KeysCommand, TokensCommand};
use crate::client::ApiClient;
use crate::commands::{CommandError, Reply};
use crate::render::{self, text};
use serde_json::json;

/// Runs a `plugboard keys` command.
///
/// # Errors
/// [`CommandError::Client`] when the key file is unreadable or the server refuses.
pub async fn keys(api: &ApiClient, command: &KeysCommand) -> Result<Reply, CommandError> {
    Ok(match command {
        KeysCommand::Add { public_key, name } => Reply::new(api.keys_add(public_key, name).await?, |a| {
            format!("trusted key {} ({})", text(&a["key_id"]), text(&a["name"]))
        }),
        KeysCommand::Ls => Reply::new(api.keys_list().await?, render::render_keys),
        KeysCommand::Revoke { id } => {
            Reply::new(api.keys_revoke(id).await?, |a| format!("revoked key {}", text(&a["key_id"])))
        }
    })
}

/// Runs a `plugboard tokens` command.
///
/// # Errors
/// [`CommandError::Client`] when the server refuses (`conflict` for the reserved `admin` name).
pub async fn tokens(api: &ApiClient, command: &TokensCommand) -> Result<Reply, CommandError> {
    Ok(match command {
        TokensCommand::Create { name, role } => Reply::new(api.tokens_create(name, role).await?, |a| {
            format!(
                "created {} token {}:\n{}\n(shown only now: the server keeps its hash, not the value)",
                text(&a["role"]),
                text(&a["name"]),
                text(&a["token"])
            )
        }),
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
