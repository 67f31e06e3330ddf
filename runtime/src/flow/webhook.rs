//! Webhook triggers as data: how a sender authenticates a delivery, what its body is, which of its
//! headers reach the records, which events it may send and from where.
//!
//! Every sender Plugboard speaks (GitHub, Stripe, Slack, Shopify, Standard Webhooks, CloudEvents,
//! its own scheme) is one [`SchemeSpec`] value built by [`WebhookTrigger::spec`]; a sender not in
//! the list is described in the flow itself (`scheme: hmac` with an [`HmacSpec`]) and needs no
//! code. The control plane's handler reads only the spec, so adding a sender is adding a value
//! here, never a branch in the handler. Validation (a typo in a scheme, a header name, a CIDR) is
//! a `flow-invalid` naming the field, at the time the flow is saved.

pub use super::cidr::{Cidr, parse_cidr};
use crate::error::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Largest webhook `tolerance_secs`: how long a captured delivery may stay usable (one hour).
pub const MAX_WEBHOOK_TOLERANCE_SECS: u64 = 3600;

/// Largest `dedupe_secs`: how long a sender's delivery id is remembered (seven days).
pub const MAX_DEDUPE_SECS: u64 = 7 * 24 * 3600;

/// The webhook trigger of a flow: `POST /v1/hooks/{flow}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTrigger {
    /// How a delivery is authenticated (default `plugboard`).
    #[serde(default)]
    pub scheme: SchemeName,
    /// Largest accepted difference between a signed timestamp and now, in seconds (schemes that
    /// sign one).
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
    /// How long a sender's delivery id (or, for a scheme without a timestamp, the signature) is
    /// remembered so a retry runs nothing (default three days: Stripe retries that long).
    #[serde(default = "default_dedupe")]
    pub dedupe_secs: u64,
    /// What the body is (default: `records` for `plugboard`, `cloudevents` for `cloudevents`,
    /// `event` for every other scheme).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyShape>,
    /// Request headers (names, any case) copied onto every record as record headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// Event types accepted (from the scheme's event header or field); others are answered
    /// `200 ignored` and queue nothing. Empty: every event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// Source addresses (CIDRs, or single addresses) a delivery may come from. Empty: anywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_from: Vec<String>,
    /// The signature of a `hmac` scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<HmacSpec>,
    /// The header an `api-key` scheme reads the key from (default `x-api-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_header: Option<String>,
}

impl Default for WebhookTrigger {
    /// Plugboard's own scheme, with every setting at its default.
    fn default() -> WebhookTrigger {
        WebhookTrigger {
            scheme: SchemeName::Plugboard,
            tolerance_secs: default_tolerance(),
            dedupe_secs: default_dedupe(),
            body: None,
            headers: Vec::new(),
            events: Vec::new(),
            allow_from: Vec::new(),
            hmac: None,
            api_key_header: None,
        }
    }
}

fn default_tolerance() -> u64 {
    300
}
fn default_dedupe() -> u64 {
    3 * 24 * 3600
}

/// The named schemes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SchemeName {
    /// `X-Plugboard-Signature: sha256=HEX` over `"{timestamp}.{flow}.{body}"`.
    #[default]
    Plugboard,
    /// The Standard Webhooks specification (Svix, Zapier, Twilio, Kong, Supabase, …).
    StandardWebhooks,
    /// GitHub: `X-Hub-Signature-256: sha256=HEX` over the body.
    Github,
    /// Stripe: `Stripe-Signature: t=…,v1=…` over `"{t}.{body}"`.
    Stripe,
    /// Slack: `X-Slack-Signature: v0=HEX` over `"v0:{timestamp}:{body}"`.
    Slack,
    /// Shopify: `X-Shopify-Hmac-Sha256: BASE64` over the body.
    Shopify,
    /// CloudEvents over HTTP, authenticated by `Authorization: Bearer <secret>` as the
    /// CloudEvents web hook specification describes.
    Cloudevents,
    /// A generic HMAC described by the trigger's `hmac` field.
    Hmac,
    /// `Authorization: Basic` with the secret as `user:password`.
    Basic,
    /// The secret in a header (`api_key_header`).
    ApiKey,
}

