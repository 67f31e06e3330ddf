//! JSON request bodies: one extractor, [`JsonBody`], turns a body into its type and every way
//! that can fail into the API's one error body — `invalid-request` (400) with the `line` and
//! `column` where parsing stopped, or `payload-too-large` (413) — where each handler used to parse
//! bytes by hand with its own message.
//!
//! An empty body reads as JSON `null`: a route whose body is optional takes `JsonBody<Option<T>>`
//! (an empty body is `None`); for any other type an empty body is the 400 it always was.

use super::AppState;
use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

/// A request body parsed as JSON into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<JsonBody<T>, ApiError> {
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// A request body as bytes (a flow definition's JSON or YAML), read with the API's typed errors.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<RawBody, ApiError> {
        // The route's `DefaultBodyLimit` bounds the read: past it, 413; a body that breaks off, 400.
        Bytes::from_request(request, state).await.map(RawBody).map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(state.limits.max_body_bytes)
            } else {
                ApiError::invalid(format!("the request body could not be read: {rejection}"))
            }
        })
    }
}

/// `bytes` as JSON `T` (empty: `null`), or the typed 400 pointing where parsing stopped.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.is_empty() { &b"null"[..] } else { bytes };
    serde_json::from_slice(bytes).map_err(|err| {
        let (line, column) = (err.line(), err.column());
        let error = ApiError::invalid(format!("invalid JSON body: {err}"));
        if line > 0 { error.at(line, column) } else { error }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    struct Run {
        #[serde(default)]
        records: Vec<u32>,
    }

    #[test]
    fn an_empty_body_is_none_for_an_optional_body_and_a_400_otherwise() {
        assert!(matches!(parse::<Option<Run>>(b""), Ok(None)));
        assert!(parse::<Run>(b"").is_err());
        assert_eq!(parse::<Option<Run>>(br#"{"records": [1]}"#).ok().flatten().map(|r| r.records), Some(vec![1]));
    }
}
