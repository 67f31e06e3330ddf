//! Guest logs, captured per invocation and bounded.
//!
//! A plugin's `wasi:logging` lines, its stdout and stderr, and the host's own notes about the
//! invocation (a denied request, say) land in one buffer owned by the invocation. The buffer keeps at
//! most [`MAX_LOG_ENTRIES`] entries and [`MAX_LOG_BYTES`] bytes of text and counts what it dropped,
//! so a chatty or hostile plugin cannot grow host memory through its logs.
//!
//! Host warnings also go to the host's own log (`tracing`), where guest text is a way to forge or
//! flood lines: each line is escaped (control and bidi characters, so no newline starts a fake
//! entry) and capped ([`guest_text`], [`MAX_HOST_LINE_CHARS`]), and only the first
//! [`MAX_HOST_WARNINGS`] of an invocation are written, then one line counting the rest.

use crate::bindings::logging::{self, Level};
use crate::sync::Locked;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// Most entries kept per invocation.
pub const MAX_LOG_ENTRIES: usize = 256;
/// Most message bytes kept per invocation.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

/// Most characters of guest-supplied text quoted in one host log line ([`guest_text`]).
pub const MAX_GUEST_TEXT_CHARS: usize = 256;
/// Most characters of one host warning line, whoever wrote its parts.
pub const MAX_HOST_LINE_CHARS: usize = 512;
/// Host warnings of one invocation written to the host's log; the rest are counted.
pub const MAX_HOST_WARNINGS: u64 = 10;

/// `text` escaped and capped for a host log line: control and bidi characters become escapes
/// (`\n`, `\u{202e}`), cut (ending in `…`) where it would pass `max_chars` characters.
pub(crate) fn escape_and_cap(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut count: usize = 0;
    for c in text.chars() {
        let bidi = matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        let escaped = (c.is_control() || bidi).then(|| c.escape_default());
        let width = escaped.clone().map_or(1, Iterator::count);
        if count.saturating_add(width) > max_chars {
            out.push('…');
            break;
        }
        count += width;
        match escaped {
            Some(escaped) => out.extend(escaped),
            None => out.push(c),
        }
    }
    out
}

/// Text that may come from a guest made safe to print on a terminal or in a log line: control
/// and bidirectional-override characters escaped, nothing cut.
pub fn escaped(text: &str) -> String {
    escape_and_cap(text, usize::MAX)
}

/// A plugin's own message (a `plugin-error`'s text), escaped and cut at this many characters.
pub const MAX_PLUGIN_MESSAGE_CHARS: usize = 1024;

/// Guest-supplied text (a bucket name, a host, a key) made safe to quote in a host log line:
/// escaped, and at most [`MAX_GUEST_TEXT_CHARS`] characters.
pub fn guest_text(text: &str) -> String {
    escape_and_cap(text, MAX_GUEST_TEXT_CHARS)
}

/// Severity of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
// Inline in schemas: the API's own `LogLevel` (plugboard-api-types) is the named one.
#[schemars(inline)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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

impl Logs {
    /// Adds `later` entries after these (both already within the invocation's bounds).
    pub(crate) fn append(&mut self, later: Logs) {
        self.entries.extend(later.entries);
        self.dropped += later.dropped;
    }
}

/// A shared handle to one invocation's log buffer.
#[derive(Debug, Clone, Default)]
pub struct LogSink(Arc<Mutex<Buffer>>);

#[derive(Debug, Default)]
struct Buffer {
    logs: Logs,
    bytes: usize,
    host_warnings: u64,
    /// The first capability the host refused in this invocation, for the invocation's error.
    first_denial: Option<String>,
}

