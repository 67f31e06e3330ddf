//! The one error body of the API and its stable codes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every `code` the API answers: the runtime's error codes (the same strings) and the API's own.
/// Scripts branch on these; they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ApiErrorCode {
    /// The bytes are not a component, or the component targets no Plugboard world.
    InvalidComponent,
    /// The manifest is malformed or disagrees with the component.
    ManifestInvalid,
    /// The component implements another world than its manifest's kind.
    WorldMismatch,
    /// The signature check failed; `reason` says how.
    Signature,
    /// A lower version than the highest installed was refused.
    Rollback,
    /// The named thing does not exist.
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// A flow definition is invalid.
    FlowInvalid,
    /// The plugin used a capability the operator did not grant.
    CapabilityDenied,
    /// The plugin ran out of fuel.
    OutOfFuel,
    /// The plugin ran past its deadline.
    Timeout,
    /// The plugin's memory grew past its budget.
    MemoryLimit,
    /// The input is larger than the budget allows.
    InputTooLarge,
    /// The plugin's output is larger than the budget allows.
    OutputTooLarge,
    /// The plugin trapped; `backtrace` holds its frames.
    GuestTrap,
    /// The plugin returned its own typed error.
    GuestError,
    /// Capacity is taken (requests in flight, the instance pool, a full queue); retry after
    /// `Retry-After`.
    Overloaded,
    /// The invocation's key-value writes no longer fit the plugin's quota at commit.
    KeyValueQuota,
    /// A fault inside the server; the detail is in its log.
    Internal,
    /// No valid token (or, for a webhook, no valid signature).
    Unauthorized,
    /// The token's role or scope does not allow this.
    Forbidden,
    /// The body is larger than the route takes.
    PayloadTooLarge,
    /// The request itself is malformed; `line` and `column` point into the body when known.
    InvalidRequest,
    /// The request did not complete within its deadline.
    RequestTimeout,
    /// The shared store did not acknowledge (cluster failover); retry.
    Unavailable,
}

impl ApiErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiErrorCode::InvalidComponent => "invalid-component",
            ApiErrorCode::ManifestInvalid => "manifest-invalid",
            ApiErrorCode::WorldMismatch => "world-mismatch",
            ApiErrorCode::Signature => "signature",
            ApiErrorCode::Rollback => "rollback",
            ApiErrorCode::NotFound => "not-found",
            ApiErrorCode::Conflict => "conflict",
            ApiErrorCode::FlowInvalid => "flow-invalid",
            ApiErrorCode::CapabilityDenied => "capability-denied",
            ApiErrorCode::OutOfFuel => "out-of-fuel",
            ApiErrorCode::Timeout => "timeout",
            ApiErrorCode::MemoryLimit => "memory-limit",
            ApiErrorCode::InputTooLarge => "input-too-large",
            ApiErrorCode::OutputTooLarge => "output-too-large",
            ApiErrorCode::GuestTrap => "guest-trap",
            ApiErrorCode::GuestError => "guest-error",
            ApiErrorCode::Overloaded => "overloaded",
            ApiErrorCode::KeyValueQuota => "key-value-quota",
            ApiErrorCode::Internal => "internal",
            ApiErrorCode::Unauthorized => "unauthorized",
            ApiErrorCode::Forbidden => "forbidden",
            ApiErrorCode::PayloadTooLarge => "payload-too-large",
            ApiErrorCode::InvalidRequest => "invalid-request",
            ApiErrorCode::RequestTimeout => "request-timeout",
            ApiErrorCode::Unavailable => "unavailable",
        }
    }
}

impl std::fmt::Display for ApiErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every failed request answers. An invocation's error adds its `usage` and `logs` (and a
/// plugin's own error, `plugin_error`) beside these fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Error")]
pub struct ErrorBody {
    /// The stable code.
    pub code: ApiErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// For `signature`: `unsigned`, `unknown-key`, `revoked-key`, `bad-signature` or
    /// `digest-mismatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `guest-trap`: the plugin's demangled backtrace, innermost frame first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backtrace: Vec<String>,
    /// Where in the request body the problem is (1-based), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The column on `line` (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_on_the_wire_as_its_string() {
        for code in [ApiErrorCode::InvalidComponent, ApiErrorCode::KeyValueQuota, ApiErrorCode::PayloadTooLarge] {
            let wire = serde_json::to_value(code).ok();
            assert_eq!(wire.as_ref().and_then(|v| v.as_str()), Some(code.as_str()));
        }
    }
}
