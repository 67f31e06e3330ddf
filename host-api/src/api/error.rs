//! API errors: one JSON shape, [`ErrorBody`] (`{"code", "reason"?, "message", "backtrace"?,
//! "line"?, "column"?}`, from `plugboard-api-types`, where its schema comes from too), with a
//! fitting status.
//!
//! `code` is the runtime's stable [`ErrorCode`] string (plus the API's own `unauthorized`,
//! `forbidden`, `payload-too-large`, `invalid-request`, `overloaded`, `request-timeout`,
//! `unavailable`). Internal
//! failures answer a generic message; the detail goes to the log only.
//!
//! This is the only place that knows status codes: the domain's [`DomainError`] and the runtime's
//! [`Error`] are mapped here, variant by variant.

use crate::domain::DomainError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plugboard_api_types::{ApiErrorCode, ErrorBody};
use plugboard_runtime::{Error, ErrorCode};

/// An error answered by the API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ApiErrorCode,
    /// The runtime's code, when the error came from the runtime (for callers that branch on it).
    runtime_code: Option<ErrorCode>,
    reason: Option<&'static str>,
    message: String,
    /// `Retry-After` seconds, for 429 and 503 answers.
    retry_after: Option<u64>,
    /// For a guest trap: the guest's demangled backtrace, innermost first.
    backtrace: Vec<String>,
    /// Where in the request body the problem is: 1-based line and column.
    at: Option<(u32, u32)>,
}

