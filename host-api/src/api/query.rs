//! The query-string extractor every route uses: axum's `Query`, with its rejection answered in the
//! API's JSON error shape (`400 invalid-request`) instead of axum's plain text, so a client that
//! branches on `code` sees `?limit=abc` or an unknown filter the same way as any other bad input.

use super::error::ApiError;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A parsed query string; a malformed one is `400 invalid-request`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_query(&rejection)),
        }
    }
}
