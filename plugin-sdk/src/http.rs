//! A small blocking HTTP client over `wasi:http/outgoing-handler`, for connectors.
//!
//! The host decides which hosts a plugin may reach (the installation's allow-list, deny by
//! default); a request elsewhere fails with [`HttpError::Denied`], which converts into
//! [`PluginError::Denied`]. Transport failures convert into [`PluginError::Retryable`]; for an
//! answer worth retrying, [`Response::retry_error`] carries the delay its `Retry-After` asks for.

use crate::PluginError;
use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::{OutputStream, StreamError};

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host refused the request: its destination is not on the allow-list.
    Denied(String),
    /// The URL or a header is malformed.
    Invalid(String),
    /// The connection or the exchange failed; retrying may succeed.
    Transport(String),
}

impl From<HttpError> for PluginError {
    fn from(err: HttpError) -> PluginError {
        match err {
            HttpError::Denied(message) => PluginError::Denied(message),
            HttpError::Invalid(message) => PluginError::InvalidConfig(message),
            HttpError::Transport(message) => PluginError::Retryable(message),
        }
    }
}

impl From<ErrorCode> for HttpError {
    fn from(code: ErrorCode) -> HttpError {
        match code {
            ErrorCode::HttpRequestDenied => HttpError::Denied("the host denied this request".into()),
            ErrorCode::HttpRequestUriInvalid => HttpError::Invalid("invalid request URI".into()),
            other => HttpError::Transport(format!("{other:?}")),
        }
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Response headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// The delay, in milliseconds, that a `429` or `503` answer's `Retry-After` asks for, when it
    /// gives one in seconds. (The host also reads HTTP-date values and lengthens any retryable
    /// error of the invocation to what the remote asked, so a plugin cannot forget it.)
    pub fn retry_after_ms(&self) -> Option<u64> {
        if self.status != 429 && self.status != 503 {
            return None;
        }
        let seconds = self.header("retry-after")?.trim();
        if seconds.is_empty() || !seconds.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // At most a day is taken from a remote (the host caps the wait lower still).
        Some(seconds.parse::<u64>().unwrap_or(u64::MAX).min(86_400) * 1_000)
    }

    /// The error for an answer worth retrying (a 5xx, a 429): [`PluginError::RetryAfter`] with
    /// the delay of [`Response::retry_after_ms`] when there is one, [`PluginError::Retryable`]
    /// otherwise. The flow's retry waits at least that delay.
    pub fn retry_error(&self, message: impl Into<String>) -> PluginError {
        let message = message.into();
        match self.retry_after_ms() {
            Some(delay_ms) => PluginError::RetryAfter(crate::DelayedRetry { message, delay_ms }),
            None => PluginError::Retryable(message),
        }
    }

    /// The first header called `name` (case-insensitive) as text, if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }
}

/// `GET url` with `headers`.
///
/// # Errors
/// See [`HttpError`].
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
    send(Method::Get, url, headers, None)
}

/// `POST url` with `headers` and `body`.
///
/// # Errors
/// See [`HttpError`].
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, HttpError> {
    send(Method::Post, url, headers, Some(body))
}

struct Target<'a> {
    scheme: Scheme,
    authority: &'a str,
    path_and_query: &'a str,
}

fn parse_url(url: &str) -> Result<Target<'_>, HttpError> {
    let (scheme, rest) =
        url.split_once("://").ok_or_else(|| HttpError::Invalid(format!("`{url}` is not an absolute URL")))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(HttpError::Invalid(format!("unsupported URL scheme `{other}`"))),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(split);
    if authority.is_empty() {
        return Err(HttpError::Invalid(format!("`{url}` has no host")));
    }
    let path_and_query = if path_and_query.is_empty() { "/" } else { path_and_query };
    Ok(Target { scheme, authority, path_and_query })
}

