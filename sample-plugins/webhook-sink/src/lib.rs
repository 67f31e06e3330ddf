//! `webhook-sink`: delivers records to a receiver as signed webhooks, the way Svix, Stripe and
//! GitHub send theirs, so any receiver that verifies Standard Webhooks (the `svix` and
//! `standardwebhooks` libraries, Supabase, Kong …) accepts them as they are.
//!
//! Config:
//! - `url` (required): where each request is POSTed;
//! - `batch_size` (optional, default 1): records per request — 1 sends the record's value as the
//!   body, more send a JSON array of values;
//! - `event_type` (optional): sent as `webhook-event-type` (a record's own `webhook-event-type`
//!   or `type` header wins);
//! - secret `signing_secret` (required): the endpoint's `whsec_…` secret (base64 after `whsec_`,
//!   as Standard Webhooks and Svix hand them out);
//! - secret `github_secret` (optional): also sign `X-Hub-Signature-256: sha256=HEX` of the body,
//!   for receivers written for GitHub.
//!
//! Every request carries `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,BASE64` of
//! HMAC-SHA256 over `"{id}.{timestamp}.{body}"`. The id is the record's `webhook-id` header when
//! it has one (a relayed delivery keeps its sender's id), else derived from the request's records
//! (key and value), so it is **the same on every retry** of the same records — the flow's retries
//! and dead-letter replays included — and receivers deduplicate by it. Two records with the same
//! key and value are the same message to a receiver: records that may repeat (a heartbeat) carry
//! an id of their own, in the value, the key or a `webhook-id` header.
//!
//! A 2xx answer delivers the request's records. A 408, 429 or 5xx answer, or no answer, is
//! `retryable` (`retry-after` with the delay when the receiver sent `Retry-After`), so the flow's
//! retry policy tries the batch again, no sooner than asked; requests it had already delivered go again with their same ids.
//! Any other 4xx rejects the request's records (retrying would fail the same way).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use plugboard_plugin_sdk::{Batch, PluginError, Record, Sink, WriteReport, config, http};
use sha2::{Digest, Sha256};

struct WebhookSink;

/// A whole request: its id, body and event type.
struct Request {
    id: String,
    body: Vec<u8>,
    event_type: Option<String>,
}

impl Sink for WebhookSink {
    fn write(input: Batch) -> Result<WriteReport, PluginError> {
        let url = config::require("url")?;
        let key = signing_key(&config::require("signing_secret")?)?;
        let github = config::get("github_secret")?;
        let size = match config::get("batch_size")? {
            None => 1,
            Some(text) => text.trim().parse::<usize>().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                PluginError::InvalidConfig(format!("batch_size `{text}` is not a number from 1 to 1000"))
            })?,
        };
        let default_type = config::get("event_type")?;
        let mut report = WriteReport { accepted: 0, failed: 0 };
        for chunk in input.chunks(size) {
            let request = request(chunk, size, default_type.as_deref())?;
            // Per request: a long batch must not send its last requests with a stale timestamp.
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| PluginError::Internal("the clock is before 1970".into()))?
                .as_secs()
                .to_string();
            let signature = sign(&key, &request, &timestamp);
            let mut headers = vec![
                ("content-type", "application/json".to_string()),
                ("webhook-id", request.id.clone()),
                ("webhook-timestamp", timestamp.clone()),
                ("webhook-signature", format!("v1,{signature}")),
            ];
            if let Some(kind) = &request.event_type {
                headers.push(("webhook-event-type", kind.clone()));
            }
            if let Some(secret) = github.as_deref() {
                let mut mac = hmac_of(secret.as_bytes())?;
                mac.update(&request.body);
                headers.push(("x-hub-signature-256", format!("sha256={}", hex::encode(mac.finalize().into_bytes()))));
            }
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let response = http::post(&url, &headers, &request.body)?;
            let count = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            match response.status {
                200..=299 => report.accepted += count,
                408 | 429 | 500..=599 => {
                    return Err(response
                        .retry_error(format!("POST {url}: status {} for webhook {}", response.status, request.id)));
                }
                _ => report.failed += count,
            }
        }
        Ok(report)
    }
}

/// The HMAC key of a `whsec_…` secret.
fn signing_key(secret: &str) -> Result<Vec<u8>, PluginError> {
    let encoded = secret.trim().strip_prefix("whsec_").unwrap_or(secret.trim());
    base64::engine::general_purpose::STANDARD.decode(encoded).ok().filter(|key| !key.is_empty()).ok_or_else(|| {
        PluginError::InvalidConfig("signing_secret must be `whsec_` and base64 (Standard Webhooks)".into())
    })
}

fn hmac_of(key: &[u8]) -> Result<Hmac<Sha256>, PluginError> {
    Hmac::<Sha256>::new_from_slice(key).map_err(|_| PluginError::InvalidConfig("unusable signing key".into()))
}

fn sign(key: &[u8], request: &Request, timestamp: &str) -> String {
    let Ok(mut mac) = hmac_of(key) else { return String::new() };
    mac.update(request.id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn header<'a>(record: &'a Record, name: &str) -> Option<&'a str> {
    record.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).and_then(|h| std::str::from_utf8(&h.value).ok())
}

/// One request of `records`: one record's value as the body when `size` is 1, else an array.
fn request(records: &[Record], size: usize, default_type: Option<&str>) -> Result<Request, PluginError> {
    let values = records
        .iter()
        .map(|record| {
            serde_json::from_slice::<serde_json::Value>(&record.value)
                .map_err(|err| PluginError::Internal(format!("a record is not JSON: {err}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let body = if size == 1 && values.len() == 1 {
        values[0].to_string()
    } else {
        serde_json::Value::Array(values).to_string()
    };
    let relayed = if records.len() == 1 { header(&records[0], "webhook-id") } else { None };
    let id = match relayed {
        Some(id) => id.to_string(),
        None => {
            let mut digest = Sha256::new();
            for record in records {
                let key = record.key.as_deref().unwrap_or_default();
                digest.update((key.len() as u64).to_le_bytes());
                digest.update(key);
                digest.update((record.value.len() as u64).to_le_bytes());
                digest.update(&record.value);
            }
            format!("msg_{}", &hex::encode(digest.finalize())[..32])
        }
    };
    let event_type = records
        .first()
        .and_then(|r| header(r, "webhook-event-type").or_else(|| header(r, "type")))
        .or(default_type)
        .map(str::to_string);
    Ok(Request { id, body: body.into_bytes(), event_type })
}

plugboard_plugin_sdk::export_sink!(WebhookSink);
