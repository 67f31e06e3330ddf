//! What the server measures of itself, from one place every plugin invocation reports to (a direct
//! invocation through the API and every step a flow runs, see [`super::Plugins::record_usage`]):
//!
//! - the Prometheus families answered at `/metrics` (per plugin: invocations, errors by code,
//!   latency histogram, fuel);
//! - a one-hour [`Sample`] history, one sample per [`Telemetry::interval`], that the dashboard
//!   charts without a Prometheus server (invocations, errors by code, p50/p99 latency of the
//!   interval, queue depth, dead letters);
//! - each plugin's p50/p99 latency over its last [`RECENT_LATENCIES`] invocations.
//!
//! All of it is in memory and starts empty with the process; the durable per-plugin totals are
//! [`crate::store::UsageTotals`].

use plugboard_runtime::sync::Locked;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// Samples kept: one hour at the default interval.
pub const HISTORY_SAMPLES: usize = 720;

/// The default sampling interval.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Latencies kept per plugin for its p50/p99.
pub const RECENT_LATENCIES: usize = 1024;

/// Latencies kept per interval for its p50/p99 (beyond it, newer ones overwrite older ones).
const WINDOW_LATENCIES: usize = 16_384;

/// One interval of the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// End of the interval, seconds since the Unix epoch.
    pub at: u64,
    /// Invocations that finished in the interval.
    pub invocations: u64,
    /// Of those, the failed ones by error code.
    pub errors: BTreeMap<String, u64>,
    /// Median invocation time in the interval, if there was one.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile.
    pub latency_p99_ms: Option<f64>,
    /// Runs queued for flow workers at the end of the interval.
    pub queue_depth: u64,
    /// Dead letters stored at the end of the interval, all flows.
    pub dead_letters: u64,
}

/// A plugin's recent latency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Median, milliseconds.
    pub p50: f64,
    /// 99th percentile, milliseconds.
    pub p99: f64,
}

#[derive(Default)]
struct Window {
    invocations: u64,
    errors: BTreeMap<String, u64>,
    latencies_ms: Vec<f64>,
}

/// The measurements; see the module docs.
pub struct Telemetry {
    registry: Registry,
    invocations: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
    fuel: IntCounterVec,
    webhook_refused: IntCounterVec,
    /// The second of the last refusal logged at `info`, and how many were not logged since.
    refusal_log: Mutex<(u64, u64)>,
    interval: Duration,
    window: Mutex<Window>,
    history: Mutex<VecDeque<Sample>>,
    recent: Mutex<HashMap<String, VecDeque<f64>>>,
}

impl Telemetry {
    /// Empty measurements, sampled every `interval`.
    pub fn new(interval: Duration) -> Telemetry {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| registered_counter(&registry, name, help, labels);
        let invocations = counter("plugboard_invocations_total", "Plugin invocations.", &["plugin"]);
        let errors = counter(
            "plugboard_invocation_errors_total",
            "Failed plugin invocations by error code.",
            &["plugin", "code"],
        );
        let fuel = counter("plugboard_fuel_consumed_total", "Fuel consumed by plugin invocations.", &["plugin"]);
        let webhook_refused = counter(
            "plugboard_webhook_refused_total",
            "Webhook deliveries refused (401), by flow and reason; deliveries to no flow count under flow=\"\".",
            &["flow", "reason"],
        );
        let latency = HistogramVec::new(
            HistogramOpts::new("plugboard_invocation_seconds", "Plugin invocation wall time.")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["plugin"],
        )
        .unwrap_or_else(|_| unreachable!("valid metric"));
        let _ = registry.register(Box::new(latency.clone()));
        Telemetry {
            registry,
            invocations,
            errors,
            latency,
            fuel,
            webhook_refused,
            refusal_log: Mutex::default(),
            interval,
            window: Mutex::default(),
            history: Mutex::default(),
            recent: Mutex::default(),
        }
    }

    /// How often [`Telemetry::sample`] should be called.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Counts a refused webhook delivery and logs it at `info`, at most once a second (the
    /// others are counted in the next line logged): refusals come from outside, so a flood of
    /// them must not flood the log. `flow` is `None` when no such flow has a webhook trigger, so
    /// callers cannot grow the metric's label set with made-up names.
    pub fn webhook_refused(&self, flow: Option<&str>, reason: &str, source: Option<std::net::IpAddr>) {
        self.webhook_refused.with_label_values(&[flow.unwrap_or_default(), reason]).inc();
        let second = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut log = self.refusal_log.locked();
        if log.0 == second {
            log.1 += 1;
            return;
        }
        let unlogged = std::mem::take(&mut log.1);
        log.0 = second;
        drop(log);
        let source = source.map(|ip| ip.to_string()).unwrap_or_default();
        tracing::info!(flow = flow.unwrap_or_default(), reason, %source, unlogged, "webhook delivery refused");
    }

    /// Records an attempt of `plugin` in a flow step that failed with `error_code` and was
    /// retried: an invocation and an error (no latency sample: the step's time is one sample).
    pub fn observe_retry(&self, plugin: &str, error_code: &str) {
        self.invocations.with_label_values(&[plugin]).inc();
        self.errors.with_label_values(&[plugin, error_code]).inc();
    }

