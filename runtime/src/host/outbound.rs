//! Outbound HTTP for connectors: an allow-list checked on every request, with size and time bounds.
//!
//! Deny by default. A request reaches the network only when its destination matches one of the
//! installation's effective [`HostPattern`]s. Loopback, private, link-local and other non-public
//! addresses (`host::addresses`) are reachable only through a pattern that names the host exactly (no wildcard), and a
//! DNS name that resolves to such an address counts as that address. A refused request fails in the
//! guest with `error-code.HTTP-request-denied`, so the plugin sees a typed denial and the host stays
//! up. Request and response bodies are capped and every phase of the exchange has a timeout.
//!
//! Known gap: the destination is resolved here and again by the connector, so a DNS answer that
//! changes between the two (rebinding) is not caught for names; IP literals are exact.

use crate::host::addresses::is_non_public;
use crate::host::logs::LogSink;
use http_body_util::{BodyExt, Limited};
use std::net::IpAddr;
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// One allow-list entry: `[scheme://]host[:port]`, where host may be `*` or `*.domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Option<String>,
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses an allow-list entry.
    ///
    /// # Errors
    /// A reason when the entry is not of the documented form.
    pub fn parse(entry: &str) -> Result<HostPattern, String> {
        let (scheme, rest) = match entry.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = scheme.to_ascii_lowercase();
                if scheme != "http" && scheme != "https" {
                    return Err(format!("scheme `{scheme}` is not http or https"));
                }
                (Some(scheme), rest)
            }
            None => (None, entry),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') || rest.is_empty() {
            return Err("expected [scheme://]host[:port]".into());
        }
        let (host, port) = split_host_port(rest)?;
        let wildcard_ok = host == "*" || !host.contains('*') || (host.starts_with("*.") && !host[2..].contains('*'));
        if !wildcard_ok {
            return Err("a wildcard may only be `*` or lead as `*.domain`".into());
        }
        Ok(HostPattern { scheme, host: host.to_ascii_lowercase(), port })
    }

    fn is_exact(&self) -> bool {
        !self.host.contains('*')
    }

    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let port_ok = self.port.is_none_or(|p| p == port);
        let host_ok = if self.host == "*" {
            true
        } else if let Some(domain) = self.host.strip_prefix("*.") {
            host.ends_with(&format!(".{domain}"))
        } else {
            self.host == host
        };
        scheme_ok && port_ok && host_ok
    }
}

fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    // Bracketed IPv6: [::1]:8080
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed `[`")?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().map_err(|_| format!("bad port `{port}`"))?),
            None if after.is_empty() => None,
            None => return Err("junk after `]`".into()),
        };
        return Ok((host, port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(port.parse().map_err(|_| format!("bad port `{port}`"))?))),
        None => Ok((text, None)),
    }
}

/// Size and time bounds on outbound exchanges.
#[derive(Debug, Clone, Copy)]
pub struct OutboundLimits {
    /// Largest request body a guest may send.
    pub max_request_body: usize,
    /// Largest response body a guest may receive.
    pub max_response_body: usize,
    /// Upper bound on connect, first-byte and between-bytes timeouts.
    pub max_phase_timeout: Duration,
}

impl Default for OutboundLimits {
    fn default() -> OutboundLimits {
        OutboundLimits {
            max_request_body: 8 << 20,
            max_response_body: 16 << 20,
            max_phase_timeout: Duration::from_secs(30),
        }
    }
}

/// The `wasi:http` hooks for one invocation: the allow-list, bounds, and a log of denials.
pub struct OutboundPolicy {
    pub(crate) allowed: std::sync::Arc<[HostPattern]>,
    pub(crate) limits: OutboundLimits,
    pub(crate) log: LogSink,
}

/// Why a destination is refused, or `None` when it may be reached.
async fn refusal(allowed: &[HostPattern], scheme: &str, host: &str, port: u16) -> Option<String> {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let Some(pattern) = allowed.iter().find(|p| p.matches(scheme, &host, port)) else {
        return Some(format!("{scheme}://{host}:{port} is not on this plugin's outbound allow-list"));
    };
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(found) => found.map(|addr| addr.ip()).collect(),
            // Unresolvable: let the connector report the DNS failure itself.
            Err(_) => return None,
        },
    };
    if addresses.into_iter().any(is_non_public) && !pattern.is_exact() {
        return Some(format!("{host} is a loopback or private address; it must be listed exactly, not by wildcard"));
    }
    None
}

