//! The `plugboard flow` and `plugboard dlq` commands: apply a definition file, list, show, delete
//! and run flows, read executions, set the webhook secret, list, replay and delete dead letters.
//!
//! Definitions are JSON on the wire; the CLI also reads YAML (by the file's `.yaml`/`.yml`
//! extension, or for stdin when the text is not JSON), since flows are usually kept in repositories
//! next to other YAML. `apply` replaces the flow when it exists and creates it when it does not, so
//! running it twice is harmless.
//!
//! A run whose execution failed is a failed command (status 1), and its text names the failing
//! step with the error's code and message (see `execution_report.rs`).

use crate::cli::{DlqCommand, FlowCommand};
use crate::client::ApiClient;
use crate::commands::{CommandError, Reply};
use crate::execution_report::{failure_summary, render_execution, render_executions};
use crate::render::{table, text, time};
use plugboard_api_types::flows::{DeadLetterPage, DeliveryState, FlowList};
use serde_json::{Value, json};
use std::path::Path;

/// Reads a JSON or YAML document; `-` reads stdin.
///
/// # Errors
/// [`CommandError::Input`] when it cannot be read or parsed.
pub fn read_document(path: &Path) -> Result<Value, CommandError> {
    let shown = path.display().to_string();
    let input_error = |reason: String| CommandError::input(&shown, reason);
    let text =
        if path.as_os_str() == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) }
            .map_err(|err| input_error(err.to_string()))?;
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match extension.as_str() {
        "yaml" | "yml" => serde_yaml_ng::from_str(&text).map_err(|err| input_error(format!("invalid YAML: {err}"))),
        "json" => serde_json::from_str(&text).map_err(|err| input_error(format!("invalid JSON: {err}"))),
        _ => serde_json::from_str(&text).or_else(|json_err| {
            serde_yaml_ng::from_str(&text)
                .map_err(|_| input_error(format!("neither JSON nor YAML (as JSON: {json_err})")))
        }),
    }
}

/// Input records from a file: an array, `{"records": [...]}`, or any other JSON object as one
/// record (a webhook `event` body, saved from a sender, runs as it would arrive).
///
/// # Errors
/// [`CommandError::Input`] for an unreadable file or another shape.
pub fn read_records(path: &Path) -> Result<Value, CommandError> {
    records_in(read_document(path)?).map(Value::Array).ok_or_else(|| {
        CommandError::input(path.display(), "expected an array of records, {\"records\": [...]} or one JSON object")
    })
}

/// The records a document holds: an array's items, `{"records": [...]}`'s, or an object as one.
pub fn records_in(document: Value) -> Option<Vec<Value>> {
    match document {
        Value::Array(records) => Some(records),
        Value::Object(mut object) if matches!(object.get("records"), Some(Value::Array(_))) => {
            match object.remove("records") {
                Some(Value::Array(records)) => Some(records),
                _ => None,
            }
        }
        object @ Value::Object(_) => Some(vec![object]),
        _ => None,
    }
}

