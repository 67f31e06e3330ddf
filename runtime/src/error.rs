//! The one error taxonomy, from the runtime up to the HTTP API's `code` field.
//!
//! Every failure the runtime reports is an [`Error`] variant; [`Error::code`] maps it to a stable
//! [`ErrorCode`] whose string form (`out-of-fuel`, `memory-limit`, …) is what API clients match on.
//! Nothing in Plugboard compares error *messages*: callers match on variants or codes. (The one
//! exception is inside the runtime: wasmtime's hostcall-fuel error has a private type, see
//! `invoke::copy_budget_exhausted`.)

use crate::budget::LimitSource;
use crate::record::PluginError;
use std::fmt;
use std::time::Duration;

/// Stable, machine-readable error codes. The string form never changes once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The bytes are not a component, or the component targets no Plugboard world.
    InvalidComponent,
    /// The manifest is malformed or disagrees with the component.
    ManifestInvalid,
    /// The component implements another world than its manifest's kind.
    WorldMismatch,
    /// The signature check failed (unsigned, unknown-key, revoked-key, bad-signature,
    /// digest-mismatch); the reason is reported beside the code.
    Signature,
    /// A lower version than the highest installed was refused.
    Rollback,
    /// The named thing does not exist.
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// A flow definition is invalid.
    FlowInvalid,
    /// The guest used a capability the operator did not grant.
    CapabilityDenied,
    /// The guest ran out of fuel.
    OutOfFuel,
    /// The guest ran past its wall-clock deadline.
    Timeout,
    /// The guest's memories together grew past the memory budget, or it held more host resources
    /// at once than an invocation may.
    MemoryLimit,
    /// The input batch is larger than the budget allows.
    InputTooLarge,
    /// The guest returned more bytes than the budget allows.
    OutputTooLarge,
    /// The guest trapped (unreachable, stack overflow, out-of-bounds access, …).
    GuestTrap,
    /// The guest returned its own typed error.
    GuestError,
    /// The runtime's instance pool is exhausted.
    Overloaded,
    /// The invocation succeeded but its key-value writes no longer fit the plugin's quota when
    /// they were committed (a concurrent invocation committed first); none of them was applied.
    KeyValueQuota,
    /// A fault inside the host (I/O on the artifact cache, a wasmtime internal error).
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order (for tables and checks that must cover them all).
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InvalidComponent,
        ErrorCode::ManifestInvalid,
        ErrorCode::WorldMismatch,
        ErrorCode::Signature,
        ErrorCode::Rollback,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::FlowInvalid,
        ErrorCode::CapabilityDenied,
        ErrorCode::OutOfFuel,
        ErrorCode::Timeout,
        ErrorCode::MemoryLimit,
        ErrorCode::InputTooLarge,
        ErrorCode::OutputTooLarge,
        ErrorCode::GuestTrap,
        ErrorCode::GuestError,
        ErrorCode::Overloaded,
        ErrorCode::KeyValueQuota,
        ErrorCode::Internal,
    ];

    /// The code as it appears in the API's `code` field.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidComponent => "invalid-component",
            ErrorCode::ManifestInvalid => "manifest-invalid",
            ErrorCode::WorldMismatch => "world-mismatch",
            ErrorCode::Signature => "signature",
            ErrorCode::Rollback => "rollback",
            ErrorCode::NotFound => "not-found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::FlowInvalid => "flow-invalid",
            ErrorCode::CapabilityDenied => "capability-denied",
            ErrorCode::OutOfFuel => "out-of-fuel",
            ErrorCode::Timeout => "timeout",
            ErrorCode::MemoryLimit => "memory-limit",
            ErrorCode::InputTooLarge => "input-too-large",
            ErrorCode::OutputTooLarge => "output-too-large",
            ErrorCode::GuestTrap => "guest-trap",
            ErrorCode::GuestError => "guest-error",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::KeyValueQuota => "key-value-quota",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of trap stopped a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrapKind {
    /// The guest's call stack overflowed (deep or unbounded recursion).
    StackOverflow,
    /// The guest executed `unreachable` (a Rust panic ends here).
    Unreachable,
    /// An out-of-bounds memory access.
    MemoryOutOfBounds,
    /// An integer division by zero or overflow.
    IntegerArithmetic,
    /// An indirect call to a null or mistyped function.
    IndirectCall,
    /// Any other trap, or a component-model violation by the guest.
    Other,
}

