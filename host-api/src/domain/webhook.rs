//! Webhook deliveries: who may trigger a flow, and how often the same delivery runs.
//!
//! A sender signs `"{timestamp}.{flow}.{body}"` with HMAC-SHA256 under the flow's secret (the
//! scheme of Stripe and GitHub, with the flow's name added so a delivery cannot be replayed to
//! another flow that shares the secret). The timestamp bounds how long a captured
//! delivery stays usable; within that window a replay would still verify, so every accepted
//! delivery leaves a mark keyed by its signature until the window closes. A second delivery with
//! the same signature (a sender retrying after a lost answer, or somebody replaying a captured
//! request) is answered `200` with the run that already holds it and runs nothing. The store
//! never keeps a mark without its run, and a run left without a mark by a crash is dropped at the
//! next start (see `QueueStore::enqueue_once`): a retry of a delivery that was never acknowledged
//! is queued once, not taken for a duplicate.
//!
//! Two deliveries with the same body and the same timestamp (to the second) are the same delivery;
//! senders tell events apart by an id in the body, as webhook payloads usually carry.

use super::{Result, WorkQueue};
use crate::store::{QueuedRun, TriggerKind, now};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a webhook delivery was refused. Logged only: every refusal answers the same 401, so an
/// outsider cannot tell a missing flow from a wrong signature.
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
    /// The signature does not match.
    BadSignature,
}

/// A delivery's headers, checked for form before its body is read: a timestamp and a
/// well-formed signature. Nothing is proven until [`Presented::verify`] has seen the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    timestamp: String,
    sent: u64,
    signature: Vec<u8>,
}

/// A delivery whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signature's bytes: the delivery's identity for replay protection.
    pub signature: Vec<u8>,
    /// Until when (Unix seconds) the timestamp is accepted, so until when a replay must be caught.
    pub usable_until: u64,
}

/// Length of an HMAC-SHA256 signature.
const SIGNATURE_BYTES: usize = 32;

/// Checks the form of `X-Plugboard-Timestamp` (Unix seconds) and `X-Plugboard-Signature`
/// (`sha256=` and 64 hex digits), so a delivery that cannot verify is refused before anything
/// reads its body. Nothing here depends on the flow, so the answer tells nothing about it.
///
/// # Errors
/// [`HookRefusal::Missing`].
pub fn check_headers(timestamp: &str, signature: &str) -> std::result::Result<Presented, HookRefusal> {
    let timestamp = timestamp.trim();
    let sent: u64 = timestamp.parse().map_err(|_| HookRefusal::Missing)?;
    let hex_signature = signature.trim().strip_prefix("sha256=").ok_or(HookRefusal::Missing)?;
    let signature = hex::decode(hex_signature).map_err(|_| HookRefusal::Missing)?;
    if signature.len() != SIGNATURE_BYTES {
        return Err(HookRefusal::Missing);
    }
    Ok(Presented { timestamp: timestamp.into(), sent, signature })
}

impl Presented {
    /// Checks the timestamp against `tolerance` seconds either side of now and the signature over
    /// `"{timestamp}.{flow}.{body}"` under `secret`, in constant time. The flow's name is signed so
    /// a delivery captured for one flow does not verify on another that shares its secret.
    ///
    /// # Errors
    /// [`HookRefusal::Stale`], [`HookRefusal::BadSignature`] (or [`HookRefusal::NoSecret`] for an
    /// unusable secret).
    pub fn verify(
        self,
        secret: &str,
        flow: &str,
        body: &[u8],
        tolerance: u64,
    ) -> std::result::Result<Verified, HookRefusal> {
        if now().abs_diff(self.sent) > tolerance {
            return Err(HookRefusal::Stale);
        }
        let mut mac = signing_mac(secret, &self.timestamp, flow).ok_or(HookRefusal::NoSecret)?;
        mac.update(body);
        mac.verify_slice(&self.signature).map_err(|_| HookRefusal::BadSignature)?;
        Ok(Verified { signature: self.signature, usable_until: self.sent.saturating_add(tolerance) })
    }
}

/// [`check_headers`] then [`Presented::verify`], for a delivery whose body is at hand.
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
    check_headers(timestamp, signature)?.verify(secret, flow, body, tolerance)
}

/// `sha256=HEX` for a webhook body, as senders compute it: HMAC-SHA256 of
/// `"{timestamp}.{flow}.{body}"` under the flow's secret.
pub fn sign_hook(secret: &str, flow: &str, timestamp: u64, body: &[u8]) -> String {
    let Some(mut mac) = signing_mac(secret, &timestamp.to_string(), flow) else { return String::new() };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The MAC with the signed prefix `"{timestamp}.{flow}."` already fed.
fn signing_mac(secret: &str, timestamp: &str, flow: &str) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(flow.as_bytes());
    mac.update(b".");
    Some(mac)
}

/// What became of a verified delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Durably queued as this run.
    Queued(u64),
    /// The same delivery was queued before as this run; nothing new runs.
    Duplicate(u64),
}

impl WorkQueue {
    /// Queues a verified delivery of `records` to `flow` once: a repeat of it is a
    /// [`Delivery::Duplicate`]. Returns after the queue is durable, so the answer may be 2xx.
    ///
    /// # Errors
    /// [`super::DomainError::QueueFull`] (nothing queued), or a storage failure.
    pub async fn accept_delivery(
        &self,
        flow: &str,
        verified: &Verified,
        records: Vec<serde_json::Value>,
    ) -> Result<Delivery> {
        self.flows.check_input(records.len())?;
        self.reserve(flow)?;
        // Inline, not on the blocking pool: the writes take tens of microseconds, and a hop to
        // another thread cost milliseconds of scheduling under load (measured).
        let queued = store_delivery(&*self.store, flow, verified, records);
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
    verified: &Verified,
    records: Vec<serde_json::Value>,
) -> Result<(u64, bool)> {
    let run = QueuedRun {
        id: store.next_id()?,
        flow: flow.into(),
        records,
        trigger: TriggerKind::Webhook,
        received_at: now(),
        node: None,
    };
    Ok(store.enqueue_once(&run, &verified.signature, verified.usable_until)?)
}
