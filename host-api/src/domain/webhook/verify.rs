//! Authenticating a delivery by its trigger's [`SchemeSpec`]: one generic reader of signature
//! headers, timestamps and HMACs, driven by data, so GitHub, Stripe, Slack, Shopify, Standard
//! Webhooks, Plugboard's own scheme and any `hmac` described in a flow share every line.
//!
//! Two steps, so a delivery that cannot verify is refused before its body is read:
//! [`authenticate_headers`] checks the headers' form, the timestamp's age and (for `basic`,
//! `api-key` and bearer schemes, which sign nothing) the secret itself; [`Pending::verify`] then
//! checks the HMAC over the body. Every comparison of a secret or a MAC is in constant time, and
//! every secret of the flow (the current one and, during a rotation, the previous one) is tried.

use super::HookRefusal;
use super::secrets::WebhookSecrets;
use crate::store::now;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use plugboard_runtime::flow::webhook::{Algorithm, Auth, Encoding, KeyForm, Layout, Locator, SchemeSpec, Signature};
use sha2::Digest as _;
use subtle::ConstantTimeEq;

/// Longest signature header read: a longer one is refused unread.
const MAX_SIGNATURE_HEADER: usize = 4096;
/// Most signatures tried from one header (Stripe and Standard Webhooks may send several).
const MAX_SIGNATURES: usize = 8;

/// A request's headers, names in lower case (as HTTP/2 and `http::HeaderMap` give them).
#[derive(Debug, Clone, Default)]
pub struct RequestHeaders(Vec<(String, String)>);

impl RequestHeaders {
    /// From `(name, value)` pairs; values that are not text are left out.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> RequestHeaders {
        RequestHeaders(pairs.into_iter().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect())
    }

    /// The first value of `name` (lower case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every header, for binary CloudEvents.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A delivery whose headers passed: what is left to check once the body is read.
#[derive(Debug, Clone)]
pub struct Pending {
    check: Option<BodyCheck>,
    timestamp: Option<u64>,
}

#[derive(Debug, Clone)]
struct BodyCheck {
    signature: Signature,
    signatures: Vec<Vec<u8>>,
    timestamp: String,
    id: String,
}

/// What authentication proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The signature that verified (none for schemes that sign nothing).
    pub signature: Option<Vec<u8>>,
    /// The signed timestamp, Unix seconds.
    pub timestamp: Option<u64>,
}

/// Checks what can be checked before the body: the signature header's form, a signed timestamp
/// within `tolerance` seconds of now, and the secret of schemes that sign nothing.
///
/// # Errors
/// [`HookRefusal::Missing`], [`HookRefusal::Stale`], [`HookRefusal::BadSignature`].
pub fn authenticate_headers(
    spec: &SchemeSpec,
    headers: &RequestHeaders,
    secrets: &WebhookSecrets,
    tolerance: u64,
) -> Result<Pending, HookRefusal> {
    match &spec.auth {
        Auth::Signature(signature) => {
            let raw = headers.get(&signature.header).ok_or(HookRefusal::Missing)?;
            if raw.len() > MAX_SIGNATURE_HEADER {
                return Err(HookRefusal::Missing);
            }
            let signatures = parse_signatures(signature, raw)?;
            let timestamp = match &signature.timestamp {
                None => None,
                Some(locator) => {
                    let text = locate(locator, headers, raw, signature).ok_or(HookRefusal::Missing)?;
                    let sent: u64 = text.trim().parse().map_err(|_| HookRefusal::Missing)?;
                    if now().abs_diff(sent) > tolerance {
                        return Err(HookRefusal::Stale);
                    }
                    Some((text.trim().to_string(), sent))
                }
            };
            // A signed id (Standard Webhooks' `webhook-id`) is part of what the HMAC covers.
            let id = if signature.signed.contains("{id}") {
                match spec.id.as_ref() {
                    Some(Locator::Header(name)) => headers.get(name).ok_or(HookRefusal::Missing)?.to_string(),
                    _ => return Err(HookRefusal::Missing),
                }
            } else {
                String::new()
            };
            Ok(Pending {
                timestamp: timestamp.as_ref().map(|(_, sent)| *sent),
                check: Some(BodyCheck {
                    signature: signature.clone(),
                    signatures,
                    timestamp: timestamp.map(|(text, _)| text).unwrap_or_default(),
                    id,
                }),
            })
        }
        Auth::Bearer => {
            let presented = headers
                .get("authorization")
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .ok_or(HookRefusal::Missing)?;
            secret_matches(secrets, presented.trim().as_bytes())
        }
        Auth::Basic => {
            let encoded = headers
                .get("authorization")
                .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
                .ok_or(HookRefusal::Missing)?;
            let decoded =
                base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| HookRefusal::Missing)?;
            secret_matches(secrets, &decoded)
        }
        Auth::Header(name) => {
            let presented = headers.get(name).ok_or(HookRefusal::Missing)?;
            secret_matches(secrets, presented.trim().as_bytes())
        }
    }
}

