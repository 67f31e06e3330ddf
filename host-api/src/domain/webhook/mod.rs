//! Webhook deliveries: who may trigger a flow, what a delivery becomes, and how often the same
//! delivery runs.
//!
//! A flow's webhook trigger names a scheme (`runtime::flow::webhook`): GitHub, Stripe, Slack,
//! Shopify, Standard Webhooks, CloudEvents, Plugboard's own, a generic HMAC described as data,
//! basic or an API key. [`verify`] authenticates by it, [`body`] reads the body as records, and
//! [`identity`] says what makes two deliveries the same one:
//!
//! - the sender's **delivery id** where the scheme signs one or authenticates the whole request
//!   (Standard Webhooks' `webhook-id`, Stripe's and Slack's event ids in the signed body,
//!   CloudEvents' `source` and `id`): a retry re-signed with a new timestamp is the same
//!   delivery, remembered for the trigger's `dedupe_secs` (three days by default, as long as
//!   Stripe retries);
//! - else the **signature**: GitHub's `X-GitHub-Delivery` and Shopify's webhook id are not
//!   signed, so a replay could carry a fresh one; their body's HMAC is the identity instead (a
//!   GitHub redelivery sends the same body, so it is caught too). With a signed timestamp
//!   (Plugboard's scheme, a `hmac` signing `{timestamp}`) the mark lasts until the timestamp
//!   leaves the tolerance, after which the delivery is refused as stale; without one, for
//!   `dedupe_secs` — after that a captured GitHub or Shopify delivery would be accepted again,
//!   which those senders' schemes cannot prevent (an `allow_from` of their addresses narrows it).
//!   Their event headers (`X-GitHub-Event`, `X-Shopify-Topic`) are not signed either, so
//!   `events` filters and routes on them trust the sender's network path as far as the type goes;
//! - nothing for `basic` and `api-key` without an id: every delivery runs.
//!
//! A repeat is answered `200` with the run that already holds it and runs nothing. The store
//! never keeps a mark without its run, and a run left without a mark by a crash is dropped at the
//! next start (see `QueueStore::enqueue_once`): a retry of a delivery that was never acknowledged
//! is queued once, not taken for a duplicate.

pub mod body;
pub mod secrets;
pub mod verify;

use super::{Result, WorkQueue};
use crate::store::{QueuedRun, TriggerKind, now};
use hmac::{Hmac, Mac};
use plugboard_runtime::flow::webhook::{Auth, Locator, SchemeSpec, WebhookTrigger};
use sha2::{Digest, Sha256};

/// Why a webhook delivery was refused. Logged and counted only: every refusal answers the same
/// 401, so an outsider cannot tell a missing flow from a wrong signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookRefusal {
    /// No such flow, or it has no webhook trigger.
    NoHook,
    /// The flow has no webhook secret yet.
    NoSecret,
    /// Signature or timestamp header missing or malformed.
    Missing,
    /// The timestamp is outside the tolerance (a replay, or a wrong clock).
    Stale,
    /// The signature (or the secret) does not match.
    BadSignature,
    /// The source address is not in the trigger's `allow_from`.
    Source,
}

impl HookRefusal {
    /// The `reason` label of `plugboard_webhook_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            HookRefusal::NoHook => "no-hook",
            HookRefusal::NoSecret => "no-secret",
            HookRefusal::Missing => "malformed",
            HookRefusal::Stale => "stale",
            HookRefusal::BadSignature => "bad-signature",
            HookRefusal::Source => "source",
        }
    }
}

/// What makes a delivery the same one as another: a key and until when it is remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryMark {
    /// The key (never longer than a hash plus a tag).
    pub key: Vec<u8>,
    /// Unix seconds.
    pub until: u64,
}

/// The mark of a delivery that authenticated as `authenticated` under `trigger`, whose scheme
/// found the sender's delivery id `id` (see the module docs for the rules).
///
/// # Errors
/// [`super::DomainError::Internal`] when the system's randomness fails (a delivery with no
/// identity needs a fresh one; an all-zero key would make later deliveries look like repeats).
pub fn identity(
    trigger: &WebhookTrigger,
    spec: &SchemeSpec,
    authenticated: &verify::Authenticated,
    id: Option<&str>,
) -> Result<DeliveryMark> {
    let now = now();
    // However short `dedupe_secs`, a mark lasts while its signed timestamp is still accepted.
    let signed_until = authenticated.timestamp.map_or(0, |sent| sent.saturating_add(trigger.tolerance_secs));
    let id_trusted = match (&spec.auth, &spec.id) {
        (Auth::Signature(signature), Some(Locator::Header(_))) => signature.signed.contains("{id}"),
        (Auth::Signature(_), Some(Locator::Field(_))) => true,
        (Auth::Signature(_), _) => false,
        _ => true,
    };
    if let Some(id) = id.filter(|_| id_trusted) {
        let mut key = b"id:".to_vec();
        key.extend_from_slice(&Sha256::digest(id.as_bytes()));
        return Ok(DeliveryMark { key, until: now.saturating_add(trigger.dedupe_secs).max(signed_until) });
    }
    Ok(match (&authenticated.signature, authenticated.timestamp) {
        (Some(signature), Some(_)) => DeliveryMark { key: signature.clone(), until: signed_until },
        (Some(signature), None) => {
            DeliveryMark { key: signature.clone(), until: now.saturating_add(trigger.dedupe_secs) }
        }
        (None, _) => {
            // Nothing tells two deliveries apart: a key no other delivery has.
            let mut nonce = [0u8; 16];
            getrandom::fill(&mut nonce).map_err(|err| super::DomainError::internal_in("randomness", err))?;
            let mut key = b"once:".to_vec();
            key.extend_from_slice(&nonce);
            DeliveryMark { key, until: now.saturating_add(60) }
        }
    })
}

