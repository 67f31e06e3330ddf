//! `plugboard connection …`: the operator's connections over HTTP (see
//! [`crate::domain::connections`]). A definition is read from a JSON or YAML file; answers never
//! hold a secret.

use crate::cli::ConnectionCommand;
use crate::client::ApiClient;
use crate::commands::{CommandError, Reply};
use crate::flow_commands::read_document;
use crate::render::text;
use plugboard_api_types::connections::ConnectionList;
use plugboard_api_types::documents::Connection;
use serde_json::json;

fn render_connection(connection: &Connection) -> String {
    let connection = &connection.0;
    let hosts: Vec<String> = connection["hosts"].as_array().into_iter().flatten().map(text).collect();
    let used: Vec<String> = connection["used_by"].as_array().into_iter().flatten().map(text).collect();
    format!(
        "{}  {}  hosts: {}  used by: {}",
        text(&connection["name"]),
        text(&connection["kind"]),
        hosts.join(", "),
        if used.is_empty() { "-".to_string() } else { used.join(", ") }
    )
}

fn render_list(answer: &ConnectionList) -> String {
    let lines: Vec<String> = answer.connections.iter().map(render_connection).collect();
    if lines.is_empty() { "no connections".into() } else { lines.join("\n") }
}

/// Runs a `plugboard connection` command.
///
/// # Errors
/// [`CommandError::Input`] for an unreadable definition, [`CommandError::Client`] when the server
/// refuses.
pub async fn connection(api: &ApiClient, command: &ConnectionCommand) -> Result<Reply, CommandError> {
    Ok(match command {
        ConnectionCommand::Ls => Reply::new(api.connections_list().await?, render_list),
        ConnectionCommand::Show { name } => Reply::new(api.connection(name).await?, render_connection),
        ConnectionCommand::Put { name, file } => {
            let definition = read_document(file)?;
            Reply::new(api.connection_put(name, &definition).await?, render_connection)
        }
        ConnectionCommand::Rm { name } => {
            api.connection_delete(name).await?;
            Reply::text(json!({"deleted": name}), format!("deleted connection {name}"))
        }
        ConnectionCommand::Test { name } => Reply::new(api.connection_test(name).await?, |answer| {
            let outcome = if answer.ok { "ok" } else { "failed" };
            let detail = answer.error.clone().or_else(|| answer.status.map(|s| format!("status {s}")));
            format!("{outcome}{}", detail.map(|d| format!(": {d}")).unwrap_or_default())
        }),
    })
}
