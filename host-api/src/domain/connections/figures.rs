//! Per-connection figures for `/metrics`: what an operator asks of a connection that misbehaves
//! — is it used, are its tokens fetched (and failing), does the remote refuse it (`401`) or
//! throttle it (`429`/`503`), and how long do plugins wait for its rate limit.
//!
//! The series are labelled by connection name only, which the operator chose, so their number is
//! the number of connections; a deleted connection's series stay until the server restarts, as a
//! Prometheus counter must not go backwards.

use prometheus::{CounterVec, IntCounterVec, Opts, Registry, TextEncoder};
use std::time::Duration;

/// The counters, in a registry of their own that `/metrics` appends.
pub(super) struct Figures {
    registry: Registry,
    requests: IntCounterVec,
    answers: IntCounterVec,
    token_fetches: IntCounterVec,
    waited: CounterVec,
}

impl Figures {
    pub(super) fn new() -> Figures {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            crate::domain::telemetry::registered_counter(&registry, name, help, labels)
        };
        let requests = counter(
            "plugboard_connection_requests_total",
            "Plugin requests sent with a connection's credential.",
            &["connection"],
        );
        let answers = counter(
            "plugboard_connection_answers_total",
            "Answers to requests sent with a connection's credential, by status (401, 429 and 503 \
             on their own, others by class: 2xx, 3xx, 4xx, 5xx).",
            &["connection", "status"],
        );
        let token_fetches = counter(
            "plugboard_connection_token_fetches_total",
            "OAuth access token fetches, by outcome (ok, failed).",
            &["connection", "outcome"],
        );
        let waited = CounterVec::new(
            Opts::new(
                "plugboard_connection_rate_limit_wait_seconds_total",
                "Time requests waited for the connection's rate limit (rate and in-flight places).",
            ),
            &["connection"],
        )
        .unwrap_or_else(|_| unreachable!("valid metric"));
        let _ = registry.register(Box::new(waited.clone()));
        Figures { registry, requests, answers, token_fetches, waited }
    }

    /// A request got `connection`'s credential after waiting `waited` for its rate limit.
    pub(super) fn sent(&self, connection: &str, waited: Duration) {
        self.requests.with_label_values(&[connection]).inc();
        if !waited.is_zero() {
            self.waited.with_label_values(&[connection]).inc_by(waited.as_secs_f64());
        }
    }

    /// The remote answered a request sent with `connection`'s credential with `status`.
    pub(super) fn answered(&self, connection: &str, status: u16) {
        let label = match status {
            401 | 429 | 503 => status.to_string(),
            200..=299 => "2xx".into(),
            300..=399 => "3xx".into(),
            400..=499 => "4xx".into(),
            _ => "5xx".into(),
        };
        self.answers.with_label_values(&[connection, &label]).inc();
    }

    /// A token fetch for `connection` ended.
    pub(super) fn token_fetched(&self, connection: &str, ok: bool) {
        self.token_fetches.with_label_values(&[connection, if ok { "ok" } else { "failed" }]).inc();
    }

    /// The Prometheus text of these families.
    pub(super) fn render(&self) -> String {
        TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_connection_status_and_outcome() {
        let figures = Figures::new();
        figures.sent("crm", Duration::from_millis(250));
        figures.sent("crm", Duration::ZERO);
        figures.answered("crm", 204);
        figures.answered("crm", 429);
        figures.token_fetched("crm", false);
        let text = figures.render();
        assert!(text.contains("plugboard_connection_requests_total{connection=\"crm\"} 2"), "{text}");
        assert!(text.contains("plugboard_connection_answers_total{connection=\"crm\",status=\"2xx\"} 1"), "{text}");
        assert!(text.contains("plugboard_connection_answers_total{connection=\"crm\",status=\"429\"} 1"), "{text}");
        assert!(text.contains("plugboard_connection_token_fetches_total{connection=\"crm\",outcome=\"failed\"} 1"));
        assert!(text.contains("plugboard_connection_rate_limit_wait_seconds_total{connection=\"crm\"} 0.25"), "{text}");
    }
}
