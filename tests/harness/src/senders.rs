//! Webhook senders: concurrent clients that deliver signed batches of order records to the `load`
//! flow and behave as a careful production sender does.
//!
//! A delivery is built once (body, timestamp, signature) and sent until it is acknowledged: `202`,
//! or `200` with `"duplicate": true` for a retry of a delivery the server had already queued. A
//! `429` is honoured (`Retry-After` seconds, else about 100 ms) and the same delivery is sent
//! again; so is one whose connection failed because the server was killed, once the restarted
//! server is up. Because the retry is byte-for-byte the same request, the server counts it once.
//! Only acknowledged records go into the [`Ledger`]: those are the ones the server promised to run.
//!
//! Record ids are `s<sender>-<n>`; every fourth record has `orderTotal` 50, which the flow's
//! filter drops, so the sink must never see it.

use crate::child::Live;
use crate::ledger::{Arrival, Ledger};
use crate::report::{Refusals, is_retryable};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The flow the senders deliver to.
pub const FLOW: &str = "load";

/// The `X-Plugboard-Signature` value of a delivery: `sha256=` and the hex HMAC-SHA256 of
/// `"{timestamp}.{flow}.{body}"` under the flow's webhook secret.
///
/// This mirrors "Webhooks" in docs/flows.md (and `plugboard_host_api::webhook::sign_hook`, which
/// the harness deliberately does not link). It is the one place that knows the signed string: when
/// the server's scheme changes, change it here.
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(FLOW.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The `X-Hub-Signature-256` value GitHub sends: `sha256=` and the hex HMAC-SHA256 of the body.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether the flow's filter (`$.total > 100`) keeps record `n`: every fourth is sent with a total of
/// 50 and must be dropped.
pub fn kept(n: u64) -> bool {
    n % 4 != 3
}

/// Record `n` of `sender`, as the webhook body carries it.
pub fn record(sender: u32, n: u64) -> Value {
    json!({"orderId": format!("s{sender}-{n}"), "customerId": 1, "orderTotal": if kept(n) { 150 } else { 50 }})
}

/// What a record the sink received is: the flow maps `orderId` to `id` and `orderTotal` to `total`.
pub fn classify(record: &Value) -> Arrival {
    let Some((sender, n)) = record["id"].as_str().and_then(parse_id) else { return Arrival::Unknown };
    let total = record["total"].as_f64().unwrap_or(0.0);
    if !kept(n) || total <= 100.0 { Arrival::Filtered } else { Arrival::Kept { sender, n } }
}

/// `(sender, n)` from `s<sender>-<n>`.
pub fn parse_id(id: &str) -> Option<(u32, u64)> {
    let (sender, n) = id.strip_prefix('s')?.split_once('-')?;
    Some((sender.parse().ok()?, n.parse().ok()?))
}

/// Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Counters shared by every sender.
#[derive(Debug, Default)]
pub struct SenderStats {
    /// `202` answers: deliveries queued.
    pub accepted: AtomicU64,
    /// `200 "duplicate": true` answers: retries of deliveries queued before.
    pub duplicates: AtomicU64,
    /// `429` answers.
    pub overloaded: AtomicU64,
    /// `408` and `5xx` answers (retried).
    pub server_errors: AtomicU64,
    /// Requests that got no answer: refused or reset connections (the server was killed), timeouts.
    pub no_answer: AtomicU64,
    /// Deliveries refused for good (another 4xx), and deliveries abandoned when the load stopped.
    pub given_up: AtomicU64,
    /// The refusals.
    pub refusals: Refusals,
}

/// What every sender shares.
#[derive(Debug)]
pub struct SenderContext {
    /// HTTP client (pooled connections).
    pub client: reqwest::Client,
    /// Where the server is.
    pub live: Live,
    /// Acknowledged records go here.
    pub ledger: Arc<Ledger>,
    /// The counters.
    pub stats: SenderStats,
    /// The flow's webhook secret.
    pub secret: String,
    /// Sign as GitHub does (see [`crate::Options::github`]).
    pub github: bool,
    /// Records per delivery.
    pub records_per_delivery: u64,
    /// Pause between one sender's deliveries.
    pub interval: Duration,
    /// Set when the load phase ends: finish the delivery in hand, start no other.
    pub stop: AtomicBool,
    /// How long a delivery in hand may still be retried after `stop`.
    pub stop_grace: Duration,
}

/// How one delivery ended.
enum Outcome {
    Acknowledged,
    GivenUp,
}

/// One sender: delivers batches until `stop`.
pub async fn run_sender(context: Arc<SenderContext>, sender: u32) {
    let mut next = 0u64;
    while !context.stop.load(Ordering::Relaxed) {
        let ns = next..next + context.records_per_delivery;
        next = ns.end;
        let records: Vec<Value> = ns.clone().map(|n| record(sender, n)).collect();
        let body = json!({ "records": records }).to_string().into_bytes();
        if let Outcome::Acknowledged = deliver(&context, body).await {
            context.ledger.acknowledge(sender, ns, kept);
        }
        if !context.interval.is_zero() {
            tokio::time::sleep(context.interval).await;
        }
    }
}

/// Sends one delivery until it is acknowledged or refused for good.
async fn deliver(context: &SenderContext, body: Vec<u8>) -> Outcome {
    let stats = &context.stats;
    let timestamp = unix_now();
    let headers: Vec<(&str, String)> = if context.github {
        // One id per delivery, the same on every retry of it, as GitHub sends.
        let id = hex::encode(&<Sha256 as sha2::Digest>::digest(&body)[..16]);
        vec![
            ("x-hub-signature-256", github_signature(&context.secret, &body)),
            ("x-github-event", "push".into()),
            ("x-github-delivery", id),
        ]
    } else {
        vec![
            ("x-plugboard-timestamp", timestamp.to_string()),
            ("x-plugboard-signature", signature(&context.secret, timestamp, &body)),
        ]
    };
    let mut stopped_at: Option<Instant> = None;
    loop {
        if context.stop.load(Ordering::Relaxed) {
            let since = *stopped_at.get_or_insert_with(Instant::now);
            if since.elapsed() > context.stop_grace {
                stats.given_up.fetch_add(1, Ordering::Relaxed);
                return Outcome::GivenUp;
            }
        }
        let Some(endpoint) = context.live.wait_up(Duration::from_millis(500)).await else { continue };
        let mut request = context
            .client
            .post(format!("{}/v1/hooks/{FLOW}", endpoint.base))
            .header("content-type", "application/json");
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let sent = request.body(body.clone()).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(_) => {
                stats.no_answer.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            202 => {
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                return Outcome::Acknowledged;
            }
            200 => {
                if answer["duplicate"] == json!(true) {
                    stats.duplicates.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.accepted.fetch_add(1, Ordering::Relaxed);
                }
                return Outcome::Acknowledged;
            }
            429 => {
                stats.overloaded.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(retry_after.unwrap_or(Duration::from_millis(100))).await;
            }
            status if is_retryable(status) => {
                stats.server_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => {
                stats.given_up.fetch_add(1, Ordering::Relaxed);
                stats.refusals.note(format!("webhook delivery: {status} {answer}"));
                return Outcome::GivenUp;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_flow_and_body() {
        // Computed independently (`openssl dgst -sha256 -hmac`): HMAC-SHA256(key,
        // "1700000000.load.{\"records\":[]}"), hex.
        assert_eq!(
            signature("harness-webhook-secret-0123", 1_700_000_000, br#"{"records":[]}"#),
            "sha256=cec6f556a7e41d9ab6f78056f2c4b3593229ebca8dc412a0226edcf9bdff6e12"
        );
    }

    #[test]
    fn records_round_trip_through_the_flow_mapping() {
        let sent = record(3, 7);
        assert_eq!(sent["orderTotal"], 50, "every fourth record is for the filter to drop");
        let mapped = json!({"id": sent["orderId"], "customer": {"id": 1}, "total": sent["orderTotal"]});
        assert_eq!(classify(&mapped), Arrival::Filtered);
        let mapped = json!({"id": "s3-8", "customer": {"id": 1}, "total": 150});
        assert_eq!(classify(&mapped), Arrival::Kept { sender: 3, n: 8 });
        assert_eq!(classify(&json!({"id": "order-1", "total": 150})), Arrival::Unknown);
    }
}
