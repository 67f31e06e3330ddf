//! Turning what wasmtime reports about a failed call into the taxonomy, with what an author needs
//! to fix it: the panic message rather than a bare `unreachable`, and a short, demangled backtrace
//! of the plugin's own functions rather than wasmtime's frame dump.
//!
//! A Rust guest that panics prints `thread '…' panicked at src/lib.rs:10:5:` and its message to
//! stderr before it traps; the invocation captured that into its logs, so the message is read
//! back from there ([`panic_message`]). The backtrace comes from wasmtime's [`WasmBacktrace`] and
//! is only as good as the component's name section (a stripped component has none).

use crate::budget::{Budget, BudgetSources};
use crate::error::{Error, TrapKind};
use crate::host::logs::{LogEntry, guest_text};
use crate::limiter::MemoryLimitExceeded;
use wasmtime::WasmBacktrace;

/// Frames kept in a trap's backtrace.
const MAX_FRAMES: usize = 12;

/// Lines of a panic message kept.
const MAX_PANIC_LINES: usize = 8;

/// The trap a call into the host raises once the invocation's deadline has passed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the invocation's deadline passed")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Turns a wasmtime failure into the taxonomy. Order matters: a refused memory growth surfaces as
/// whatever trap the guest hit next, so the limiter's record wins over the trap code. `logs` are
/// the invocation's captured logs, stderr included (for a panic message).
pub(crate) fn classify(
    err: &wasmtime::Error,
    exceeded: Option<MemoryLimitExceeded>,
    budget: &Budget,
    sources: &BudgetSources,
    logs: &[LogEntry],
) -> Error {
    let timeout = Error::Timeout { deadline: budget.timeout, set_by: sources.timeout };
    if let Some(exceeded) = err.downcast_ref::<MemoryLimitExceeded>().copied().or(exceeded) {
        return Error::MemoryLimit {
            limit: exceeded.limit,
            requested: exceeded.requested,
            set_by: sources.memory_bytes,
        };
    }
    if err.downcast_ref::<DeadlineExceeded>().is_some() {
        return timeout;
    }
    if err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
        return Error::Overloaded(format!("no free instance slot: {err}"));
    }
    if let Some(trap) = err.downcast_ref::<wasmtime::Trap>().copied() {
        return match trap {
            wasmtime::Trap::OutOfFuel => Error::OutOfFuel { fuel: budget.fuel, set_by: sources.fuel },
            wasmtime::Trap::Interrupt => timeout,
            other => guest_trap(TrapKind::from(other), err, logs),
        };
    }
    if let Some(wasmtime::component::ResourceTableError::Full) = err.downcast_ref() {
        return Error::TooManyResources { limit: crate::state::MAX_HOST_RESOURCES as u64 };
    }
    if copy_budget_exhausted(err) {
        return Error::CopyBudget { limit: crate::budget::copy_budget(budget) };
    }
    if err.downcast_ref::<WasmBacktrace>().is_some() {
        return guest_trap(TrapKind::Other, err, logs);
    }
    // wasmtime's error is not `Clone` and arrives borrowed: its whole chain, as text.
    Error::internal(format!("{err:#}"))
}

/// A trap of `kind`: the panic message when the guest printed one, else wasmtime's description
/// of the trap (its root cause, without the frame dump).
fn guest_trap(kind: TrapKind, err: &wasmtime::Error, logs: &[LogEntry]) -> Error {
    let message = panic_message(logs).unwrap_or_else(|| {
        let cause = err.root_cause().to_string();
        cause.strip_prefix("wasm trap: ").unwrap_or(&cause).to_string()
    });
    let backtrace = err.downcast_ref::<WasmBacktrace>().map(backtrace).unwrap_or_default();
    Error::GuestTrap { kind, message, backtrace }
}

/// The panic a Rust guest printed to stderr: `panicked at LOCATION: MESSAGE`, escaped and capped.
fn panic_message(logs: &[LogEntry]) -> Option<String> {
    let stderr: Vec<&str> = logs.iter().filter(|e| e.context == "stderr").map(|e| e.message.as_str()).collect();
    let start = stderr.iter().rposition(|line| line.contains(" panicked at "))?;
    let (_, location) = stderr[start].split_once(" panicked at ")?;
    let message: Vec<&str> = stderr[start + 1..]
        .iter()
        .take_while(|line| !line.starts_with("note: ") && !line.starts_with("stack backtrace:"))
        .take(MAX_PANIC_LINES)
        .copied()
        .collect();
    Some(guest_text(&format!("panicked at {}: {}", location.trim_end_matches(':'), message.join("\n"))))
}

