//! `http-sink`: POSTs batches of JSON records to an HTTP endpoint.
//!
//! Config:
//! - `url` (required): where the batch is POSTed, as a JSON array of the record values;
//! - secret `auth_header` (optional): sent as the `Authorization` header.
//!
//! A 2xx answer accepts the batch: if its body is `{"accepted": n, "failed": m}` those counts are
//! reported, otherwise every record counts as accepted. A 4xx answer other than 429 rejects the
//! batch (all records failed; retrying the same batch would fail again). A 429 or 5xx answer or a
//! transport failure is a `retryable` error, so the caller can try again (`retry-after`, no sooner
//! than the answer's `Retry-After` asks).

use plugboard_plugin_sdk::{Batch, PluginError, Sink, WriteReport, config, http, json};
use serde::Deserialize;

#[derive(Deserialize)]
struct Counts {
    accepted: u32,
    failed: u32,
}

struct HttpSink;

impl Sink for HttpSink {
    fn write(input: Batch) -> Result<WriteReport, PluginError> {
        let url = config::require("url")?;
        let auth = config::get("auth_header")?;
        let body = json::batch_to_array(&input)?;
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = auth.as_deref() {
            headers.push(("authorization", auth));
        }
        let total = u32::try_from(input.len()).unwrap_or(u32::MAX);
        let response = http::post(&url, &headers, &body)?;
        match response.status {
            200..=299 => Ok(match serde_json::from_slice::<Counts>(&response.body) {
                Ok(counts) => WriteReport { accepted: counts.accepted, failed: counts.failed },
                Err(_) => WriteReport { accepted: total, failed: 0 },
            }),
            429 => Err(response.retry_error(format!("POST {url}: status 429"))),
            400..=499 => Ok(WriteReport { accepted: 0, failed: total }),
            status => Err(response.retry_error(format!("POST {url}: status {status}"))),
        }
    }
}

plugboard_plugin_sdk::export_sink!(HttpSink);
