//! Granted secrets never leave an invocation in what the plugin says: every value of a key the
//! manifest lists under `secret_keys` is blanked to `[secret KEY]` in the invocation's error and in
//! its captured logs, before either reaches a caller, an execution record, a dead letter or the
//! host's log. So is every credential the host added to the invocation's requests for a
//! connection (a remote that echoes request headers would hand it to the plugin). Each is blanked
//! as it is and in the forms a plugin's quoting gives it: percent-encoded, JSON-escaped, base64.
//! Blanking comes before any cut (a plugin message capped for a denial, the 16 KiB of captured
//! stdout), so a secret is never left half visible at the edge of a cut.
//!
//! Plugins are written to report what failed, and what failed is often the thing that carries the
//! secret: a chat webhook URL is its own credential, and an SDK's `POST <url>: HTTP 503` quoted it
//! into every failed delivery. The SDKs also leave query strings out of their messages; this is
//! the host's guarantee for every plugin, whatever its SDK does. Values shorter than
//! [`MIN_SECRET_CHARS`] are left alone: blanking a `1` everywhere would garble messages and hide
//! nothing worth hiding.

use crate::error::Error;
use crate::host::logs::Logs;
use crate::record::{DelayedRetry, PluginError};

/// Shortest secret value that is blanked.
pub const MIN_SECRET_CHARS: usize = 6;

/// The secrets to blank: (key, value), longest value first so a secret containing another is
/// blanked whole.
#[derive(Debug, Default)]
pub(crate) struct Secrets(Vec<(String, String)>);