impl LogSink {
    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.0.locked()
    }

    pub(crate) fn push(&self, level: LogLevel, context: &str, message: &str) {
        let mut buffer = self.buffer();
        let size = context.len() + message.len();
        if buffer.logs.entries.len() >= MAX_LOG_ENTRIES || buffer.bytes + size > MAX_LOG_BYTES {
            buffer.logs.dropped += 1;
            return;
        }
        buffer.bytes += size;
        buffer.logs.entries.push(LogEntry { level, context: context.to_string(), message: message.to_string() });
    }

    /// Notes `message` (which may quote guest text) in the invocation's logs and, for the first
    /// [`MAX_HOST_WARNINGS`] of the invocation, in the host's log; escaped and capped either way.
    pub(crate) fn host_warning(&self, message: String) {
        let line = escape_and_cap(&message, MAX_HOST_LINE_CHARS);
        if self.count_host_warning() {
            tracing::warn!("{line}");
        }
        self.push(LogLevel::Warn, "host", &line);
    }

    /// A [`host_warning`](Self::host_warning) about a refused capability; the first one of the
    /// invocation is kept, so a plugin that then reports `denied` gets an error naming it.
    pub(crate) fn host_denial(&self, message: String) {
        let line = escape_and_cap(&message, MAX_HOST_LINE_CHARS);
        self.buffer().first_denial.get_or_insert_with(|| line.clone());
        self.host_warning(message);
    }

    /// The first capability refused in this invocation, if any.
    pub(crate) fn first_denial(&self) -> Option<String> {
        self.buffer().first_denial.clone()
    }

    /// Counts a host warning; answers whether it may still go to the host's log.
    fn count_host_warning(&self) -> bool {
        let mut buffer = self.buffer();
        buffer.host_warnings += 1;
        buffer.host_warnings <= MAX_HOST_WARNINGS
    }

    /// Host warnings not written to the host's log, so far.
    fn suppressed_host_warnings(&self) -> u64 {
        self.buffer().host_warnings.saturating_sub(MAX_HOST_WARNINGS)
    }

    /// The invocation's logs, once it is over; writes the one line counting the host warnings
    /// that were not written to the host's log.
    pub(crate) fn take(&self) -> Logs {
        let suppressed = self.suppressed_host_warnings();
        if suppressed > 0 {
            tracing::warn!(suppressed, "{suppressed} more host warnings about this invocation were not logged here");
        }
        let mut buffer = self.buffer();
        // Reported once: a later `take` (after the commit) counts only what came since.
        buffer.host_warnings = buffer.host_warnings.min(MAX_HOST_WARNINGS);
        std::mem::take(&mut buffer.logs)
    }
}

/// Contexts the host writes itself: a guest's `wasi:logging` line never carries one, so what the
/// host reads from them (a panic message from `stderr`) cannot be forged.
const HOST_CONTEXTS: [&str; 3] = ["stdout", "stderr", "host"];

/// The context a guest's log line is kept under: its own, or `plugin:NAME` for a host context.
fn guest_context(context: &str) -> std::borrow::Cow<'_, str> {
    if HOST_CONTEXTS.contains(&context) { format!("plugin:{context}").into() } else { context.into() }
}

impl logging::Host for crate::state::InvocationState {
    fn log(&mut self, level: Level, context: String, message: String) {
        self.logs.push(level.into(), &guest_context(&context), &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_cannot_log_under_a_host_context() {
        assert_eq!(guest_context("stderr"), "plugin:stderr");
        assert_eq!(guest_context("host"), "plugin:host");
        assert_eq!(guest_context("mapper"), "mapper");
    }

    #[test]
    fn guest_text_escapes_control_and_bidi_characters() {
        assert_eq!(guest_text("a\nWARN forged\r\t\u{1b}[31m"), "a\\nWARN forged\\r\\t\\u{1b}[31m");
        assert_eq!(guest_text("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(guest_text("plain `name` ünïcode"), "plain `name` ünïcode");
        // Escaping is idempotent, so text escaped twice (a quoted name in a warning) reads the same.
        assert_eq!(guest_text(&guest_text("a\nb")), guest_text("a\nb"));
    }

    #[test]
    fn guest_text_is_capped_on_a_character_boundary() {
        let long = "é".repeat(1000);
        let capped = guest_text(&long);
        assert_eq!(capped.chars().count(), MAX_GUEST_TEXT_CHARS + 1);
        assert!(capped.ends_with("é…"));
        let exact = "x".repeat(MAX_GUEST_TEXT_CHARS);
        assert_eq!(guest_text(&exact), exact, "no ellipsis when nothing was cut");
    }

    #[test]
    fn host_warnings_are_escaped_capped_and_rate_limited() {
        let sink = LogSink::default();
        for i in 0..25 {
            sink.host_warning(format!("warning {i}\n{}", "x".repeat(2000)));
        }
        assert_eq!(sink.suppressed_host_warnings(), 25 - MAX_HOST_WARNINGS);
        let logs = sink.take();
        // Every warning is still in the invocation's (bounded) logs, escaped and capped.
        assert_eq!(logs.entries.len(), 25);
        for entry in &logs.entries {
            assert!(!entry.message.contains('\n'));
            assert!(entry.message.contains("\\n"));
            assert_eq!(entry.message.chars().count(), MAX_HOST_LINE_CHARS + 1);
        }
    }
}
