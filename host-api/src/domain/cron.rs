//! Cron triggers and the background tick: queue due cron runs, persist usage counters, sample the
//! telemetry's history, forget expired webhook delivery marks.
//!
//! Each cron trigger fires once per due time (runs missed while the server was down are not
//! caught up). Without `allow_overlap`, a due run is skipped while one of that flow is still
//! queued — answered from the queue's in-memory depth, not a scan.

use super::{Result, Services};
use crate::store::TriggerKind;
use plugboard_runtime::sync::Locked;
use std::time::{Duration, Instant};

/// How often the tick runs.
const TICK: Duration = Duration::from_millis(250);

/// How often expired delivery marks are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl Services {
    /// Queues a run of every cron flow that is due, once per due time.
    ///
    /// # Errors
    /// A storage failure, or a full queue (the due run is then skipped).
    pub async fn fire_due_cron(&self) -> Result<()> {
        let now = chrono::Utc::now();
        for flow in self.flows.list()? {
            for (index, schedule) in flow.cron_schedules().into_iter().enumerate() {
                let key = format!("{}#{index}", flow.name);
                let due = {
                    let mut next = self.queue.cron_next.locked();
                    let at = next.entry(key.clone()).or_insert_with(|| schedule.next_after(now));
                    match *at {
                        Some(time) if time <= now => {
                            *at = schedule.next_after(now);
                            Some(time)
                        }
                        _ => None,
                    }
                };
                let Some(due) = due else { continue };
                if !schedule.allow_overlap && self.queue.depth(&flow.name) > 0 {
                    tracing::info!(flow = %flow.name, "cron run skipped: the previous run has not finished");
                    continue;
                }
                // In a cluster every node sees the same due time; one of them runs it.
                if !self.store.claim_once(&format!("cron\0{key}\0{}", due.timestamp()))? {
                    continue;
                }
                self.queue.enqueue(&flow.name, Vec::new(), TriggerKind::Cron).await?;
            }
        }
        Ok(())
    }

    /// Closes the telemetry's current interval with the queue's depth and the dead letters stored.
    fn sample_telemetry(&self) {
        let dead_letters = self.store.dead_letter_total().unwrap_or_else(|err| {
            tracing::warn!(%err, "could not count dead letters");
            0
        });
        let at = crate::store::now();
        self.plugins.telemetry().sample(at, self.queue.total_depth() as u64, dead_letters);
    }

    /// The background tick, until `stop` turns true.
    pub async fn tick(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut last_sweep = Instant::now();
        let mut last_sample = Instant::now();
        while !*stop.borrow() {
            self.plugins.persist_usage();
            if last_sample.elapsed() >= self.plugins.telemetry().interval() {
                self.sample_telemetry();
                last_sample = Instant::now();
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                self.queue.sweep_delivery_marks();
                last_sweep = Instant::now();
            }
            if let Err(err) = self.fire_due_cron().await {
                tracing::error!(%err, "cron triggers");
            }
            tokio::select! {
                () = tokio::time::sleep(TICK) => {},
                changed = stop.changed() => if changed.is_err() { return },
            }
        }
    }
}
