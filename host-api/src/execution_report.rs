//! A flow execution as text: its summary row, a row per step, and what failed, by name.
//!
//! An execution answered by the server holds a report per step (`steps[].error` is set for a step
//! that failed, a failing source included) and, when the execution failed as a whole, a
//! `failure`. An execution with a `failure` but no failed step (one stored by an older server,
//! whose failing source left no report) is named from the flow's definition
//! (`source `pull` (plugin http-source) failed`). Captured plugin `logs` and a trap's `backtrace`
//! are printed under the error.

use crate::render::{backtrace, logs, rows, table, text, time};
use plugboard_api_types::documents::Execution;
use serde_json::Value;

const EXECUTION_HEADER: [&str; 7] = ["id", "status", "trigger", "in", "delivered", "dead letters", "started"];

fn execution_row(e: &Value) -> Vec<String> {
    let dead_letters =
        e["dead_letter_count"].as_u64().unwrap_or_else(|| e["dead_letters"].as_array().map_or(0, Vec::len) as u64);
    vec![
        text(&e["id"]),
        text(&e["status"]),
        text(&e["trigger"]),
        text(&e["records_in"]),
        text(&e["delivered"]),
        dead_letters.to_string(),
        time(&e["started_at"]),
    ]
}

/// A list of executions (`flow executions`, `dlq replay`) as a table.
pub fn render_executions(executions: &[Execution]) -> String {
    let rows: Vec<Vec<String>> = executions.iter().map(|execution| execution_row(&execution.0)).collect();
    table(&EXECUTION_HEADER, &rows)
}

/// One failure in an execution.
#[derive(Debug, Clone, PartialEq)]
pub struct StepFailure {
    /// `step `map``, `source `pull` (plugin http-source)`, or `the execution` when no step is known.
    pub what: String,
    /// The error's stable code.
    pub code: String,
    /// The error's message.
    pub message: String,
    /// Captured plugin logs, formatted, when the server recorded any.
    pub logs: Vec<String>,
    /// For a trap: the guest's backtrace, formatted.
    pub backtrace: Vec<String>,
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}: {}", self.what, self.code, self.message)
    }
}

/// Every failure in `execution`, naming its step; `definition` is the flow's (or null).
pub fn failures(execution: &Value, definition: &Value) -> Vec<StepFailure> {
    let source = &definition["source"];
    let name = |step: &str| {
        if source["id"] == step {
            format!("source `{step}` (plugin {})", text(&source["plugin"]))
        } else {
            format!("step `{step}`")
        }
    };
    let failure = |what: String, error: &Value, step: &Value| StepFailure {
        what,
        code: text(&error["code"]),
        message: text(&error["message"]),
        logs: [logs(&error["logs"]), logs(&step["logs"])].concat(),
        backtrace: backtrace(&error["backtrace"]),
    };
    let mut found: Vec<StepFailure> = execution["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter(|s| !s["error"].is_null())
                .map(|s| failure(name(&text(&s["step"])), &s["error"], s))
                .collect()
        })
        .unwrap_or_default();
    let whole = &execution["failure"];
    if !whole.is_null() && !found.iter().any(|f| f.code == text(&whole["code"]) && f.message == text(&whole["message"]))
    {
        let ran = execution["steps"].as_array().is_some_and(|steps| !steps.is_empty());
        // Nothing ran and the flow reads a source: the source is what failed.
        let what = if !ran && source["id"].is_string() { name(&text(&source["id"])) } else { "the execution".into() };
        found.push(failure(what, whole, &Value::Null));
    }
    found
}

/// The one-line summary of a failed execution (status `failed`), naming the failing step.
pub fn failure_summary(execution: &Value, definition: &Value) -> Option<String> {
    if execution["status"] != "failed" {
        return None;
    }
    let head = format!("flow {} execution {} failed", text(&execution["flow"]), text(&execution["id"]));
    Some(match failures(execution, definition).into_iter().next() {
        Some(failure) => format!("{head}: {failure}"),
        None => head,
    })
}

/// One execution: its summary, a row per step, then each failure with its code, message and logs.
pub fn render_execution(execution: &Value, definition: &Value) -> String {
    let steps = rows(execution, "steps", |s| {
        vec![
            text(&s["step"]),
            text(&s["records_in"]),
            text(&s["records_out"]),
            text(&s["attempts"]),
            format!("{:.1}", s["duration_ms"].as_f64().unwrap_or_default()),
            s["error"]["code"].as_str().unwrap_or("-").to_string(),
        ]
    });
    let mut out = table(&EXECUTION_HEADER, &[execution_row(execution)]);
    if !steps.is_empty() {
        out.push_str("\n\n");
        out.push_str(&table(&["step", "in", "out", "attempts", "ms", "error"], &steps));
    }
    let found = failures(execution, definition);
    if !found.is_empty() {
        out.push('\n');
    }
    for failure in found {
        out.push_str(&format!("\n{failure}"));
        if !failure.backtrace.is_empty() {
            out.push_str("\n  backtrace:");
        }
        for line in failure.backtrace.iter().chain(&failure.logs) {
            out.push('\n');
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failed_source_is_named_from_the_definition() {
        let execution = json!({"id": 7, "flow": "pull", "status": "failed", "steps": [],
            "failure": {"code": "capability-denied", "message": "host example.com is not granted"}});
        let definition = json!({"name": "pull", "source": {"id": "read", "plugin": "http-source"}});
        assert_eq!(
            failure_summary(&execution, &definition).as_deref(),
            Some(
                "flow pull execution 7 failed: source `read` (plugin http-source) failed: capability-denied: host example.com is not granted"
            )
        );
        let text = render_execution(&execution, &definition);
        assert!(text.contains("source `read` (plugin http-source) failed: capability-denied"), "{text}");
    }

    #[test]
    fn step_errors_are_named_with_their_logs() {
        let execution = json!({"id": 8, "flow": "f", "status": "completed-with-dead-letters", "steps": [
            {"step": "map", "error": {"code": "guest-error", "message": "bad record",
                "logs": [{"level": "error", "context": "map", "message": "field x missing"}]}}]});
        let found = failures(&execution, &Value::Null);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].to_string(), "step `map` failed: guest-error: bad record");
        assert_eq!(found[0].logs, vec!["    [error map] field x missing".to_string()]);
        assert_eq!(failure_summary(&execution, &Value::Null), None, "dead letters are not a failed run");
    }
}