/// What a delivery's body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BodyShape {
    /// `{"records": [...]}` or a JSON array of records.
    Records,
    /// The whole body is one record: a JSON value, or an `application/x-www-form-urlencoded`
    /// form as a JSON object.
    Event,
    /// CloudEvents: structured (`application/cloudevents+json`), batch
    /// (`application/cloudevents-batch+json`) or binary (`ce-*` headers); each event one record
    /// (its `data`), its attributes as `ce-*` record headers.
    Cloudevents,
}

/// A hash function of an HMAC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// HMAC-SHA1 (older senders).
    Sha1,
    /// HMAC-SHA256.
    #[default]
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

/// How signature bytes are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// Lower- or upper-case hexadecimal.
    #[default]
    Hex,
    /// Standard base64.
    Base64,
}

/// A generic HMAC signature, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HmacSpec {
    /// The header carrying the signature.
    pub header: String,
    /// Text before the signature (`sha256=`), if any.
    #[serde(default)]
    pub prefix: String,
    /// The hash.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// How the signature is written.
    #[serde(default)]
    pub encoding: Encoding,
    /// What is signed: a template over `{body}`, `{timestamp}`, `{id}` and `{flow}` (default
    /// `{body}`); `{body}` must come last.
    #[serde(default = "default_signed")]
    pub signed: String,
    /// The header with the Unix timestamp, checked against `tolerance_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    /// The header with the sender's delivery id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_header: Option<String>,
    /// The header with the event type, for `events`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_header: Option<String>,
}

fn default_signed() -> String {
    "{body}".into()
}

/// How a named scheme works, as data: what [`WebhookTrigger::spec`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeSpec {
    /// How the request proves it comes from the secret's holder.
    pub auth: Auth,
    /// Where the sender's delivery id is.
    pub id: Option<Locator>,
    /// Where the event type is.
    pub event: Vec<Locator>,
    /// A handshake answered without queuing.
    pub handshake: Option<Handshake>,
    /// The body when the trigger names none.
    pub body: BodyShape,
}

/// How a request is authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// An HMAC over part of the request.
    Signature(Signature),
    /// `Authorization: Basic`, the secret being `user:password`.
    Basic,
    /// `Authorization: Bearer <secret>`.
    Bearer,
    /// The secret in this header.
    Header(String),
}

/// An HMAC signature scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The header carrying it (lower case).
    pub header: String,
    /// How signatures are laid out in the header.
    pub layout: Layout,
    /// The hash.
    pub algorithm: Algorithm,
    /// How signature bytes are written.
    pub encoding: Encoding,
    /// What is signed (a template, see [`HmacSpec::signed`]).
    pub signed: String,
    /// Where the timestamp is, when one is signed.
    pub timestamp: Option<Locator>,
    /// How the secret becomes the HMAC key.
    pub key: KeyForm,
}

/// How signatures are laid out in their header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One signature after a prefix (`sha256=…`).
    Single {
        /// The prefix.
        prefix: String,
    },
    /// Several items split by `separator`; those starting with `prefix` are signatures (Stripe's
    /// `t=…,v1=…,v1=…`, Standard Webhooks' `v1,… v1,…`). Any one matching is enough.
    List {
        /// Between items.
        separator: char,
        /// Before each signature.
        prefix: String,
    },
}

/// Where a value is found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locator {
    /// A header (lower case).
    Header(String),
    /// A field of the JSON body, as a JSON pointer (`/event/type`).
    Field(String),
    /// An item of the signature header (Stripe's `t=`).
    SignatureItem(String),
    /// The CloudEvents attributes (`source` and `id`, or `type`) of each event.
    CloudEvent,
}

/// A request answered at once, without queuing, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// This event type (GitHub's `ping`) is answered `200` and runs nothing.
    Ping(String),
    /// A body whose `type` is `kind` is answered with its `field` echoed (Slack's
    /// `url_verification` with its `challenge`).
    Challenge {
        /// The body's `type`.
        kind: String,
        /// The field echoed back.
        field: String,
    },
}