    /// Records one finished invocation of `plugin`.
    pub fn observe(&self, plugin: &str, fuel: u64, wall: Duration, error_code: Option<&str>) {
        self.invocations.with_label_values(&[plugin]).inc();
        self.fuel.with_label_values(&[plugin]).inc_by(fuel);
        self.latency.with_label_values(&[plugin]).observe(wall.as_secs_f64());
        if let Some(code) = error_code {
            self.errors.with_label_values(&[plugin, code]).inc();
        }
        let ms = wall.as_secs_f64() * 1000.0;
        {
            let mut window = self.window.locked();
            let seen = window.invocations as usize;
            window.invocations += 1;
            if let Some(code) = error_code {
                *window.errors.entry(code.to_string()).or_default() += 1;
            }
            if window.latencies_ms.len() < WINDOW_LATENCIES {
                window.latencies_ms.push(ms);
            } else if let Some(slot) = window.latencies_ms.get_mut(seen % WINDOW_LATENCIES) {
                *slot = ms;
            }
        }
        let mut recent = self.recent.locked();
        let times = recent.entry(plugin.to_string()).or_default();
        if times.len() == RECENT_LATENCIES {
            times.pop_front();
        }
        times.push_back(ms);
    }

    /// Closes the current interval: one [`Sample`] with the gauges given, the oldest dropped past
    /// [`HISTORY_SAMPLES`].
    pub fn sample(&self, at: u64, queue_depth: u64, dead_letters: u64) {
        let window = std::mem::take(&mut *self.window.locked());
        let mut times = window.latencies_ms;
        let (p50, p99) = percentiles(&mut times).map_or((None, None), |l| (Some(l.p50), Some(l.p99)));
        let sample = Sample {
            at,
            invocations: window.invocations,
            errors: window.errors,
            latency_p50_ms: p50,
            latency_p99_ms: p99,
            queue_depth,
            dead_letters,
        };
        let mut history = self.history.locked();
        if history.len() == HISTORY_SAMPLES {
            history.pop_front();
        }
        history.push_back(sample);
    }

    /// The samples, oldest first.
    pub fn history(&self) -> Vec<Sample> {
        self.history.locked().iter().cloned().collect()
    }

    /// `plugin`'s p50/p99 over its last invocations, if it had any since the server started.
    pub fn latency(&self, plugin: &str) -> Option<Latency> {
        let mut times: Vec<f64> = self.recent.locked().get(plugin)?.iter().copied().collect();
        percentiles(&mut times)
    }

    /// The Prometheus text of the families above.
    pub fn render(&self) -> String {
        TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}

/// A counter family `name` with `labels`, registered in `registry`.
pub(crate) fn registered_counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable!("valid metric"));
    let _ = registry.register(Box::new(counter.clone()));
    counter
}

/// Nearest-rank p50 and p99 of `times` (sorted in place), if there are any.
fn percentiles(times: &mut [f64]) -> Option<Latency> {
    if times.is_empty() {
        return None;
    }
    times.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let index = ((p * times.len() as f64).ceil() as usize).saturating_sub(1);
        times.get(index.min(times.len() - 1)).copied().unwrap_or_default()
    };
    Some(Latency { p50: rank(0.50), p99: rank(0.99) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_holds_its_interval_only() {
        let telemetry = Telemetry::new(SAMPLE_INTERVAL);
        for ms in 1..=100 {
            telemetry.observe("a", 10, Duration::from_millis(ms), (ms % 10 == 0).then_some("out-of-fuel"));
        }
        telemetry.sample(1, 3, 7);
        telemetry.sample(2, 0, 7);
        let history = telemetry.history();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].invocations, 100);
        assert_eq!(history[0].errors.get("out-of-fuel"), Some(&10));
        assert_eq!(history[0].latency_p50_ms, Some(50.0));
        assert_eq!(history[0].latency_p99_ms, Some(99.0));
        assert_eq!((history[0].queue_depth, history[0].dead_letters), (3, 7));
        assert_eq!(history[1].invocations, 0);
        assert_eq!(history[1].latency_p50_ms, None);
        assert_eq!(telemetry.latency("a"), Some(Latency { p50: 50.0, p99: 99.0 }));
        assert_eq!(telemetry.latency("b"), None);
        assert!(telemetry.render().contains("plugboard_invocation_errors_total{code=\"out-of-fuel\",plugin=\"a\"} 10"));
    }

    #[test]
    fn history_and_recent_latencies_are_bounded() {
        let telemetry = Telemetry::new(SAMPLE_INTERVAL);
        for at in 0..(HISTORY_SAMPLES as u64 + 10) {
            telemetry.sample(at, 0, 0);
        }
        let history = telemetry.history();
        assert_eq!(history.len(), HISTORY_SAMPLES);
        assert_eq!(history[0].at, 10);
        for _ in 0..(RECENT_LATENCIES + 5) {
            telemetry.observe("a", 0, Duration::from_millis(1), None);
        }
        assert_eq!(telemetry.recent.lock().unwrap()["a"].len(), RECENT_LATENCIES);
    }
}
