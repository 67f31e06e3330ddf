//! What an execution records: per-step reports, errors, captured logs and dead letters.
//!
//! These are the stored and answered forms (serde), kept apart from the engine that fills them.
//! Logs are capped per step and per dead letter, so a chatty plugin cannot grow stored executions
//! without bound.

use crate::error::Error;
use crate::host::logs::LogEntry;
use crate::record::Record;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// Log lines a step report keeps: the last ones of the step's last attempt.
pub const STEP_LOG_LINES: usize = 50;
/// Log lines each dead letter keeps (every letter of a failed batch carries the same ones).
pub const DEAD_LETTER_LOG_LINES: usize = 10;
/// Bytes of log messages each dead letter keeps: a failed batch of 10,000 records stores 10,000
/// letters, so what each carries beside its record stays small (the step report has the rest).
pub const DEAD_LETTER_LOG_BYTES: usize = 1024;

/// An error as an execution records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorReport {
    /// The stable code.
    pub code: String,
    /// The message: what failed and where to fix it (for a trap, the panic message).
    pub message: String,
    /// For a trap: the guest's demangled backtrace, innermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backtrace: Vec<String>,
}

impl ErrorReport {
    /// This report without its backtrace, as dead letters carry it (their step's report has it).
    pub fn without_backtrace(&self) -> ErrorReport {
        ErrorReport { backtrace: Vec::new(), ..self.clone() }
    }

    /// A report with no backtrace.
    pub fn new(code: crate::error::ErrorCode, message: impl Into<String>) -> ErrorReport {
        ErrorReport { code: code.as_str().to_string(), message: message.into(), backtrace: Vec::new() }
    }
}

impl From<&Error> for ErrorReport {
    /// Internal errors keep their detail out of reports (which API callers read); it is logged.
    fn from(err: &Error) -> ErrorReport {
        let message = match err {
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error in a flow step");
                "internal error; see the server log".to_string()
            }
            other => other.message(),
        };
        let backtrace = match err {
            Error::GuestTrap { backtrace, .. } => backtrace.clone(),
            _ => Vec::new(),
        };
        ErrorReport { code: err.code().as_str().to_string(), message, backtrace }
    }
}

/// What a dead letter keeps of the failing attempt's logs: the last [`DEAD_LETTER_LOG_LINES`]
/// lines within [`DEAD_LETTER_LOG_BYTES`] of messages (the oldest kept one cut to fit).
pub(crate) fn letter_logs(logs: &[LogEntry]) -> Vec<LogEntry> {
    let mut room = DEAD_LETTER_LOG_BYTES;
    let mut kept = Vec::new();
    for entry in logs.iter().rev().take(DEAD_LETTER_LOG_LINES) {
        if room == 0 {
            break;
        }
        let mut entry = entry.clone();
        if entry.message.len() > room {
            let mut cut = room;
            while !entry.message.is_char_boundary(cut) {
                cut -= 1;
            }
            entry.message.truncate(cut);
            entry.message.push('…');
        }
        room = room.saturating_sub(entry.message.len());
        kept.push(entry);
    }
    kept.reverse();
    kept
}

/// The last `lines` entries of `logs`.
pub(crate) fn last_lines(logs: &[LogEntry], lines: usize) -> Vec<LogEntry> {
    logs[logs.len().saturating_sub(lines)..].to_vec()
}

/// One step's part of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepReport {
    /// Step id.
    pub step: String,
    /// Records in.
    pub records_in: u64,
    /// Records out (delivered, for sinks).
    pub records_out: u64,
    /// Attempts made (retries included).
    pub attempts: u32,
    /// Wall time in milliseconds, retries and backoff included.
    pub duration_ms: f64,
    /// Fuel consumed.
    pub fuel: u64,
    /// The final error, if the step failed.
    pub error: Option<ErrorReport>,
    /// The errors of the attempts that were retried before the last one, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retried: Vec<ErrorReport>,
    /// What the plugin (and the host, about it) logged over its attempts: the last
    /// [`STEP_LOG_LINES`] lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogEntry>,
}

impl StepReport {
    pub(crate) fn new(step: &str, records_in: usize, attempts: u32, started: Instant, fuel: u64) -> StepReport {
        StepReport {
            step: step.to_string(),
            records_in: records_in as u64,
            records_out: 0,
            attempts,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            fuel,
            error: None,
            retried: Vec::new(),
            logs: Vec::new(),
        }
    }
}

