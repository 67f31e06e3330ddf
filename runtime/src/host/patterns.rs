//! Outbound allow-list entries: `[scheme://]host[:port]`, where host may be `*` or `*.domain`,
//! as manifests request them, grants give them and connections bind credentials to them. Parsing
//! and matching only; what a match lets through (addresses, credentials) is `outbound.rs`.

/// Why an allow-list entry is not of the form `[scheme://]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A scheme other than http or https.
    #[error("scheme `{0}` is not http or https")]
    Scheme(String),
    /// A path, user info, or nothing where the host should be.
    #[error("expected [scheme://]host[:port]")]
    Shape,
    /// `*` anywhere but alone or leading `*.domain`.
    #[error("a wildcard may only be `*` or lead as `*.domain`")]
    Wildcard,
    /// A `[` of an IPv6 address without its `]`.
    #[error("unclosed `[`")]
    Unclosed,
    /// Something after an IPv6 address's `]` that is not `:port`.
    #[error("junk after `]`")]
    AfterBracket,
    /// A port that is not a number up to 65535.
    #[error("bad port `{0}`")]
    Port(String),
}

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
    /// [`PatternError`] when the entry is not of the documented form.
    pub fn parse(entry: &str) -> Result<HostPattern, PatternError> {
        let (scheme, rest) = match entry.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = scheme.to_ascii_lowercase();
                if scheme != "http" && scheme != "https" {
                    return Err(PatternError::Scheme(scheme));
                }
                (Some(scheme), rest)
            }
            None => (None, entry),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') || rest.is_empty() {
            return Err(PatternError::Shape);
        }
        let (host, port) = split_host_port(rest)?;
        let wildcard_ok = host == "*" || !host.contains('*') || (host.starts_with("*.") && !host[2..].contains('*'));
        if !wildcard_ok {
            return Err(PatternError::Wildcard);
        }
        Ok(HostPattern { scheme, host: host.to_ascii_lowercase(), port })
    }

    pub(crate) fn is_exact(&self) -> bool {
        !self.host.contains('*')
    }

    /// Whether the pattern is the bare `*` (every host).
    pub fn is_any_host(&self) -> bool {
        self.host == "*"
    }

    /// The stricter match credentials use: a pattern without a scheme names `https` only, and one
    /// without a port names the scheme's default port only, so a credential is never sent in
    /// clear or to another port of the host unless the pattern says so (`http://host:8080`).
    pub fn names(&self, scheme: &str, host: &str, port: u16) -> bool {
        let wanted_scheme = self.scheme.as_deref().unwrap_or("https");
        let default_port = if wanted_scheme == "https" { 443 } else { 80 };
        scheme == wanted_scheme && port == self.port.unwrap_or(default_port) && self.matches(scheme, host, port)
    }

    /// Whether a request to `scheme://host:port` (the host in lower case) matches.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
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

fn split_host_port(text: &str) -> Result<(&str, Option<u16>), PatternError> {
    // Bracketed IPv6: [::1]:8080
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(PatternError::Unclosed)?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().map_err(|_| PatternError::Port(port.to_string()))?),
            None if after.is_empty() => None,
            None => return Err(PatternError::AfterBracket),
        };
        return Ok((host, port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(port.parse().map_err(|_| PatternError::Port(port.to_string()))?))),
        None => Ok((text, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