fn secret_matches(secrets: &WebhookSecrets, presented: &[u8]) -> Result<Pending, HookRefusal> {
    // Digests are compared, not the texts, so the time taken says nothing of the secret's length;
    // every candidate is compared, whichever matches, so it does not say which either.
    let presented = sha2::Sha256::digest(presented);
    let matched = secrets
        .candidates(now())
        .iter()
        .fold(0u8, |found, s| found | sha2::Sha256::digest(s.as_bytes()).ct_eq(&presented).unwrap_u8());
    if matched == 1 { Ok(Pending { check: None, timestamp: None }) } else { Err(HookRefusal::BadSignature) }
}

impl Pending {
    /// The signed timestamp, when the scheme has one.
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }

    /// Checks the HMAC over `body` (and the signed timestamp, id and flow) under each secret.
    ///
    /// # Errors
    /// [`HookRefusal::BadSignature`], or [`HookRefusal::NoSecret`] when no secret can be a key
    /// (a Standard Webhooks secret that is not `whsec_` and base64).
    pub fn verify(self, secrets: &WebhookSecrets, flow: &str, body: &[u8]) -> Result<Authenticated, HookRefusal> {
        let Some(check) = self.check else {
            return Ok(Authenticated { signature: None, timestamp: self.timestamp });
        };
        let prefix = render(check.signature.signed.trim_end_matches("{body}"), &check.timestamp, &check.id, flow);
        let mut usable_key = false;
        let mut verified = None;
        for secret in secrets.candidates(now()) {
            let Some(key) = hmac_key(check.signature.key, secret) else { continue };
            usable_key = true;
            let Some(tag) = compute(check.signature.algorithm, &key, prefix.as_bytes(), body) else { continue };
            for presented in &check.signatures {
                if bool::from(tag.as_slice().ct_eq(presented)) {
                    verified = Some(presented.clone());
                }
            }
        }
        match verified {
            Some(signature) => Ok(Authenticated { signature: Some(signature), timestamp: self.timestamp }),
            None if !usable_key => Err(HookRefusal::NoSecret),
            None => Err(HookRefusal::BadSignature),
        }
    }
}

/// What is signed before the body: the template with its placeholders filled in one pass (so a
/// sender's id holding `{flow}` stays as it is).
fn render(template: &str, timestamp: &str, id: &str, flow: &str) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        let value = [("{timestamp}", timestamp), ("{id}", id), ("{flow}", flow)]
            .into_iter()
            .find(|(placeholder, _)| tail.starts_with(placeholder));
        match value {
            Some((placeholder, value)) => {
                out.push_str(value);
                rest = &tail[placeholder.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The signatures in a header, decoded; each must be as long as the algorithm's output.
fn parse_signatures(signature: &Signature, raw: &str) -> Result<Vec<Vec<u8>>, HookRefusal> {
    let items: Vec<&str> = match &signature.layout {
        Layout::Single { prefix } => vec![raw.trim().strip_prefix(prefix.as_str()).ok_or(HookRefusal::Missing)?],
        Layout::List { separator, prefix } => raw
            .split(*separator)
            .filter_map(|item| item.trim().strip_prefix(prefix.as_str()))
            .take(MAX_SIGNATURES)
            .collect(),
    };
    let wanted = output_len(signature.algorithm);
    let decoded: Vec<Vec<u8>> = items
        .iter()
        .filter_map(|item| match signature.encoding {
            Encoding::Hex => hex::decode(item.trim()).ok(),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.decode(item.trim()).ok(),
        })
        .filter(|bytes| bytes.len() == wanted)
        .collect();
    if decoded.is_empty() { Err(HookRefusal::Missing) } else { Ok(decoded) }
}

/// A value a locator points at among the headers (or in the signature header itself).
fn locate<'a>(locator: &Locator, headers: &'a RequestHeaders, raw: &'a str, signature: &Signature) -> Option<&'a str> {
    match locator {
        Locator::Header(name) => headers.get(name),
        Locator::SignatureItem(key) => {
            let separator = match &signature.layout {
                Layout::List { separator, .. } => *separator,
                Layout::Single { .. } => ',',
            };
            raw.split(separator).find_map(|item| item.trim().strip_prefix(key.as_str()))
        }
        Locator::Field(_) | Locator::CloudEvent => None,
    }
}

fn hmac_key(form: KeyForm, secret: &str) -> Option<Vec<u8>> {
    match form {
        KeyForm::Raw => Some(secret.as_bytes().to_vec()),
        KeyForm::WhsecBase64 => {
            base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok()
        }
    }
}

fn output_len(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::Sha1 => 20,
        Algorithm::Sha256 => 32,
        Algorithm::Sha512 => 64,
    }
}

/// HMAC of `prefix ‖ body` under `key`.
pub(crate) fn compute(algorithm: Algorithm, key: &[u8], prefix: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], prefix: &[u8], body: &[u8]) -> Option<Vec<u8>> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).ok()?;
        mac.update(prefix);
        mac.update(body);
        Some(mac.finalize().into_bytes().to_vec())
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, prefix, body),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, prefix, body),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, prefix, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_in_one_pass() {
        assert_eq!(render("{id}.{timestamp}.", "17", "msg_{flow}", "orders"), "msg_{flow}.17.");
        assert_eq!(render("v0:{timestamp}:", "9", "", ""), "v0:9:");
        assert_eq!(render("{x}{flow}", "", "", "f"), "{x}f");
    }
}