impl TrapKind {
    /// The kind as the API and messages spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            TrapKind::StackOverflow => "stack-overflow",
            TrapKind::Unreachable => "unreachable",
            TrapKind::MemoryOutOfBounds => "memory-out-of-bounds",
            TrapKind::IntegerArithmetic => "integer-arithmetic",
            TrapKind::IndirectCall => "indirect-call",
            TrapKind::Other => "other",
        }
    }
}

impl From<wasmtime::Trap> for TrapKind {
    fn from(trap: wasmtime::Trap) -> TrapKind {
        use wasmtime::Trap;
        match trap {
            Trap::StackOverflow => TrapKind::StackOverflow,
            Trap::UnreachableCodeReached => TrapKind::Unreachable,
            Trap::MemoryOutOfBounds | Trap::HeapMisaligned | Trap::TableOutOfBounds => TrapKind::MemoryOutOfBounds,
            Trap::IntegerOverflow | Trap::IntegerDivisionByZero | Trap::BadConversionToInteger => {
                TrapKind::IntegerArithmetic
            }
            Trap::IndirectCallToNull | Trap::BadSignature => TrapKind::IndirectCall,
            _ => TrapKind::Other,
        }
    }
}

/// Every failure of loading or invoking a plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a usable Plugboard component.
    #[error("invalid component: {reason}")]
    InvalidComponent {
        /// What is wrong, for the operator.
        reason: String,
    },
    /// The manifest is malformed or does not fit the component.
    #[error("invalid manifest: {reason}")]
    ManifestInvalid {
        /// What is wrong, for the operator.
        reason: String,
    },
    /// The component was built for another world than the manifest says, or imports what that
    /// world does not offer.
    #[error("the manifest says `{}` (world `{}`) but the component {found}", manifest.as_str(), manifest.world())]
    WorldMismatch {
        /// The manifest's kind.
        manifest: crate::manifest::Kind,
        /// The world the component implements, if any.
        component: Option<crate::manifest::Kind>,
        /// What the component was built for, or what it imports that the world does not offer.
        found: String,
    },
    /// The plugin file failed verification.
    #[error("signature check failed: {0}")]
    Signature(#[from] crate::signing::SignatureError),
    /// A lower version than the highest installed.
    #[error("{name} {version} is older than the installed {highest}; pass the rollback override to install it anyway")]
    Rollback {
        /// Plugin name.
        name: String,
        /// The refused version.
        version: semver::Version,
        /// The highest installed version.
        highest: semver::Version,
    },
    /// Not found.
    #[error("not found: {0}")]
    NotFound(String),
    /// Conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A flow definition is invalid.
    #[error("invalid flow: {reason}")]
    FlowInvalid {
        /// What is wrong, naming the step or branch.
        reason: String,
    },
    /// The guest ran out of fuel.
    #[error("plugin ran out of fuel after {fuel} units; {}", set_by.explain("fuel"))]
    OutOfFuel {
        /// The fuel budget it had.
        fuel: u64,
        /// Who set that budget.
        set_by: LimitSource,
    },
    /// The guest ran past its deadline.
    #[error("plugin ran past its {}ms deadline; {}", deadline.as_millis(), set_by.explain("timeout_ms"))]
    Timeout {
        /// The deadline it had.
        deadline: Duration,
        /// Who set that deadline.
        set_by: LimitSource,
    },
    /// The guest's memories grew past the budget.
    #[error("plugin memory would grow to {requested} bytes, over its {limit}-byte budget; {}", set_by.explain("memory_bytes"))]
    MemoryLimit {
        /// The budget, in bytes, over all of the component's memories.
        limit: u64,
        /// The total the failed growth asked for.
        requested: u64,
        /// Who set the budget.
        set_by: LimitSource,
    },
    /// The input is larger than the budget.
    #[error("input of {size} bytes exceeds the {limit}-byte input budget; {}", set_by.explain("max_input_bytes"))]
    InputTooLarge {
        /// Input size in bytes (keys, values and headers).
        size: u64,
        /// The budget.
        limit: u64,
        /// Who set the budget.
        set_by: LimitSource,
    },
    /// The guest returned more than the budget allows.
    #[error("output of {size} bytes exceeds the {limit}-byte output budget; {}", set_by.explain("max_output_bytes"))]
    OutputTooLarge {
        /// Output size in bytes (keys, values and headers).
        size: u64,
        /// The budget.
        limit: u64,
        /// Who set the budget.
        set_by: LimitSource,
    },
    /// A batch in or out has more records than the budget allows.
    #[error("{} {count} records, over the budget of {limit} records per batch; {}", if *output { "the plugin returned" } else { "the batch has" }, set_by.explain("max_records"))]
    TooManyRecords {
        /// Records in the batch.
        count: u64,
        /// The budget.
        limit: u64,
        /// Whether the guest returned them (else it was given them).
        output: bool,
        /// Who set the budget.
        set_by: LimitSource,
    },
    /// The guest asked the host to copy more than its copy budget in one call: an output (or an
    /// error, or an argument of a host call) whose lists point at the same guest memory many
    /// times over can be far larger than the guest's memory. See [`crate::budget::copy_budget`].
    #[error("the plugin's output (or a host call's argument) exceeds the {limit}-byte copy budget")]
    CopyBudget {
        /// The copy budget in bytes.
        limit: u64,
    },
    /// The guest held more host resources (HTTP fields, streams, open buckets, …) at once than an
    /// invocation may: they live in host memory, outside its memory budget, so this counts as
    /// [`ErrorCode::MemoryLimit`].
    #[error("plugin holds {limit} host resources (handles) at once, the most an invocation may")]
    TooManyResources {
        /// The most host resources an invocation may hold.
        limit: u64,
    },
    /// The guest trapped.
    #[error("plugin trapped ({}): {message}", kind.as_str())]
    GuestTrap {
        /// What kind of trap.
        kind: TrapKind,
        /// The guest's panic message (with its source location) when it printed one, else
        /// wasmtime's description of the trap.
        message: String,
        /// The guest's call stack, innermost first: demangled function names, with the runtime's
        /// panic machinery trimmed off (empty when the component has no names).
        backtrace: Vec<String>,
    },
    /// The guest returned its own typed error.
    #[error("plugin returned an error: {}", describe_plugin_error(.0))]
    Guest(PluginError),
    /// The guest failed (reported `denied` or `internal`, or trapped) after the host
    /// refused it a capability: the host's reason says what was refused and whether the manifest
    /// or the grant lacks it; the plugin's own account is kept beside it.
    #[error("capability denied: {denial} (the plugin reported: {reported})")]
    Denied {
        /// The host's reason for the first refusal of the invocation.
        denial: String,
        /// The plugin's own message.
        reported: String,
    },
    /// The invocation's key-value writes would take the plugin over its quota at commit; the
    /// output is discarded with them (see the state guarantee in [`crate::host::keyvalue`]).
    #[error("the invocation's key-value writes were discarded: {0}")]
    KeyValueQuota(crate::host::keyvalue::QuotaExceeded),
    /// The host's capacity is taken (the instance pool, the plugin's share of DNS lookups); retry
    /// later.
    #[error("{0}")]
    Overloaded(String),
    /// A host-side fault.
    #[error("internal runtime error: {0}")]
    Internal(#[source] crate::cause::Cause),
}

impl Error {
    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidComponent { .. } => ErrorCode::InvalidComponent,
            Error::ManifestInvalid { .. } => ErrorCode::ManifestInvalid,
            Error::WorldMismatch { .. } => ErrorCode::WorldMismatch,
            Error::Signature(_) => ErrorCode::Signature,
            Error::Rollback { .. } => ErrorCode::Rollback,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::FlowInvalid { .. } => ErrorCode::FlowInvalid,
            Error::OutOfFuel { .. } => ErrorCode::OutOfFuel,
            Error::Timeout { .. } => ErrorCode::Timeout,
            Error::MemoryLimit { .. } | Error::TooManyResources { .. } => ErrorCode::MemoryLimit,
            Error::InputTooLarge { .. } => ErrorCode::InputTooLarge,
            Error::OutputTooLarge { .. } | Error::CopyBudget { .. } => ErrorCode::OutputTooLarge,
            Error::TooManyRecords { output: false, .. } => ErrorCode::InputTooLarge,
            Error::TooManyRecords { output: true, .. } => ErrorCode::OutputTooLarge,
            Error::GuestTrap { .. } => ErrorCode::GuestTrap,
            Error::Guest(PluginError::Denied(_)) | Error::Denied { .. } => ErrorCode::CapabilityDenied,
            Error::Guest(_) => ErrorCode::GuestError,
            Error::Overloaded(_) => ErrorCode::Overloaded,
            Error::KeyValueQuota(_) => ErrorCode::KeyValueQuota,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The message to show after the error's [`code`](Error::code): the text of this error
    /// without the words that would only repeat the code (`not found: `, `conflict: `), so
    /// `code: message` reads `conflict: key … is revoked`, not `conflict: conflict: …`.
    pub fn message(&self) -> String {
        match self {
            Error::NotFound(what) => what.clone(),
            Error::Conflict(why) => why.clone(),
            other => other.to_string(),
        }
    }

    pub(crate) fn invalid_component(reason: impl Into<String>) -> Error {
        Error::InvalidComponent { reason: reason.into() }
    }

    pub(crate) fn manifest(reason: impl Into<String>) -> Error {
        Error::ManifestInvalid { reason: reason.into() }
    }

    /// A host fault: an error value, or a message where there is none.
    pub(crate) fn internal(err: impl Into<crate::cause::Boxed>) -> Error {
        Error::Internal(crate::cause::Cause::new(err))
    }

    /// A host fault: `err`, met while doing `what`.
    pub(crate) fn internal_from(what: impl Into<String>, err: impl Into<crate::cause::Boxed>) -> Error {
        Error::Internal(crate::cause::Cause::context(what, err))
    }
}

/// Issues of an `invalid-input` error spelled out in a message; the rest are counted.
const DESCRIBED_ISSUES: usize = 5;

/// A plugin's own error as one line: its kind, then its text (the generated `Display` of the WIT
/// variant is its debug form).
pub fn describe_plugin_error(err: &PluginError) -> String {
    let safe = |text: &str| crate::host::logs::escape_and_cap(text, crate::host::logs::MAX_PLUGIN_MESSAGE_CHARS);
    match err {
        PluginError::InvalidInput(issues) => {
            let mut parts: Vec<String> = issues
                .iter()
                .take(DESCRIBED_ISSUES)
                .map(|issue| format!("record {}: {}", issue.index, safe(&issue.reasons.join("; "))))
                .collect();
            if issues.len() > DESCRIBED_ISSUES {
                parts.push(format!("and {} more records", issues.len() - DESCRIBED_ISSUES));
            }
            format!("invalid input: {}", parts.join("; "))
        }
        PluginError::InvalidConfig(message) => format!("invalid config: {}", safe(message)),
        PluginError::Retryable(message) => format!("retryable: {}", safe(message)),
        PluginError::RetryAfter(retry) => {
            format!("retryable after {} ms: {}", retry.delay_ms, safe(&retry.message))
        }
        PluginError::Denied(message) => format!("denied: {}", safe(message)),
        PluginError::Internal(message) => format!("internal: {}", safe(message)),
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
