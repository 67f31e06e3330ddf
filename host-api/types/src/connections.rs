//! `/v1/connections` and `/v1/metrics/history`: what the operator's connections and the
//! server's recent figures look like on the wire.

use crate::documents::Connection;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GET /v1/connections`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionList {
    /// Every connection, without secrets.
    pub connections: Vec<Connection>,
}

/// `POST /v1/connections/{name}/test`: whether the connection works.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionProbe {
    /// It fetched its token and the probe answered 2xx (or there is no probe to call).
    pub ok: bool,
    /// The probe's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Whether a token was fetched (OAuth kinds without a probe URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_fetched: Option<bool>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
}

/// One interval of the server's own figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsSample {
    /// End of the interval, seconds since the Unix epoch.
    pub at: u64,
    /// Invocations that finished in the interval.
    pub invocations: u64,
    /// Of those, the failed ones by error code.
    pub errors: BTreeMap<String, u64>,
    /// Median invocation time, milliseconds, if there was one.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile.
    pub latency_p99_ms: Option<f64>,
    /// Runs queued for flow workers at the end of the interval.
    pub queue_depth: u64,
    /// Dead letters stored at the end of the interval, all flows.
    pub dead_letters: u64,
}

/// `GET /v1/metrics/history`: the last hour, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricsHistory {
    /// The interval, seconds.
    pub interval_seconds: u64,
    /// One sample per interval.
    pub samples: Vec<MetricsSample>,
}