/// A delivery whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signature's bytes: the delivery's identity for replay protection.
    pub signature: Vec<u8>,
    /// Until when (Unix seconds) the timestamp is accepted, so until when a replay must be caught.
    pub usable_until: u64,
}

/// Plugboard's own scheme, as a trigger with no other settings.
fn plugboard_trigger(tolerance: u64) -> WebhookTrigger {
    WebhookTrigger { tolerance_secs: tolerance, ..WebhookTrigger::default() }
}

fn plugboard_headers(timestamp: &str, signature: &str) -> verify::RequestHeaders {
    verify::RequestHeaders::new([
        ("x-plugboard-timestamp".to_string(), timestamp.to_string()),
        ("x-plugboard-signature".to_string(), signature.to_string()),
    ])
}

/// Checks the form of `X-Plugboard-Timestamp` (Unix seconds) and `X-Plugboard-Signature`
/// (`sha256=` and 64 hex digits) of Plugboard's own scheme, whatever the timestamp's age.
///
/// # Errors
/// [`HookRefusal::Missing`].
pub fn check_headers(timestamp: &str, signature: &str) -> std::result::Result<(), HookRefusal> {
    let trigger = plugboard_trigger(u64::MAX);
    let secrets = secrets::WebhookSecrets::single("");
    verify::authenticate_headers(&trigger.spec(), &plugboard_headers(timestamp, signature), &secrets, u64::MAX)
        .map(|_| ())
}

/// Verifies a delivery of Plugboard's own scheme whose body is at hand: the timestamp within
/// `tolerance` seconds of now and the signature over `"{timestamp}.{flow}.{body}"` under
/// `secret`. The flow's name is signed so a delivery captured for one flow does not verify on
/// another that shares its secret.
///
/// # Errors
/// The [`HookRefusal`] saying what is wrong.
pub fn verify_hook(
    secret: &str,
    flow: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    tolerance: u64,
) -> std::result::Result<Verified, HookRefusal> {
    let trigger = plugboard_trigger(tolerance);
    let secrets = secrets::WebhookSecrets::single(secret);
    let pending =
        verify::authenticate_headers(&trigger.spec(), &plugboard_headers(timestamp, signature), &secrets, tolerance)?;
    let authenticated = pending.verify(&secrets, flow, body)?;
    Ok(Verified {
        signature: authenticated.signature.unwrap_or_default(),
        usable_until: authenticated.timestamp.unwrap_or_default().saturating_add(tolerance),
    })
}

/// `sha256=HEX` for a webhook body, as senders of Plugboard's own scheme compute it: HMAC-SHA256
/// of `"{timestamp}.{flow}.{body}"` under the flow's secret.
pub fn sign_hook(secret: &str, flow: &str, timestamp: u64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(format!("{timestamp}.{flow}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What became of a verified delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Durably queued as this run.
    Queued(u64),
    /// The same delivery was queued before as this run; nothing new runs.
    Duplicate(u64),
}

impl From<&Verified> for DeliveryMark {
    fn from(verified: &Verified) -> DeliveryMark {
        DeliveryMark { key: verified.signature.clone(), until: verified.usable_until }
    }
}

impl WorkQueue {
    /// Queues a verified delivery of `records` (with their `headers`, one list per record, or
    /// none) to `flow` once: a repeat of its `mark` is a [`Delivery::Duplicate`]. Returns after
    /// the queue is durable, so the answer may be 2xx.
    ///
    /// # Errors
    /// [`super::DomainError::QueueFull`] (nothing queued), or a storage failure.
    pub async fn accept_delivery(
        &self,
        flow: &str,
        mark: &DeliveryMark,
        records: Vec<serde_json::Value>,
        headers: Vec<body::Headers>,
    ) -> Result<Delivery> {
        self.flows.check_input(records.len())?;
        self.reserve(flow)?;
        // Inline, not on the blocking pool: the writes take tens of microseconds, and a hop to
        // another thread cost milliseconds of scheduling under load (measured).
        let queued = store_delivery(&*self.store, flow, mark, records, headers);
        let (id, queued) = match queued {
            Ok(done) => done,
            Err(err) => {
                self.release(flow, 1);
                return Err(err);
            }
        };
        if !queued {
            self.release(flow, 1);
        }
        // Waited for a duplicate too: the earlier delivery's answer may have been lost before it
        // was durable, and this answer acknowledges it.
        self.store.durable().await?;
        if queued {
            self.wake();
            Ok(Delivery::Queued(id))
        } else {
            Ok(Delivery::Duplicate(id))
        }
    }

    /// Forgets delivery marks whose window has closed; the background tick calls it now and then.
    pub fn sweep_delivery_marks(&self) {
        match self.store.sweep_delivery_marks(now()) {
            Ok(0) => {}
            Ok(swept) => tracing::debug!(swept, "expired webhook delivery marks"),
            Err(err) => tracing::error!(%err, "sweeping webhook delivery marks"),
        }
    }
}

/// Stores a verified delivery as a queued run unless it is a repeat; see
/// [`crate::store::QueueStore::enqueue_once`].
fn store_delivery(
    store: &dyn crate::store::Storage,
    flow: &str,
    mark: &DeliveryMark,
    records: Vec<serde_json::Value>,
    headers: Vec<body::Headers>,
) -> Result<(u64, bool)> {
    let headers = if headers.iter().all(Vec::is_empty) { Vec::new() } else { headers };
    let run = QueuedRun {
        id: store.next_id()?,
        flow: flow.into(),
        records,
        headers,
        trigger: TriggerKind::Webhook,
        received_at: now(),
        node: None,
        accepted: None,
    };
    Ok(store.enqueue_once(&run, &mark.key, mark.until)?)
}