/// The guest's frames, innermost first: demangled, without hashes, without the standard
/// library's panic machinery and the bindings' export glue, at most [`MAX_FRAMES`].
fn backtrace(trace: &WasmBacktrace) -> Vec<String> {
    trace
        .frames()
        .iter()
        .filter_map(|frame| {
            let name = format!("{:#}", rustc_demangle::demangle(frame.func_name()?));
            let place = frame
                .symbols()
                .first()
                .and_then(|s| Some(format!(" at {}:{}", s.file()?, s.line()?)))
                .unwrap_or_default();
            Some(guest_text(&format!("{name}{place}")))
        })
        .filter(|frame| !is_machinery(frame))
        .take(MAX_FRAMES)
        .collect()
}

/// Frames an author cannot act on: the panic runtime, allocation and formatting of the standard
/// library, and the generated export glue.
fn is_machinery(frame: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "std::",
        "core::",
        "alloc::",
        "__rust",
        "rust_panic",
        "__rdl_",
        "wit_bindgen",
        "cabi_",
        "<core::",
        "<alloc::",
        "<std::",
    ];
    // `abort` ends a `panic = "abort"` guest; `pkg:iface/name@version#func` is a component's
    // export shim.
    let export_shim = frame.contains('#') && frame.contains('/');
    PREFIXES.iter().any(|prefix| frame.starts_with(prefix))
        || frame.starts_with("__wasm")
        || frame.contains("::_export_")
        || frame == "abort"
        || export_shim
}

/// wasmtime's message when a guest-to-host copy exceeds the store's hostcall fuel.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Whether `err` is wasmtime's "hostcall fuel exhausted" failure. wasmtime 48 keeps that error's
/// type private, so this is the one place in Plugboard that looks at an error's text; the hostile
/// test that copies 4 GiB of aliased output pins it, so a wasmtime upgrade that rewords it fails
/// that test instead of turning the error back into `internal`.
fn copy_budget_exhausted(err: &wasmtime::Error) -> bool {
    err.chain().any(|cause| cause.to_string().contains(HOSTCALL_FUEL_EXHAUSTED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::logs::LogLevel;

    fn stderr(lines: &[&str]) -> Vec<LogEntry> {
        lines
            .iter()
            .map(|line| LogEntry { level: LogLevel::Warn, context: "stderr".into(), message: (*line).into() })
            .collect()
    }

    #[test]
    fn the_panic_message_is_read_from_stderr() {
        let logs = stderr(&[
            "thread '<unnamed>' (1) panicked at src/lib.rs:101:24:",
            "the guest panics\non purpose",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ]);
        assert_eq!(
            panic_message(&logs).as_deref(),
            Some("panicked at src/lib.rs:101:24: the guest panics\\non purpose")
        );
        assert_eq!(panic_message(&stderr(&["just some output"])), None);
        // Lines logged through wasi:logging are not stderr and are not taken for a panic.
        let mut logged = stderr(&["x"]);
        logged[0].context = "plugin".into();
        logged[0].message = "thread 'x' panicked at forged:1:1:".into();
        assert_eq!(panic_message(&logged), None);
    }

    #[test]
    fn machinery_frames_are_recognised() {
        assert!(is_machinery("std::panicking::begin_panic_handler"));
        assert!(is_machinery("core::panicking::panic_fmt"));
        assert!(is_machinery("__rustc::rust_begin_unwind"));
        assert!(is_machinery("hostile::bindings::exports::plugboard::plugin::transform::_export_transform_cabi"));
        assert!(is_machinery("abort"));
        assert!(is_machinery("plugboard:plugin/transform@0.1.0#transform"));
        assert!(!is_machinery("hostile::recurse"));
        assert!(!is_machinery("<hostile::Hostile as hostile::Guest>::transform"));
    }
}
