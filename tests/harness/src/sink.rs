//! The outside system the flow delivers to: a local HTTP server that receives the `http-sink`
//! plugin's batches and writes every record into the [`Ledger`].
//!
//! `http-sink` POSTs each batch as a JSON array of records. The sink notes the batch as soon as it
//! arrives (a batch in flight when the server is killed therefore counts as seen, and its
//! redelivery after the restart as a duplicate, which at-least-once delivery allows), then
//! optionally waits before answering to play a slow outside system: the flow worker must keep
//! going, and a server under SIGTERM must not wait on it forever.

use crate::ledger::{Arrival, Ledger};
use crate::senders::classify;
use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The path batches are POSTed to.
const PATH: &str = "/in";

/// A running sink; stops when dropped.
#[derive(Debug)]
pub struct Sink {
    /// The URL to configure `http-sink` with.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct SinkState {
    ledger: Arc<Ledger>,
    delay: Duration,
}

/// Starts the sink on 127.0.0.1:0; every request is answered after `delay`.
///
/// # Errors
/// When it cannot listen.
pub async fn start(ledger: Arc<Ledger>, delay: Duration) -> anyhow::Result<Sink> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("the sink cannot listen")?;
    let url = format!("http://{}{PATH}", listener.local_addr()?);
    let app = axum::Router::new()
        .route(PATH, axum::routing::post(sink_post))
        .with_state(SinkState { ledger, delay })
        // http-sink batches are small, but a run may carry many records.
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Sink { url, task })
}

/// `POST /in`: a JSON array of records.
async fn sink_post(State(state): State<SinkState>, body: Bytes) -> (StatusCode, &'static str) {
    let answer = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(records)) => {
            state.ledger.arrived(records.iter().map(classify));
            (StatusCode::OK, "{}")
        }
        _ => {
            state.ledger.arrived([Arrival::Unknown]);
            (StatusCode::BAD_REQUEST, r#"{"error": "expected a JSON array of records"}"#)
        }
    };
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn batches_are_written_into_the_ledger() {
        let ledger = Arc::new(Ledger::new(1));
        ledger.acknowledge(0, 0..3, crate::senders::kept);
        let sink = start(ledger.clone(), Duration::ZERO).await.unwrap();
        let client = reqwest::Client::new();
        let batch = json!([{"id": "s0-0", "total": 150}, {"id": "s0-1", "total": 150}, {"id": "s0-0", "total": 150}]);
        let answer = client.post(&sink.url).json(&batch).send().await.unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::OK);
        let answer = client.post(&sink.url).body("not json").send().await.unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::BAD_REQUEST);
        let figures = ledger.figures();
        assert_eq!((figures.pending, figures.duplicates, figures.unknown_seen), (1, 1, 1));
    }
}
