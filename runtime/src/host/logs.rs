//! Guest logs, captured per invocation and bounded.
//!
//! A plugin's `wasi:logging` lines, its stdout and stderr, and the host's own notes about the
//! invocation (a denied request, say) land in one buffer owned by the invocation. The buffer keeps at
//! most [`MAX_LOG_ENTRIES`] entries and [`MAX_LOG_BYTES`] bytes of text and counts what it dropped,
//! so a chatty or hostile plugin cannot grow host memory through its logs.

use crate::bindings::logging::{self, Level};
use serde::Serialize;
use std::sync::{Arc, Mutex, PoisonError};

/// Most entries kept per invocation.
pub const MAX_LOG_ENTRIES: usize = 256;
/// Most message bytes kept per invocation.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

/// Severity of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
    /// Critical.
    Critical,
}

impl From<Level> for LogLevel {
    fn from(level: Level) -> LogLevel {
        match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
            Level::Critical => LogLevel::Critical,
        }
    }
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// Severity.
    pub level: LogLevel,
    /// `wasi:logging` context, or `stdout`, `stderr`, `host`.
    pub context: String,
    /// The text.
    pub message: String,
}

/// Everything captured during one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Logs {
    /// Entries in order.
    pub entries: Vec<LogEntry>,
    /// Entries dropped because the buffer was full.
    pub dropped: u64,
}

/// A shared handle to one invocation's log buffer.
#[derive(Debug, Clone, Default)]
pub struct LogSink(Arc<Mutex<(Logs, usize)>>);

impl LogSink {
    pub(crate) fn push(&self, level: LogLevel, context: &str, message: &str) {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (logs, bytes) = &mut *guard;
        let size = context.len() + message.len();
        if logs.entries.len() >= MAX_LOG_ENTRIES || *bytes + size > MAX_LOG_BYTES {
            logs.dropped += 1;
            return;
        }
        *bytes += size;
        logs.entries.push(LogEntry { level, context: context.to_string(), message: message.to_string() });
    }

    pub(crate) fn host_warning(&self, message: String) {
        tracing::warn!("{message}");
        self.push(LogLevel::Warn, "host", &message);
    }

    pub(crate) fn take(&self) -> Logs {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut guard.0)
    }
}

impl logging::Host for crate::state::InvocationState {
    fn log(&mut self, level: Level, context: String, message: String) {
        self.logs.push(level.into(), &context, &message);
    }
}