/// How a secret becomes an HMAC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// Its bytes as given (Stripe's `whsec_…` included).
    Raw,
    /// Standard Webhooks: `whsec_` then base64 of the key bytes.
    WhsecBase64,
}

fn header(name: &str) -> Locator {
    Locator::Header(name.into())
}

fn signature(header: &str, layout: Layout, encoding: Encoding, signed: &str, timestamp: Option<Locator>) -> Signature {
    Signature {
        header: header.into(),
        layout,
        algorithm: Algorithm::Sha256,
        encoding,
        signed: signed.into(),
        timestamp,
        key: KeyForm::Raw,
    }
}

fn single(prefix: &str) -> Layout {
    Layout::Single { prefix: prefix.into() }
}

impl WebhookTrigger {
    /// How this trigger's scheme works.
    pub fn spec(&self) -> SchemeSpec {
        let event_body = self.body.unwrap_or(BodyShape::Event);
        let plain = |auth| SchemeSpec { auth, id: None, event: Vec::new(), handshake: None, body: event_body };
        match self.scheme {
            SchemeName::Plugboard => SchemeSpec {
                body: self.body.unwrap_or(BodyShape::Records),
                ..plain(Auth::Signature(signature(
                    "x-plugboard-signature",
                    single("sha256="),
                    Encoding::Hex,
                    "{timestamp}.{flow}.{body}",
                    Some(header("x-plugboard-timestamp")),
                )))
            },
            SchemeName::StandardWebhooks => SchemeSpec {
                id: Some(header("webhook-id")),
                event: vec![Locator::Field("/type".into())],
                ..plain(Auth::Signature(Signature {
                    key: KeyForm::WhsecBase64,
                    ..signature(
                        "webhook-signature",
                        Layout::List { separator: ' ', prefix: "v1,".into() },
                        Encoding::Base64,
                        "{id}.{timestamp}.{body}",
                        Some(header("webhook-timestamp")),
                    )
                }))
            },
            SchemeName::Github => SchemeSpec {
                id: Some(header("x-github-delivery")),
                event: vec![header("x-github-event")],
                handshake: Some(Handshake::Ping("ping".into())),
                ..plain(Auth::Signature(signature(
                    "x-hub-signature-256",
                    single("sha256="),
                    Encoding::Hex,
                    "{body}",
                    None,
                )))
            },
            SchemeName::Stripe => SchemeSpec {
                id: Some(Locator::Field("/id".into())),
                event: vec![Locator::Field("/type".into())],
                ..plain(Auth::Signature(signature(
                    "stripe-signature",
                    Layout::List { separator: ',', prefix: "v1=".into() },
                    Encoding::Hex,
                    "{timestamp}.{body}",
                    Some(Locator::SignatureItem("t=".into())),
                )))
            },
            SchemeName::Slack => SchemeSpec {
                id: Some(Locator::Field("/event_id".into())),
                event: vec![Locator::Field("/event/type".into()), Locator::Field("/type".into())],
                handshake: Some(Handshake::Challenge { kind: "url_verification".into(), field: "challenge".into() }),
                ..plain(Auth::Signature(signature(
                    "x-slack-signature",
                    single("v0="),
                    Encoding::Hex,
                    "v0:{timestamp}:{body}",
                    Some(header("x-slack-request-timestamp")),
                )))
            },
            SchemeName::Shopify => SchemeSpec {
                id: Some(header("x-shopify-webhook-id")),
                event: vec![header("x-shopify-topic")],
                ..plain(Auth::Signature(signature(
                    "x-shopify-hmac-sha256",
                    single(""),
                    Encoding::Base64,
                    "{body}",
                    None,
                )))
            },
            SchemeName::Cloudevents => SchemeSpec {
                id: Some(Locator::CloudEvent),
                event: vec![Locator::CloudEvent],
                body: self.body.unwrap_or(BodyShape::Cloudevents),
                ..plain(Auth::Bearer)
            },
            SchemeName::Hmac => {
                let spec = self.hmac.clone().unwrap_or_else(|| HmacSpec {
                    header: String::new(),
                    prefix: String::new(),
                    algorithm: Algorithm::Sha256,
                    encoding: Encoding::Hex,
                    signed: default_signed(),
                    timestamp_header: None,
                    id_header: None,
                    event_header: None,
                });
                SchemeSpec {
                    id: spec.id_header.as_deref().map(|h| header(&h.to_ascii_lowercase())),
                    event: spec.event_header.iter().map(|h| header(&h.to_ascii_lowercase())).collect(),
                    ..plain(Auth::Signature(Signature {
                        header: spec.header.to_ascii_lowercase(),
                        layout: single(&spec.prefix),
                        algorithm: spec.algorithm,
                        encoding: spec.encoding,
                        signed: spec.signed,
                        timestamp: spec.timestamp_header.map(|h| header(&h.to_ascii_lowercase())),
                        key: KeyForm::Raw,
                    }))
                }
            }
            SchemeName::Basic => plain(Auth::Basic),
            SchemeName::ApiKey => {
                plain(Auth::Header(self.api_key_header.as_deref().unwrap_or("x-api-key").to_ascii_lowercase()))
            }
        }
    }

