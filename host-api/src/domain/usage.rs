//! Plugins' usage: every invocation (through the API or as a flow step, retried attempts
//! included) counted in memory on the hot path, persisted by the background tick, and fed to the
//! server's telemetry. Apart from `plugins.rs`, which owns the plugins' lifecycle.

use super::Result;
use super::plugins::Plugins;
use crate::store::UsageTotals;
use plugboard_runtime::sync::Locked;
use std::collections::BTreeMap;

impl Plugins {
    /// Records one finished invocation of `name` — through the API or as a flow's step — in its
    /// usage totals (in memory until [`Plugins::persist_usage`]) and the server's telemetry.
    pub fn record_usage(&self, name: &str, fuel: u64, wall: std::time::Duration, error_code: Option<&str>) {
        self.telemetry.observe(name, fuel, wall, error_code);
        let mut pending = self.pending_usage.locked();
        pending.entry(name.to_string()).or_default().add(&UsageTotals {
            invocations: 1,
            errors: u64::from(error_code.is_some()),
            fuel,
            errors_by_code: error_code.map(|code| (code.to_string(), 1)).into_iter().collect(),
            retries: 0,
        });
    }

    /// Records a flow step's attempt of `name` that failed with `error_code` and was retried:
    /// an invocation and an error of that code, and a retry (its time is in the step's last
    /// attempt, which [`Plugins::record_usage`] records).
    pub fn record_retry(&self, name: &str, error_code: &str) {
        self.telemetry.observe_retry(name, error_code);
        let mut pending = self.pending_usage.locked();
        pending.entry(name.to_string()).or_default().add(&UsageTotals {
            invocations: 1,
            errors: 1,
            fuel: 0,
            errors_by_code: BTreeMap::from([(error_code.to_string(), 1)]),
            retries: 1,
        });
    }

    /// The server's measurements of itself (see [`super::telemetry`]).
    pub fn telemetry(&self) -> &super::telemetry::Telemetry {
        &self.telemetry
    }

    /// Writes pending usage to the store (in cluster mode: publishes it, see `Op::AddUsage`). What
    /// could not be written stays pending for the next tick.
    pub fn persist_usage(&self) {
        let pending = std::mem::take(&mut *self.pending_usage.locked());
        for (name, delta) in pending {
            if let Err(err) = self.store.add_usage(&name, &delta) {
                tracing::warn!(plugin = %name, %err, "could not record usage; kept for the next tick");
                self.pending_usage.locked().entry(name).or_default().add(&delta);
            }
        }
    }

    /// Usage totals of `name`, pending ones included.
    pub fn usage(&self, name: &str) -> Result<UsageTotals> {
        let mut totals = self.store.usage(name)?;
        if let Some(delta) = self.pending_usage.locked().get(name) {
            totals.add(delta);
        }
        Ok(totals)
    }
}
