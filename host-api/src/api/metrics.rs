//! Prometheus metrics at `/metrics`: invocations, errors by code, latency and fuel, per plugin.

use super::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

/// The metric families.
pub struct Metrics {
    registry: Registry,
    invocations: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
    fuel: IntCounterVec,
}

impl Metrics {
    /// Registers the families.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let counter =
                IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable!("valid metric"));
            let _ = registry.register(Box::new(counter.clone()));
            counter
        };
        let invocations = counter("plugboard_invocations_total", "Plugin invocations.", &["plugin"]);
        let errors = counter(
            "plugboard_invocation_errors_total",
            "Failed plugin invocations by error code.",
            &["plugin", "code"],
        );
        let fuel = counter("plugboard_fuel_consumed_total", "Fuel consumed by plugin invocations.", &["plugin"]);
        let latency = HistogramVec::new(
            HistogramOpts::new("plugboard_invocation_seconds", "Plugin invocation wall time.")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["plugin"],
        )
        .unwrap_or_else(|_| unreachable!("valid metric"));
        let _ = registry.register(Box::new(latency.clone()));
        Metrics { registry, invocations, errors, latency, fuel }
    }

    /// Records one invocation.
    pub fn observe(&self, plugin: &str, usage: &plugboard_runtime::Usage, error_code: Option<&str>) {
        self.invocations.with_label_values(&[plugin]).inc();
        self.fuel.with_label_values(&[plugin]).inc_by(usage.fuel_consumed);
        self.latency.with_label_values(&[plugin]).observe(usage.wall_time.as_secs_f64());
        if let Some(code) = error_code {
            self.errors.with_label_values(&[plugin, code]).inc();
        }
    }

    fn render(&self) -> String {
        TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// `GET /metrics`: the families above, plus the store's group commit (fsyncs, and the
/// acknowledgements that waited for one) and the work queue's depth.
///
/// Public by default (a Prometheus scraper on the loopback interface needs no token); with
/// `metrics_require_token = true` in the config it answers 401 without a valid token of any role.
pub async fn metrics_get(
    State(state): State<AppState>,
    caller: Option<axum::Extension<super::auth::Caller>>,
) -> Result<impl IntoResponse, super::error::ApiError> {
    if state.limits.metrics_require_token && caller.is_none() {
        return Err(super::error::ApiError::unauthorized());
    }
    let commit = state.services.store.commit_stats();
    let mut text = state.metrics.render();
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
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