    /// Checks the trigger, naming the field at fault.
    ///
    /// # Errors
    /// [`Error::FlowInvalid`].
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(Error::FlowInvalid { reason });
        if !(1..=MAX_WEBHOOK_TOLERANCE_SECS).contains(&self.tolerance_secs) {
            return invalid(format!(
                "webhook tolerance_secs must be 1-{MAX_WEBHOOK_TOLERANCE_SECS} (how far a signed timestamp may be from now)"
            ));
        }
        if !(1..=MAX_DEDUPE_SECS).contains(&self.dedupe_secs) {
            return invalid(format!("webhook dedupe_secs must be 1-{MAX_DEDUPE_SECS}"));
        }
        for name in self.headers.iter().chain(&self.api_key_header) {
            check_header_name("webhook headers", name)?;
        }
        // Records are stored in clear and shown to invokers: a header holding the secret must
        // never become a record header.
        let secret_headers = ["authorization", "proxy-authorization", "cookie", "x-api-key"];
        let api_key = self.api_key_header.as_deref().map(str::to_ascii_lowercase);
        if let Some(name) = self.headers.iter().find(|h| {
            let h = h.to_ascii_lowercase();
            secret_headers.contains(&h.as_str()) || api_key.as_deref() == Some(h.as_str())
        }) {
            return invalid(format!("webhook headers: `{name}` carries the secret and cannot become a record header"));
        }
        if self.headers.len() > 32 {
            return invalid("webhook headers names at most 32 headers".into());
        }
        if self.events.len() > 256 || self.events.iter().any(|e| e.is_empty() || e.len() > 128) {
            return invalid("webhook events must be at most 256 names of 1-128 characters".into());
        }
        for cidr in &self.allow_from {
            parse_cidr(cidr)
                .map_err(|reason| Error::FlowInvalid { reason: format!("webhook allow_from: {reason}") })?;
        }
        if self.api_key_header.is_some() && self.scheme != SchemeName::ApiKey {
            return invalid("webhook api_key_header is for scheme api-key".into());
        }
        match (&self.hmac, self.scheme) {
            (Some(_), scheme) if scheme != SchemeName::Hmac => {
                return invalid("webhook hmac describes scheme hmac; set scheme: hmac or remove it".into());
            }
            (None, SchemeName::Hmac) => return invalid("webhook scheme hmac needs an `hmac` description".into()),
            (Some(spec), _) => spec.validate()?,
            (None, _) => {}
        }
        if self.scheme == SchemeName::Cloudevents && self.body.is_some_and(|b| b != BodyShape::Cloudevents) {
            return invalid("webhook scheme cloudevents takes body cloudevents".into());
        }
        if !self.events.is_empty() && self.spec().event.is_empty() {
            return invalid(format!(
                "webhook events: scheme {} names no event type (for hmac, set hmac.event_header)",
                serde_json::to_value(self.scheme).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// The allow-list, parsed (validation refused any entry that does not parse).
    pub fn allowed_sources(&self) -> Vec<Cidr> {
        self.allow_from.iter().filter_map(|c| parse_cidr(c).ok()).collect()
    }
}

impl HmacSpec {
    fn validate(&self) -> Result<()> {
        check_header_name("webhook hmac.header", &self.header)?;
        for name in [&self.timestamp_header, &self.id_header, &self.event_header].into_iter().flatten() {
            check_header_name("webhook hmac header", name)?;
        }
        if self.prefix.len() > 64 {
            return Err(Error::FlowInvalid { reason: "webhook hmac.prefix is at most 64 characters".into() });
        }
        let mut rest = self.signed.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else { break };
            let field = &rest[open + 1..open + close];
            let known = ["body", "timestamp", "id", "flow"].contains(&field);
            if !known {
                return Err(Error::FlowInvalid {
                    reason: format!(
                        "webhook hmac.signed: unknown placeholder `{{{field}}}` (body, timestamp, id, flow)"
                    ),
                });
            }
            if field == "timestamp" && self.timestamp_header.is_none() {
                return Err(Error::FlowInvalid {
                    reason: "webhook hmac.signed uses {timestamp} without hmac.timestamp_header".into(),
                });
            }
            if field == "id" && self.id_header.is_none() {
                return Err(Error::FlowInvalid {
                    reason: "webhook hmac.signed uses {id} without hmac.id_header".into(),
                });
            }
            rest = &rest[open + close + 1..];
        }
        if self.timestamp_header.is_some() && !self.signed.contains("{timestamp}") {
            // An unsigned timestamp bounds nothing: a replay would simply send a fresh one.
            return Err(Error::FlowInvalid {
                reason: "webhook hmac.timestamp_header needs {timestamp} in hmac.signed".into(),
            });
        }
        if !self.signed.ends_with("{body}") || self.signed.matches("{body}").count() != 1 {
            return Err(Error::FlowInvalid { reason: "webhook hmac.signed must end with {body}, once".into() });
        }
        Ok(())
    }
}

fn check_header_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::FlowInvalid { reason: format!("{field}: `{name}` is not a header name (letters, digits, - and _)") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generic_hmac_is_checked_as_data() {
        let trigger = |hmac: serde_json::Value| -> Result<()> {
            let mut t: WebhookTrigger =
                serde_json::from_value(serde_json::json!({"scheme": "hmac", "hmac": hmac})).unwrap();
            t.tolerance_secs = 60;
            t.validate()
        };
        assert!(
            trigger(serde_json::json!({"header": "x-sig", "signed": "{timestamp}.{body}", "timestamp_header": "x-ts"}))
                .is_ok()
        );
        assert!(trigger(serde_json::json!({"header": "x-sig", "signed": "{timestamp}.{body}"})).is_err());
        assert!(
            trigger(serde_json::json!({"header": "x-sig", "timestamp_header": "x-ts"})).is_err(),
            "an unsigned timestamp"
        );
        assert!(trigger(serde_json::json!({"header": "x-sig", "signed": "{bodyy}"})).is_err());
        assert!(trigger(serde_json::json!({"header": "x sig"})).is_err());
        let md5: std::result::Result<HmacSpec, _> =
            serde_json::from_value(serde_json::json!({"header": "x", "algorithm": "md5"}));
        assert!(md5.is_err());
        let typo: std::result::Result<WebhookTrigger, _> =
            serde_json::from_value(serde_json::json!({"scheme": "githb"}));
        assert!(typo.is_err());
    }

    #[test]
    fn secrets_cannot_become_record_headers_and_filters_need_an_event_type() {
        let check = |trigger: serde_json::Value| serde_json::from_value::<WebhookTrigger>(trigger).unwrap().validate();
        assert!(check(serde_json::json!({"scheme": "basic", "headers": ["Authorization"]})).is_err());
        assert!(
            check(serde_json::json!({"scheme": "api-key", "api_key_header": "x-token", "headers": ["X-Token"]}))
                .is_err()
        );
        assert!(
            check(serde_json::json!({"scheme": "github", "headers": ["x-github-event"], "events": ["push"]})).is_ok()
        );
        assert!(check(serde_json::json!({"scheme": "basic", "events": ["push"]})).is_err());
    }
}
