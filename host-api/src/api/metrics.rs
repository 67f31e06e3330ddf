//! `/metrics` for Prometheus (the telemetry's families — invocations, errors by code, latency and
//! fuel per plugin — plus per-connection figures, the store's group commit and the queue), and
//! `/v1/metrics/history`, the sampled last hour the dashboard charts (see `domain::telemetry`).

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use plugboard_api_types::connections::{MetricsHistory, MetricsSample};
/// `GET /metrics`: the telemetry's families, plus the store's group commit (fsyncs, and the
/// acknowledgements that waited for one) and the work queue's depth.
///
/// Public by default (a Prometheus scraper on the loopback interface needs no token); with
/// `metrics_require_token = true` in the config it answers 401 without a valid token of any role,
/// and 403 to a token scoped to some plugins and flows (the figures name every plugin).
pub async fn metrics_get(
    State(state): State<AppState>,
    caller: Option<axum::Extension<super::auth::Caller>>,
) -> Result<impl IntoResponse, super::error::ApiError> {
    if state.limits.metrics_require_token {
        match caller.as_ref().map(|caller| &caller.scope) {
            None => return Err(super::error::ApiError::unauthorized()),
            Some(Some(scope)) => return Err(super::error::ApiError::out_of_scope("read metrics", scope)),
            Some(None) => {}
        }
    }
    let commit = state.services.store.commit_stats();
    let mut text = state.services.plugins.telemetry().render();
    text.push_str(&state.services.connections.figures());
    let mut family = |name: &str, kind: &str, help: &str, value: u64| {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
    };
    family(
        "plugboard_store_fsyncs_total",
        "counter",
        "Database flushes (one fsync each) by the group commit.",
        commit.fsyncs,
    );
    family(
        "plugboard_store_commits_total",
        "counter",
        "Waits for durability (each acknowledgement waits once; many share one fsync).",
        commit.commits,
    );
    family(
        "plugboard_store_flush_microseconds_total",
        "counter",
        "Time the group commit spent flushing (its rate / 1e6 = the flusher's busy fraction).",
        commit.flush_micros,
    );
    family(
        "plugboard_queue_depth",
        "gauge",
        "Runs queued for flow workers.",
        state.services.queue.total_depth() as u64,
    );
    family(
        "plugboard_compilations_running",
        "gauge",
        "Plugin compilations running now (bounded; an abandoned upload's compilation still counts).",
        state.services.plugins.compilations().0 as u64,
    );
    if state.services.store.position().is_some() {
        text.push_str(
            "# HELP plugboard_cluster_changes_skipped_total Messages of the cluster's change log skipped \
             (they did not open, decode or verify, or replayed an applied change), by reason.\n\
             # TYPE plugboard_cluster_changes_skipped_total counter\n",
        );
        for (reason, count) in
            ["unreadable", "malformed", "object", "replayed", "stale"].iter().zip(commit.skipped_changes)
        {
            text.push_str(&format!("plugboard_cluster_changes_skipped_total{{reason=\"{reason}\"}} {count}\n"));
        }
        text.push_str(&format!(
            "# HELP plugboard_cluster_applied_sequence The last sequence of the cluster's change log this node \
             applied.\n# TYPE plugboard_cluster_applied_sequence gauge\nplugboard_cluster_applied_sequence {}\n",
            commit.applied_change
        ));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

/// `GET /v1/metrics/history`: one sample per interval over the last hour, oldest first (any role).
pub async fn metrics_history(State(state): State<AppState>) -> Json<MetricsHistory> {
    let telemetry = state.services.plugins.telemetry();
    let samples = telemetry
        .history()
        .into_iter()
        .map(|sample| MetricsSample {
            at: sample.at,
            invocations: sample.invocations,
            errors: sample.errors,
            latency_p50_ms: sample.latency_p50_ms,
            latency_p99_ms: sample.latency_p99_ms,
            queue_depth: sample.queue_depth,
            dead_letters: sample.dead_letters,
        })
        .collect();
    Json(MetricsHistory { interval_seconds: telemetry.interval().as_secs(), samples })
}