impl ApiError {
    fn new(status: StatusCode, code: ApiErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            runtime_code: None,
            reason: None,
            message: message.into(),
            retry_after: None,
            backtrace: Vec::new(),
            at: None,
        }
    }

    /// This error, pointing at `line` and `column` (1-based) of the request body.
    #[must_use]
    pub fn at(self, line: usize, column: usize) -> ApiError {
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        ApiError { at: Some((narrow(line), narrow(column))), ..self }
    }

    /// 401: missing or unknown token.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ApiErrorCode::Unauthorized,
            "a valid API token is required (Authorization: Bearer …)",
        )
    }

    /// 401 with a specific message (webhook signatures).
    pub fn unauthorized_because(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, ApiErrorCode::Unauthorized, message)
    }

    /// 408: an unauthenticated body did not arrive within its deadline.
    pub fn body_timeout() -> ApiError {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ApiErrorCode::RequestTimeout,
            "the request body did not arrive in time",
        )
    }

    /// 413: a body over `limit` bytes (or one that could not be read).
    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ApiErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes or could not be read"),
        )
    }

    /// 403: the token's role may not do this.
    pub fn forbidden(what: &str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, ApiErrorCode::Forbidden, format!("this token's role may not {what}"))
    }

    /// 403 for a scoped token outside its scope (`what` names the action and its object).
    pub fn out_of_scope(what: &str, scope: &crate::store::TokenScope) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ApiErrorCode::Forbidden,
            format!("this token may not {what}: it is scoped to {scope}"),
        )
    }

    /// 400: the request itself is malformed.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidRequest, message)
    }

    /// 400 for a query string that does not parse (`?limit=abc`, an unknown parameter).
    pub fn bad_query(rejection: &axum::extract::rejection::QueryRejection) -> ApiError {
        ApiError::invalid(format!("bad query string: {}", rejection.body_text()))
    }

    /// 429: too many requests in flight.
    pub fn overloaded() -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ApiErrorCode::Overloaded,
            "the server is at its concurrency limit; retry shortly",
        )
    }

    /// 500 with a generic message; `detail` is logged, never answered.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(%detail, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ApiErrorCode::Internal, "internal error; see the server log")
    }

    /// The stable code.
    pub fn code(&self) -> ApiErrorCode {
        self.code
    }

    /// The runtime's error code, when the runtime raised it.
    pub fn runtime_code(&self) -> Option<ErrorCode> {
        self.runtime_code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// The runtime's code as the API answers it: the same string (a code added to the runtime must be
/// added to the API's, or this does not compile).
pub fn api_code(code: ErrorCode) -> ApiErrorCode {
    match code {
        ErrorCode::InvalidComponent => ApiErrorCode::InvalidComponent,
        ErrorCode::ManifestInvalid => ApiErrorCode::ManifestInvalid,
        ErrorCode::WorldMismatch => ApiErrorCode::WorldMismatch,
        ErrorCode::Signature => ApiErrorCode::Signature,
        ErrorCode::Rollback => ApiErrorCode::Rollback,
        ErrorCode::NotFound => ApiErrorCode::NotFound,
        ErrorCode::Conflict => ApiErrorCode::Conflict,
        ErrorCode::FlowInvalid => ApiErrorCode::FlowInvalid,
        ErrorCode::CapabilityDenied => ApiErrorCode::CapabilityDenied,
        ErrorCode::OutOfFuel => ApiErrorCode::OutOfFuel,
        ErrorCode::Timeout => ApiErrorCode::Timeout,
        ErrorCode::MemoryLimit => ApiErrorCode::MemoryLimit,
        ErrorCode::InputTooLarge => ApiErrorCode::InputTooLarge,
        ErrorCode::OutputTooLarge => ApiErrorCode::OutputTooLarge,
        ErrorCode::GuestTrap => ApiErrorCode::GuestTrap,
        ErrorCode::GuestError => ApiErrorCode::GuestError,
        ErrorCode::Overloaded => ApiErrorCode::Overloaded,
        ErrorCode::KeyValueQuota => ApiErrorCode::KeyValueQuota,
        ErrorCode::Internal => ApiErrorCode::Internal,
    }
}

fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidComponent
        | ErrorCode::ManifestInvalid
        | ErrorCode::WorldMismatch
        | ErrorCode::Signature
        | ErrorCode::FlowInvalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Rollback | ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::InputTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::CapabilityDenied
        | ErrorCode::OutOfFuel
        | ErrorCode::MemoryLimit
        | ErrorCode::OutputTooLarge
        | ErrorCode::GuestTrap
        | ErrorCode::GuestError => StatusCode::UNPROCESSABLE_ENTITY,
        // The plugin's stored state leaves no room for this invocation's writes (another one may
        // have taken it since they were checked): a conflict with the current state.
        ErrorCode::KeyValueQuota => StatusCode::CONFLICT,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> ApiError {
        if let Error::Internal(detail) = &err {
            return ApiError::internal(detail);
        }
        let code = err.code();
        let reason = match &err {
            Error::Signature(signature) => Some(signature.reason()),
            _ => None,
        };
        let backtrace = match &err {
            Error::GuestTrap { backtrace, .. } => backtrace.clone(),
            _ => Vec::new(),
        };
        ApiError {
            status: status_for(code),
            code: api_code(code),
            runtime_code: Some(code),
            reason,
            message: err.message(),
            retry_after: None,
            backtrace,
            at: None,
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> ApiError {
        match err {
            crate::store::StoreError::Conflict(why) => ApiError::new(StatusCode::CONFLICT, ApiErrorCode::Conflict, why),
            crate::store::StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "shared store unavailable");
                ApiError {
                    retry_after: Some(1),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        ApiErrorCode::Unavailable,
                        "the shared store did not acknowledge this (a failover may be under way); retry",
                    )
                }
            }
            err => ApiError::internal(err),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> ApiError {
        match err {
            DomainError::Runtime(err) => err.into(),
            DomainError::Store(err) => err.into(),
            DomainError::Invalid(message) => ApiError::invalid(message),
            DomainError::Internal(detail) => ApiError::internal(detail),
            err @ DomainError::PluginInactive { .. } => {
                ApiError::new(StatusCode::CONFLICT, ApiErrorCode::Conflict, err.to_string())
            }
            DomainError::QueueFull { retry_after_secs, .. } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, ApiErrorCode::Overloaded, err.to_string())
            },
        }
    }
}

impl ApiError {
    /// The error body it answers.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message.clone(),
            reason: self.reason.map(str::to_string),
            backtrace: self.backtrace.clone(),
            line: self.at.map(|(line, _)| line),
            column: self.at.map(|(_, column)| column),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