impl Secrets {
    /// The granted values of `secret_keys` in `config`.
    pub(crate) fn new<'a>(
        secret_keys: impl IntoIterator<Item = &'a String>,
        config: &std::collections::BTreeMap<String, String>,
    ) -> Secrets {
        let secrets: Vec<(String, String)> = secret_keys
            .into_iter()
            .filter_map(|key| config.get(key).map(|value| (key.clone(), value.clone())))
            .collect();
        Secrets::default().with(secrets)
    }

    /// `value` and the forms it takes when a plugin quotes it through a common encoding: in a URL
    /// (percent-encoded), in JSON (escaped) and in base64 (standard and URL-safe, padded or not).
    fn forms(value: &str) -> Vec<String> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let mut forms = vec![value.to_string()];
        // As encoders quote it: everything but letters and digits, RFC 3986's unreserved kept
        // (JavaScript's encodeURIComponent keeps `!'()*` too), and `/` kept (Python's quote).
        const UNRESERVED: &percent_encoding::AsciiSet =
            &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
        const JS: &percent_encoding::AsciiSet =
            &UNRESERVED.remove(b'!').remove(b'\'').remove(b'(').remove(b')').remove(b'*');
        const PATH: &percent_encoding::AsciiSet = &UNRESERVED.remove(b'/');
        for set in [percent_encoding::NON_ALPHANUMERIC, UNRESERVED, JS, PATH] {
            forms.push(percent_encoding::utf8_percent_encode(value, set).to_string());
        }
        if let Ok(json) = serde_json::to_string(value) {
            forms.push(json.trim_matches('"').to_string());
        }
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            forms.push(engine.encode(value));
        }
        forms.sort();
        forms.dedup();
        forms
    }

    /// These secrets and `more`, labelled as given (the credentials of connections the host
    /// added to the invocation's requests: a remote that echoes request headers would otherwise
    /// hand them to the plugin's logs and errors).
    pub(crate) fn with(mut self, more: impl IntoIterator<Item = (String, String)>) -> Secrets {
        for (label, value) in more.into_iter().filter(|(_, value)| value.chars().count() >= MIN_SECRET_CHARS) {
            for form in Secrets::forms(&value) {
                if !self.0.iter().any(|(_, known)| *known == form) {
                    self.0.push((label.clone(), form));
                }
            }
        }
        self.0.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        self
    }

    /// `text` with every secret value blanked.
    pub(crate) fn blank(&self, text: &str) -> String {
        self.0.iter().fold(text.to_string(), |text, (key, value)| {
            if text.contains(value.as_str()) { text.replace(value.as_str(), &format!("[secret {key}]")) } else { text }
        })
    }

    /// Blanks the secrets in the captured log lines.
    pub(crate) fn blank_logs(&self, logs: &mut Logs) {
        if self.0.is_empty() {
            return;
        }
        for entry in &mut logs.entries {
            entry.message = self.blank(&entry.message);
        }
    }

    /// `err` with the secrets blanked in every text the plugin supplied.
    pub(crate) fn blank_error(&self, err: Error) -> Error {
        if self.0.is_empty() {
            return err;
        }
        match err {
            Error::Guest(error) => Error::Guest(match error {
                PluginError::InvalidInput(mut issues) => {
                    for issue in &mut issues {
                        for reason in &mut issue.reasons {
                            *reason = self.blank(reason);
                        }
                    }
                    PluginError::InvalidInput(issues)
                }
                PluginError::InvalidConfig(message) => PluginError::InvalidConfig(self.blank(&message)),
                PluginError::Retryable(message) => PluginError::Retryable(self.blank(&message)),
                PluginError::RetryAfter(retry) => PluginError::RetryAfter(DelayedRetry {
                    message: self.blank(&retry.message),
                    delay_ms: retry.delay_ms,
                }),
                PluginError::Denied(message) => PluginError::Denied(self.blank(&message)),
                PluginError::Internal(message) => PluginError::Internal(self.blank(&message)),
            }),
            Error::Denied { denial, reported } => Error::Denied { denial, reported: self.blank(&reported) },
            Error::GuestTrap { kind, message, backtrace } => {
                Error::GuestTrap { kind, message: self.blank(&message), backtrace }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        let config = [
            ("webhook_url".to_string(), "https://hooks.example/T0/B1/xyz".to_string()),
            ("token".to_string(), "abc".to_string()),
            ("region".to_string(), "eu-west-1-public".to_string()),
        ]
        .into();
        Secrets::new(&["webhook_url".to_string(), "token".to_string()], &config)
    }

    #[test]
    fn secret_values_are_blanked_and_short_or_public_ones_kept() {
        let text = "POST https://hooks.example/T0/B1/xyz: HTTP 503 (token abc, region eu-west-1-public)";
        assert_eq!(secrets().blank(text), "POST [secret webhook_url]: HTTP 503 (token abc, region eu-west-1-public)");
    }

    #[test]
    fn every_plugin_supplied_text_of_an_error_is_blanked() {
        let err = Error::Guest(PluginError::InvalidInput(vec![crate::record::RecordIssue {
            index: 0,
            reasons: vec!["no https://hooks.example/T0/B1/xyz here".into()],
        }]));
        let Error::Guest(PluginError::InvalidInput(issues)) = secrets().blank_error(err) else { panic!() };
        assert_eq!(issues[0].reasons, vec!["no [secret webhook_url] here".to_string()]);
        let denied = Error::Denied { denial: "host".into(), reported: "https://hooks.example/T0/B1/xyz".into() };
        assert!(
            matches!(secrets().blank_error(denied), Error::Denied { reported, .. } if reported == "[secret webhook_url]")
        );
    }

    #[test]
    fn a_connections_credential_echoed_back_is_blanked_whole_and_bare() {
        let sent = [
            ("connection crm".to_string(), "Bearer eyJhbGciOi.payload.sig".to_string()),
            ("connection crm".to_string(), "eyJhbGciOi.payload.sig".to_string()),
        ];
        let secrets = secrets().with(sent);
        let echoed = "401: {\"authorization\": \"Bearer eyJhbGciOi.payload.sig\"} then eyJhbGciOi.payload.sig";
        assert_eq!(
            secrets.blank(echoed),
            "401: {\"authorization\": \"[secret connection crm]\"} then [secret connection crm]"
        );
    }
}

#[cfg(test)]
mod encodings {
    use super::*;

    #[test]
    fn a_secret_quoted_through_an_encoding_is_blanked_too() {
        let url = "https://hooks.example/T0-1_2.x/B~9".to_string();
        let webhook = Secrets::new(&["hook".to_string()], &[("hook".to_string(), url)].into());
        for quoted in ["https%3A%2F%2Fhooks.example%2FT0-1_2.x%2FB~9", "https%3A//hooks.example/T0-1_2.x/B~9"] {
            assert_eq!(webhook.blank(quoted), "[secret hook]", "{quoted}");
        }
        let config = [("token".to_string(), "s3cr3t/with+odd=chars\"".to_string())].into();
        let secrets = Secrets::new(&["token".to_string()], &config);
        use base64::Engine as _;
        let base64 = base64::engine::general_purpose::STANDARD.encode("s3cr3t/with+odd=chars\"");
        for quoted in [
            "GET /x?token=s3cr3t%2Fwith%2Bodd%3Dchars%22".to_string(),
            r#"{"token": "s3cr3t/with+odd=chars\""}"#.to_string(),
            format!("Authorization: Basic {base64}"),
        ] {
            let blanked = secrets.blank(&quoted);
            assert!(blanked.contains("[secret token]") && !blanked.contains("s3cr3t"), "{quoted} -> {blanked}");
        }
    }
}
