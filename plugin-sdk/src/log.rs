//! Log lines through `wasi:logging`; the host captures them per invocation (bounded).

use crate::bindings::wasi::logging::logging::{Level, log};

const CONTEXT: &str = "plugin";

/// Logs at trace level.
pub fn trace(message: &str) {
    log(Level::Trace, CONTEXT, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, CONTEXT, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, CONTEXT, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, CONTEXT, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, CONTEXT, message);
}