fn send(method: Method, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<Response, HttpError> {
    let target = parse_url(url)?;
    let fields = Fields::new();
    for (name, value) in headers {
        fields.append(name, value.as_bytes()).map_err(|err| HttpError::Invalid(format!("header `{name}`: {err:?}")))?;
    }
    if body.is_some() && !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        let _ = fields.append("content-type", b"application/json");
    }
    if let Some(bytes) = body.filter(|_| !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-length"))) {
        // A known length goes out as one fixed-length body rather than chunks.
        let _ = fields.append("content-length", bytes.len().to_string().as_bytes());
    }
    let request = OutgoingRequest::new(fields);
    let invalid = |what: &str| HttpError::Invalid(format!("invalid {what} in `{url}`"));
    request.set_method(&method).map_err(|()| invalid("method"))?;
    request.set_scheme(Some(&target.scheme)).map_err(|()| invalid("scheme"))?;
    request.set_authority(Some(target.authority)).map_err(|()| invalid("authority"))?;
    request.set_path_with_query(Some(target.path_and_query)).map_err(|()| invalid("path"))?;

    let outgoing_body = request.body().map_err(|()| HttpError::Transport("request body taken".into()))?;
    let pending = outgoing_handler::handle(request, None)?;
    if let Some(bytes) = body {
        let stream = outgoing_body.write().map_err(|()| HttpError::Transport("request body stream taken".into()))?;
        write_all(&stream, bytes)?;
        drop(stream);
    }
    OutgoingBody::finish(outgoing_body, None)?;

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(code.into()),
        Some(Err(())) | None => return Err(HttpError::Transport("response already taken".into())),
    };
    let status = response.status();
    let headers = response.headers().entries().into_iter().collect::<Vec<(String, Vec<u8>)>>();
    let incoming = response.consume().map_err(|()| HttpError::Transport("body taken".into()))?;
    let body = read_body(&incoming)?;
    drop(response);
    IncomingBody::finish(incoming);
    Ok(Response { status, headers, body })
}

/// Writes `bytes` in as few writes as the stream permits (`blocking-write-and-flush` would cap each
/// at 4 KiB and wait for every piece to be taken), then flushes.
fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), HttpError> {
    let ready = stream.subscribe();
    while !bytes.is_empty() {
        let permitted = usize::try_from(stream.check_write().map_err(stream_error)?).unwrap_or(usize::MAX);
        if permitted == 0 {
            ready.block();
            continue;
        }
        let (now, rest) = bytes.split_at(permitted.min(bytes.len()));
        stream.write(now).map_err(stream_error)?;
        bytes = rest;
    }
    drop(ready);
    match stream.blocking_flush() {
        // Every byte was accepted; with a content-length the host may close the stream as soon as
        // it has them all, before this flush. Anything actually lost shows in the response.
        Ok(()) | Err(StreamError::Closed) => Ok(()),
        Err(err) => Err(stream_error(err)),
    }
}

fn read_body(incoming: &IncomingBody) -> Result<Vec<u8>, HttpError> {
    let stream = incoming.stream().map_err(|()| HttpError::Transport("body stream taken".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(err) => return Err(stream_error(err)),
        }
    }
    Ok(body)
}

fn stream_error(err: StreamError) -> HttpError {
    match err {
        StreamError::Closed => HttpError::Transport("stream closed".into()),
        StreamError::LastOperationFailed(err) => HttpError::Transport(err.to_debug_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_absolute_urls() {
        let target = parse_url("http://127.0.0.1:8080/orders?page=2").unwrap_or_else(|_| unreachable!());
        assert_eq!(target.authority, "127.0.0.1:8080");
        assert_eq!(target.path_and_query, "/orders?page=2");
        let bare = parse_url("https://example.com").unwrap_or_else(|_| unreachable!());
        assert_eq!(bare.path_and_query, "/");
        assert!(matches!(parse_url("example.com/x"), Err(HttpError::Invalid(_))));
        assert!(matches!(parse_url("ftp://example.com/"), Err(HttpError::Invalid(_))));
    }
}
