//! Admin API calls: the one-time setup of the `load` flow, and two writers that keep changing the
//! `aggregate` plugin's config and grant while the server is being killed, with the check that
//! every change the server acknowledged survived.
//!
//! Each writer numbers its values (`group_by` = `$.g<n>` in the config, `budget.fuel` = base + n in
//! the grant) and writes them one after another, so "at least as new" is a comparison of numbers. A
//! write answered 2xx is acknowledged and must be visible after any later restart; a write whose
//! answer was lost (the server was killed mid-request) may or may not be, and is not retried: the
//! writer moves on to the next number. `aggregate` is not part of the flow, so the writes contend
//! with the flow for the database, not for the plugin.

use crate::child::Live;
use crate::report::{Refusals, is_retryable};
use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The plugin the writers change.
pub const PLUGIN: &str = "aggregate";

/// Authorized JSON calls to the admin API.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// The admin token (`DATA/admin-token`).
    pub token: String,
}

impl Admin {
    /// `method base+path` with an optional JSON body; answers the status and the JSON body (`null`
    /// when there is none).
    ///
    /// # Errors
    /// When no answer arrives.
    pub async fn call(&self, method: Method, url: &str, body: Option<&Value>) -> reqwest::Result<(StatusCode, Value)> {
        let mut request = self.client.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Like [`Admin::call`], but anything other than 2xx is an error.
    ///
    /// # Errors
    /// When no answer arrives or it is not 2xx.
    pub async fn expect(&self, method: Method, url: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let what = format!("{method} {url}");
        let (status, answer) = self.call(method, url, body).await.with_context(|| what.clone())?;
        if !status.is_success() {
            bail!("{what}: {status} {answer}");
        }
        Ok(answer)
    }
}

/// Points `http-sink` at `sink_url` and creates the `load` flow (webhook → json-mapper → filter →
/// http-sink) with `secret`, signed by Plugboard's scheme or, with `github`, GitHub's.
///
/// # Errors
/// When a call is not answered 2xx.
pub async fn setup_flow(admin: &Admin, base: &str, sink_url: &str, secret: &str, github: bool) -> anyhow::Result<()> {
    let put = Method::PUT;
    admin
        .expect(
            put.clone(),
            &format!("{base}/v1/plugins/http-sink/grants"),
            Some(&json!({"outbound_hosts": ["127.0.0.1"]})),
        )
        .await?;
    admin
        .expect(
            put.clone(),
            &format!("{base}/v1/plugins/http-sink/config"),
            Some(&json!({"values": {"url": sink_url}})),
        )
        .await?;
    let trigger = if github {
        json!({"type": "webhook", "scheme": "github", "body": "records", "events": ["push"]})
    } else {
        json!({"type": "webhook", "tolerance_secs": 300})
    };
    let flow = json!({
        "name": crate::senders::FLOW,
        "triggers": [trigger],
        "steps": [
            {"type": "transform", "id": "map", "plugin": "json-mapper"},
            {"type": "transform", "id": "keep", "plugin": "filter"},
        ],
        "sinks": [{"id": "out", "plugin": "http-sink", "retry": {"max_attempts": 10, "initial_backoff_ms": 50}}],
    });
    admin.expect(Method::POST, &format!("{base}/v1/flows"), Some(&flow)).await?;
    let url = format!("{base}/v1/flows/{}/webhook-secret", crate::senders::FLOW);
    admin.expect(put, &url, Some(&json!({ "secret": secret }))).await?;
    Ok(())
}

/// The grant's fuel budget is this plus the write's number.
const FUEL_BASE: u64 = 50_000_000;

/// Which writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `PUT /v1/plugins/aggregate/config`.
    Config,
    /// `PUT /v1/plugins/aggregate/grants`.
    Grant,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Config => "config",
            Kind::Grant => "grants",
        }
    }

    /// Write number `n`: only keys the aggregate manifest requests, with values it accepts.
    fn body(self, n: u64) -> Value {
        match self {
            Kind::Config => json!({"values": {
                "group_by": format!("$.g{n}"),
                "aggregations": [{"op": "count", "as": "orders"}, {"op": "sum", "field": "$.total", "as": "revenue"}],
            }}),
            Kind::Grant => json!({"budget": {"fuel": FUEL_BASE + n}}),
        }
    }

    /// The number of the write `GET /v1/plugins/aggregate` shows; 0 before the first.
    fn visible(self, plugin: &Value) -> Option<u64> {
        match self {
            Kind::Config => match plugin["grants"]["config"]["group_by"].as_str()? {
                "$.region" => Some(0),
                path => path.strip_prefix("$.g")?.parse().ok(),
            },
            Kind::Grant => match plugin["grants"]["budget"]["fuel"].as_u64() {
                None => Some(0),
                Some(fuel) => fuel.checked_sub(FUEL_BASE),
            },
        }
    }
}