/// Runs a `plugboard flow` command.
///
/// # Errors
/// [`CommandError::Input`] for an unreadable or malformed file, before anything is sent;
/// [`CommandError::Client`] when the server refuses (with its stable `code`). A run whose
/// execution failed is a [`Reply`] with its `failure` set.
pub async fn flow(client: &ApiClient, command: &FlowCommand) -> Result<Reply, CommandError> {
    Ok(match command {
        FlowCommand::Apply { file } => {
            let definition = read_document(file)?;
            if !definition["name"].is_string() {
                return Err(CommandError::input(file.display(), "a flow definition needs a `name`"));
            }
            Reply::new(client.flow_apply(&definition).await?, |a| {
                format!("flow {} {}", text(&a["flow"]["name"]), text(&a["action"]))
            })
        }
        FlowCommand::Ls => Reply::new(client.flow_list().await?, render_flows),
        FlowCommand::Show { name } => {
            Reply::new(client.flow_get(name).await?, |a| serde_json::to_string_pretty(&a.0).unwrap_or_default())
        }
        FlowCommand::Delete { name } => {
            client.flow_delete(name).await?;
            Reply::text(json!({"deleted": name}), format!("flow {name} deleted"))
        }
        FlowCommand::Run { name, input } => {
            let records = match input {
                Some(path) => read_records(path)?,
                None => json!([]),
            };
            let execution = client.flow_run(name, records).await?.0;
            // A failure without a step report is the source's: name it from the definition.
            let definition = client.flow_get(name).await.map(|flow| flow.0).unwrap_or_default();
            let mut reply = Reply::text(execution.clone(), render_execution(&execution, &definition));
            reply.failure = failure_summary(&execution, &definition);
            reply
        }
        FlowCommand::Executions { name } => {
            Reply::new(client.flow_executions(name).await?, |page| render_executions(&page.executions))
        }
        FlowCommand::Execution { id } => {
            let execution = client.execution(*id).await?.0;
            let flow = execution["flow"].as_str().unwrap_or_default();
            let definition = client.flow_get(flow).await.map(|flow| flow.0).unwrap_or_default();
            Reply::text(execution.clone(), render_execution(&execution, &definition))
        }
        FlowCommand::Delivery { name, id } => {
            let delivery = client.delivery(name, *id).await?;
            match &delivery {
                DeliveryState::Ran { execution, .. } => {
                    let definition = client.flow_get(name).await.map(|flow| flow.0).unwrap_or_default();
                    let text = format!(
                        "delivery {id} ran in execution {}\n{}",
                        execution.0["id"],
                        render_execution(&execution.0, &definition)
                    );
                    Reply::text(&delivery, text)
                }
                DeliveryState::Queued { .. } => Reply::text(&delivery, format!("delivery {id} is queued")),
            }
        }
        FlowCommand::WebhookSecret { name, secret_file, keep_previous_secs } => {
            let path = secret_file.display();
            let secret = if secret_file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(secret_file)
            }
            .map_err(|err| CommandError::input(&path, err.to_string()))?;
            let secret = secret.trim_end_matches(['\r', '\n']);
            if secret.is_empty() {
                return Err(CommandError::input(&path, "the secret is empty"));
            }
            client.flow_webhook_secret(name, secret, *keep_previous_secs).await?;
            Reply::text(json!({"flow": name}), format!("webhook secret of flow {name} set"))
        }
    })
}

/// Runs a `plugboard dlq` command; a replay with a failed execution is a failed command.
///
/// # Errors
/// [`CommandError::Client`] when the server refuses.
pub async fn dlq(client: &ApiClient, command: &DlqCommand) -> Result<Reply, CommandError> {
    Ok(match command {
        DlqCommand::Ls { flow } => Reply::new(client.dlq_list(flow).await?, render_dead_letters),
        DlqCommand::Replay { flow, ids } => {
            let answer = client.dlq_replay(flow, ids).await?;
            let failed: Vec<String> =
                answer.executions.iter().filter(|e| e.0["status"] == "failed").map(|e| text(&e.0["id"])).collect();
            let mut reply = Reply::new(answer, |replayed| render_executions(&replayed.executions));
            if !failed.is_empty() {
                reply.failure =
                    Some(format!("replay execution {} failed; see `plugboard flow execution ID`", failed.join(", ")));
            }
            reply
        }
        DlqCommand::Delete { flow, id } => {
            client.dlq_delete(flow, *id).await?;
            Reply::text(json!({"flow": flow, "deleted": id}), format!("dead letter {id} of flow {flow} deleted"))
        }
    })
}

/// `plugboard flow ls` as a table.
pub fn render_flows(answer: &FlowList) -> String {
    let list = |value: &Value, key: &str| {
        value.as_array().map(|items| items.iter().map(|i| text(&i[key])).collect::<Vec<_>>().join(", "))
    };
    let rows: Vec<Vec<String>> = answer
        .flows
        .iter()
        .map(|f| &f.0)
        .map(|f| {
            vec![
                text(&f["name"]),
                list(&f["triggers"], "type").filter(|t| !t.is_empty()).unwrap_or_else(|| "manual".into()),
                f["source"]["plugin"].as_str().unwrap_or("-").to_string(),
                list(&f["steps"], "id").unwrap_or_default(),
                f["branches"].as_object().map(|b| b.len()).unwrap_or(0).to_string(),
            ]
        })
        .collect();
    table(&["name", "triggers", "source", "steps", "branches"], &rows)
}

/// `plugboard dlq ls` as a table; the record is shown as compact JSON.
pub fn render_dead_letters(answer: &DeadLetterPage) -> String {
    let rows: Vec<Vec<String>> = answer
        .dead_letters
        .iter()
        .map(|l| &l.0)
        .map(|l| {
            let mut record = l["record"]["value"].to_string();
            if record.chars().count() > 60 {
                record = record.chars().take(57).collect::<String>() + "...";
            }
            vec![
                text(&l["id"]),
                text(&l["step"]),
                text(&l["attempts"]),
                text(&l["error"]["code"]),
                l["reasons"].as_array().map(|r| r.iter().map(text).collect::<Vec<_>>().join("; ")).unwrap_or_default(),
                time(&l["at"]),
                record,
            ]
        })
        .collect();
    table(&["id", "step", "attempts", "error", "reasons", "at", "record"], &rows)
}
