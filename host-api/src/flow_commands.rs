//! The `plugboard flow` and `plugboard dlq` commands: apply a definition file, list and run flows,
//! read executions, list and replay dead letters.
//!
//! Definitions are JSON on the wire; the CLI also reads YAML (by the file's `.yaml`/`.yml`
//! extension, or for stdin when the text is not JSON), since flows are usually kept in repositories
//! next to other YAML. `apply` replaces the flow when it exists and creates it when it does not, so
//! running it twice is harmless.

use crate::cli::{DlqCommand, FlowCommand};
use crate::client::{ApiClient, ClientError, table, text};
use serde_json::{Value, json};
use std::path::Path;

/// A flow command that could not run.
#[derive(Debug, thiserror::Error)]
pub enum FlowCommandError {
    /// The server refused or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A definition or input file is not valid JSON or YAML of the right shape.
    #[error("{path}: {reason}")]
    Input {
        /// Which file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads a JSON or YAML document; `-` reads stdin.
pub fn read_document(path: &Path) -> Result<Value, FlowCommandError> {
    let shown = path.display().to_string();
    let input_error = |reason: String| FlowCommandError::Input { path: shown.clone(), reason };
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

/// Input records from a file: an array, or `{"records": [...]}`.
fn read_records(path: &Path) -> Result<Value, FlowCommandError> {
    match read_document(path)? {
        Value::Object(mut object) if matches!(object.get("records"), Some(Value::Array(_))) => {
            Ok(object.remove("records").unwrap_or_default())
        }
        records @ Value::Array(_) => Ok(records),
        _ => Err(FlowCommandError::Input {
            path: path.display().to_string(),
            reason: "expected an array of records or {\"records\": [...]}".into(),
        }),
    }
}

impl ApiClient {
    /// Replaces the flow `definition` names, or creates it; answers `{"action", "flow"}`.
    pub async fn flow_apply(&self, definition: &Value) -> Result<Value, ClientError> {
        let name = definition["name"].as_str().unwrap_or_default();
        let put = || self.http.put(self.url(&format!("/v1/flows/{name}"))).json(definition);
        match self.send(put()).await {
            Ok(flow) => Ok(json!({"action": "updated", "flow": flow})),
            Err(ClientError::Api { status: 404, .. }) => {
                match self.send(self.http.post(self.url("/v1/flows")).json(definition)).await {
                    Ok(flow) => Ok(json!({"action": "created", "flow": flow})),
                    // Someone created it in between: replace it after all.
                    Err(ClientError::Api { status: 409, .. }) => {
                        Ok(json!({"action": "updated", "flow": self.send(put()).await?}))
                    }
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// Lists flows.
    pub async fn flow_list(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(self.url("/v1/flows"))).await
    }

    /// Runs a flow on `records`; answers the execution.
    pub async fn flow_run(&self, name: &str, records: Value) -> Result<Value, ClientError> {
        self.send(self.http.post(self.url(&format!("/v1/flows/{name}/run"))).json(&json!({"records": records}))).await
    }

    /// A flow's executions.
    pub async fn flow_executions(&self, name: &str) -> Result<Value, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/flows/{name}/executions")))).await
    }

    /// A flow's dead letters.
    pub async fn dlq_list(&self, flow: &str) -> Result<Value, ClientError> {
        self.send(self.http.get(self.url(&format!("/v1/flows/{flow}/dlq")))).await
    }

    /// Replays the dead letters `ids` (all when empty); answers the replay executions.
    pub async fn dlq_replay(&self, flow: &str, ids: &[u64]) -> Result<Value, ClientError> {
        let body = if ids.is_empty() { json!({}) } else { json!({"ids": ids}) };
        self.send(self.http.post(self.url(&format!("/v1/flows/{flow}/dlq/replay"))).json(&body)).await
    }
}

/// Runs a `plugboard flow` command; answers the server's JSON and how to render it.
///
/// # Errors
/// [`FlowCommandError::Input`] for an unreadable or malformed file, before anything is sent;
/// [`FlowCommandError::Client`] when the server refuses (with its stable `code`).
pub async fn flow(
    client: &ApiClient,
    command: &FlowCommand,
) -> Result<(Value, fn(&Value) -> String), FlowCommandError> {
    Ok(match command {
        FlowCommand::Apply { file } => {
            let definition = read_document(file)?;
            if !definition["name"].is_string() {
                return Err(FlowCommandError::Input {
                    path: file.display().to_string(),
                    reason: "a flow definition needs a `name`".into(),
                });
            }
            (client.flow_apply(&definition).await?, render_apply)
        }
        FlowCommand::Ls => (client.flow_list().await?, render_flows),
        FlowCommand::Run { name, input } => {
            let records = match input {
                Some(path) => read_records(path)?,
                None => json!([]),
            };
            (client.flow_run(name, records).await?, render_execution)
        }
        FlowCommand::Executions { name } => (client.flow_executions(name).await?, render_executions),
    })
}

/// Runs a `plugboard dlq` command; answers the server's JSON and how to render it.
///
/// # Errors
/// [`FlowCommandError::Client`] when the server refuses.
pub async fn dlq(client: &ApiClient, command: &DlqCommand) -> Result<(Value, fn(&Value) -> String), FlowCommandError> {
    Ok(match command {
        DlqCommand::Ls { flow } => (client.dlq_list(flow).await?, render_dead_letters),
        DlqCommand::Replay { flow, ids } => (client.dlq_replay(flow, ids).await?, render_executions),
    })
}

fn render_apply(answer: &Value) -> String {
    format!("flow {} {}", text(&answer["flow"]["name"]), text(&answer["action"]))
}

/// `plugboard flow ls` as a table.
pub fn render_flows(answer: &Value) -> String {
    let list = |value: &Value, key: &str| {
        value.as_array().map(|items| items.iter().map(|i| text(&i[key])).collect::<Vec<_>>().join(", "))
    };
    let rows: Vec<Vec<String>> = answer["flows"]
        .as_array()
        .map(|flows| {
            flows
                .iter()
                .map(|f| {
                    vec![
                        text(&f["name"]),
                        list(&f["triggers"], "type").filter(|t| !t.is_empty()).unwrap_or_else(|| "manual".into()),
                        f["source"]["plugin"].as_str().unwrap_or("-").to_string(),
                        list(&f["steps"], "id").unwrap_or_default(),
                        f["branches"].as_object().map(|b| b.len()).unwrap_or(0).to_string(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["name", "triggers", "source", "steps", "branches"], &rows)
}

fn execution_row(e: &Value) -> Vec<String> {
    vec![
        text(&e["id"]),
        text(&e["status"]),
        text(&e["trigger"]),
        text(&e["records_in"]),
        text(&e["delivered"]),
        e["dead_letters"].as_array().map_or(0, Vec::len).to_string(),
        text(&e["started_at"]),
    ]
}

const EXECUTION_HEADER: [&str; 7] = ["id", "status", "trigger", "in", "delivered", "dead letters", "started"];

/// One execution: its summary, then a row per step.
pub fn render_execution(answer: &Value) -> String {
    let steps: Vec<Vec<String>> = answer["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    vec![
                        text(&s["step"]),
                        text(&s["records_in"]),
                        text(&s["records_out"]),
                        text(&s["attempts"]),
                        format!("{:.1}", s["duration_ms"].as_f64().unwrap_or_default()),
                        s["error"]["code"].as_str().unwrap_or("-").to_string(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}\n\n{}",
        table(&EXECUTION_HEADER, &[execution_row(answer)]),
        table(&["step", "in", "out", "attempts", "ms", "error"], &steps)
    )
}

/// A list of executions (`flow executions`, `dlq replay`) as a table.
pub fn render_executions(answer: &Value) -> String {
    let rows: Vec<Vec<String>> =
        answer["executions"].as_array().map(|list| list.iter().map(execution_row).collect()).unwrap_or_default();
    table(&EXECUTION_HEADER, &rows)
}

/// `plugboard dlq ls` as a table; the record is shown as compact JSON.
pub fn render_dead_letters(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["dead_letters"]
        .as_array()
        .map(|letters| {
            letters
                .iter()
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
                        l["reasons"]
                            .as_array()
                            .map(|r| r.iter().map(text).collect::<Vec<_>>().join("; "))
                            .unwrap_or_default(),
                        record,
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["id", "step", "attempts", "error", "reasons", "record"], &rows)
}