/// One writer's counts.
#[derive(Debug)]
pub struct Writer {
    /// Which writer.
    pub kind: Kind,
    /// Writes sent (the last number used).
    pub attempted: AtomicU64,
    /// Writes answered 2xx.
    pub acknowledged: AtomicU64,
    /// The number of the last write answered 2xx.
    pub last_acknowledged: AtomicU64,
    /// Writes answered with something else (429 included), or not answered.
    pub unacknowledged: AtomicU64,
    /// Writes refused for good (a 4xx other than 408 and 429).
    pub refusals: Refusals,
    /// Checks done after restarts and at the end.
    pub verified: AtomicU64,
}

impl Writer {
    /// A writer of `kind` that has written nothing.
    pub fn new(kind: Kind) -> Writer {
        Writer {
            kind,
            attempted: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            last_acknowledged: AtomicU64::new(0),
            unacknowledged: AtomicU64::new(0),
            refusals: Refusals::default(),
            verified: AtomicU64::new(0),
        }
    }

    /// Writes numbered values every `every` until `stop`.
    pub async fn run(self: Arc<Self>, admin: Admin, live: Live, every: Duration, stop: Arc<AtomicBool>) {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let Some(endpoint) = live.wait_up(Duration::from_millis(500)).await else { continue };
            n += 1;
            self.attempted.store(n, Ordering::Relaxed);
            let url = format!("{}/v1/plugins/{PLUGIN}/{}", endpoint.base, self.kind.path());
            match admin.call(Method::PUT, &url, Some(&self.kind.body(n))).await {
                Ok((status, _)) if status.is_success() => {
                    self.acknowledged.fetch_add(1, Ordering::Relaxed);
                    self.last_acknowledged.store(n, Ordering::Relaxed);
                }
                Ok((status, answer)) => {
                    self.unacknowledged.fetch_add(1, Ordering::Relaxed);
                    if !is_retryable(status.as_u16()) {
                        self.refusals.note(format!("{PLUGIN} {} write {n}: {status} {answer}", self.kind.path()));
                    }
                }
                Err(_) => {
                    self.unacknowledged.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// Checks that `GET /v1/plugins/aggregate` shows, for each writer, a value at least as new as the
/// last one acknowledged before the call (and none newer than it ever sent). Answers the
/// violations, each naming `when`.
pub async fn verify(admin: &Admin, base: &str, writers: &[&Writer], when: &str) -> Vec<String> {
    let acknowledged: Vec<u64> = writers.iter().map(|w| w.last_acknowledged.load(Ordering::Relaxed)).collect();
    let plugin = match admin.expect(Method::GET, &format!("{base}/v1/plugins/{PLUGIN}"), None).await {
        Ok(plugin) => plugin,
        Err(err) => return vec![format!("{when}: cannot read the {PLUGIN} plugin: {err:#}")],
    };
    let mut violations = Vec::new();
    for (writer, acknowledged) in writers.iter().zip(acknowledged) {
        writer.verified.fetch_add(1, Ordering::Relaxed);
        let attempted = writer.attempted.load(Ordering::Relaxed);
        let what = writer.kind.path();
        match writer.kind.visible(&plugin) {
            Some(visible) if visible >= acknowledged && visible <= attempted => {}
            Some(visible) => violations.push(format!(
                "{when}: {PLUGIN} {what} shows write {visible}, but write {acknowledged} was acknowledged \
                 (last sent: {attempted})"
            )),
            None => {
                violations.push(format!("{when}: {PLUGIN} {what} shows a value no writer sent: {}", plugin["grants"]))
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_write_can_be_read_back_by_its_number() {
        for kind in [Kind::Config, Kind::Grant] {
            let body = kind.body(42);
            let shown = match kind {
                Kind::Config => json!({"grants": {"config": {"group_by": body["values"]["group_by"]}}}),
                Kind::Grant => json!({"grants": {"budget": body["budget"]}}),
            };
            assert_eq!(kind.visible(&shown), Some(42));
        }
        let demo = json!({"grants": {"config": {"group_by": "$.region"}, "budget": {}}});
        assert_eq!((Kind::Config.visible(&demo), Kind::Grant.visible(&demo)), (Some(0), Some(0)));
    }
}