fn clamp(option: Option<Duration>, cap: Duration) -> Option<Duration> {
    Some(option.map_or(cap, |d| d.min(cap)))
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                    HttpError,
                >,
            > + Send,
    > {
        drop(fut);
        let allowed = self.allowed.clone();
        let limits = self.limits;
        let log = self.log.clone();
        Box::new(async move {
            let uri = request.uri().clone();
            let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
            let host = uri.host().unwrap_or_default().to_string();
            let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
            if let Some(reason) = refusal(&allowed, &scheme, &host, port).await {
                log.host_warning(format!("outbound request denied: {reason}"));
                return Err(HttpError::HttpRequestDenied);
            }
            let max_request = limits.max_request_body;
            let request = request.map(|body| {
                Limited::new(body, max_request)
                    .map_err(move |err| match err.downcast::<HttpError>() {
                        Ok(inner) => *inner,
                        Err(_) => HttpError::HttpRequestBodySize(Some(max_request as u64)),
                    })
                    .boxed_unsync()
            });
            let cap = limits.max_phase_timeout;
            let options = options.unwrap_or_default();
            let options = RequestOptions {
                connect_timeout: clamp(options.connect_timeout, cap),
                first_byte_timeout: clamp(options.first_byte_timeout, cap),
                between_bytes_timeout: clamp(options.between_bytes_timeout, cap),
            };
            let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            let max_response = limits.max_response_body;
            let response = response.map(|body| {
                Limited::new(body, max_response)
                    .map_err(move |err| match err.downcast::<HttpError>() {
                        Ok(inner) => *inner,
                        Err(_) => HttpError::HttpResponseBodySize(Some(max_response as u64)),
                    })
                    .boxed_unsync()
            });
            Ok((response, Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> Vec<HostPattern> {
        entries.iter().map(|e| HostPattern::parse(e).expect("valid pattern")).collect()
    }

    #[test]
    fn parses_and_matches_patterns() {
        let p = HostPattern::parse("https://*.example.com").expect("valid");
        assert!(p.matches("https", "api.example.com", 443));
        assert!(!p.matches("http", "api.example.com", 80));
        assert!(!p.matches("https", "example.com", 443));
        let p = HostPattern::parse("127.0.0.1:8080").expect("valid");
        assert!(p.matches("http", "127.0.0.1", 8080));
        assert!(!p.matches("http", "127.0.0.1", 8081));
        assert!(HostPattern::parse("[::1]:9000").expect("valid").matches("http", "::1", 9000));
        for bad in ["ftp://x", "a*b.com", "host:port", "", "http://user@host", "x.com/path"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[tokio::test]
    async fn denies_by_default_and_guards_private_addresses() {
        assert!(refusal(&[], "http", "127.0.0.1", 80).await.is_some());
        assert!(refusal(&allowed(&["127.0.0.1:80"]), "http", "127.0.0.1", 80).await.is_none());
        assert!(refusal(&allowed(&["*"]), "http", "127.0.0.1", 80).await.is_some());
        assert!(refusal(&allowed(&["*"]), "http", "10.1.2.3", 80).await.is_some());
        assert!(refusal(&allowed(&["*"]), "http", "localhost", 80).await.is_some());
        assert!(refusal(&allowed(&["localhost"]), "http", "localhost", 80).await.is_none());
        assert!(refusal(&allowed(&["*"]), "http", "[::1]", 80).await.is_some());
        for hidden in ["0.1.2.3", "224.0.0.1", "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[::ffff:10.0.0.1]", "[ff02::1]"]
        {
            assert!(refusal(&allowed(&["*"]), "http", hidden, 80).await.is_some(), "{hidden} must count as private");
        }
        assert!(
            refusal(&allowed(&["*"]), "http", "[64:ff9b::808:808]", 80).await.is_none(),
            "NAT64 of a public address"
        );
    }
}