/// A record that could not be processed, kept for inspection and replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
// The control plane's stored dead letter (`DeadLetter` in the API document) flattens this one.
#[schemars(rename = "DeadLetterDetail")]
pub struct DeadLetter {
    /// The step it failed at (replay restarts there).
    pub step: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why.
    pub error: ErrorReport,
    /// Record reasons from a validator, if any.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The last lines the failing attempt logged ([`DEAD_LETTER_LOG_LINES`], at most
    /// [`DEAD_LETTER_LOG_BYTES`] of messages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogEntry>,
    /// The record as it entered the failed step.
    pub record: StoredRecord,
}

/// A record in a storable form: JSON value (or text, for a value that is not JSON), key, headers.
///
/// Records are JSON by convention; a value that is not JSON is kept as text and replayed as a JSON
/// string, so replay is exact only for JSON records (and UTF-8 keys and headers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StoredRecord {
    /// Key, as text.
    pub key: Option<String>,
    /// Value.
    pub value: serde_json::Value,
    /// Headers, as text.
    pub headers: BTreeMap<String, String>,
}

impl From<&Record> for StoredRecord {
    fn from(record: &Record) -> StoredRecord {
        StoredRecord {
            key: record.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
            value: record
                .to_json()
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&record.value).into_owned())),
            headers: record
                .headers
                .iter()
                .map(|h| (h.name.clone(), String::from_utf8_lossy(&h.value).into_owned()))
                .collect(),
        }
    }
}

impl From<&StoredRecord> for Record {
    fn from(stored: &StoredRecord) -> Record {
        let mut record = Record::json(&stored.value);
        record.key = stored.key.as_ref().map(|k| k.clone().into_bytes());
        for (name, value) in &stored.headers {
            record.headers.push(crate::record::Header { name: name.clone(), value: value.clone().into_bytes() });
        }
        record
    }
}

/// What one execution did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunOutcome {
    /// Per-step reports: steps in order, parallel branches and sinks in the order they are named.
    pub steps: Vec<StepReport>,
    /// Records written to sinks and accepted, summed over sinks.
    pub delivered: u64,
    /// Records a route step matched to no branch.
    pub dropped: u64,
    /// Records that failed for good.
    pub dead_letters: Vec<DeadLetter>,
    /// Set when the execution failed as a whole (a validate step with `on_invalid: fail`).
    pub failure: Option<ErrorReport>,
    /// The first error that dead-lettered a whole batch at once (a step that failed for all
    /// its records, not naming any): the control plane runs a micro-batch of several deliveries
    /// that ends so again one delivery at a time, so one sender's bad delivery does not take
    /// another's records with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_failure: Option<ErrorReport>,
}

impl RunOutcome {
    /// Adds what a concurrently run part of the same execution did.
    pub(crate) fn absorb(&mut self, part: RunOutcome) {
        self.steps.extend(part.steps);
        self.delivered += part.delivered;
        self.dropped += part.dropped;
        self.dead_letters.extend(part.dead_letters);
        if self.failure.is_none() {
            self.failure = part.failure;
        }
        if self.batch_failure.is_none() {
            self.batch_failure = part.batch_failure;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::logs::LogLevel;

    fn line(message: &str) -> LogEntry {
        LogEntry { level: LogLevel::Info, context: "p".into(), message: message.into() }
    }

    #[test]
    fn dead_letters_keep_few_and_short_log_lines() {
        let logs: Vec<LogEntry> = (0..30).map(|i| line(&format!("line {i}"))).collect();
        let kept = letter_logs(&logs);
        assert_eq!(kept.len(), DEAD_LETTER_LOG_LINES);
        assert_eq!(kept.last().map(|e| e.message.as_str()), Some("line 29"));
        let big: Vec<LogEntry> = (0..3).map(|_| line(&"é".repeat(400))).collect();
        let kept = letter_logs(&big);
        let bytes: usize = kept.iter().map(|e| e.message.len()).sum();
        assert!(bytes <= DEAD_LETTER_LOG_BYTES + '…'.len_utf8() * kept.len(), "{bytes}");
        assert_eq!(kept.len(), 2, "the newest whole, the one before cut");
        assert!(kept[0].message.ends_with('…'));
    }
}
