//! The work queue: durable queued runs (webhook deliveries, cron firings), bounded, run by
//! several workers.
//!
//! - **Bounded.** Depth per flow and in total is counted in memory (from the store's per-flow
//!   index at start-up); a run that would pass either bound is refused with
//!   [`DomainError::QueueFull`] and nothing is queued (webhooks answer 429 with `Retry-After`).
//! - **Read in order, never whole.** A worker picks the next flow with work (round robin, so one
//!   busy flow does not starve the others) and reads that flow's oldest unclaimed run ids from the
//!   per-flow index; it decodes only the runs it takes.
//! - **Micro-batched.** Consecutive queued runs of one flow with the same trigger are run as one
//!   execution of up to [`QueueSettings::batch_records`] records; the execution lists the queued
//!   ids it carried, and removing them from the queue is part of the change that stores it.
//! - **Concurrent, or ordered.** [`QueueSettings::workers`] workers run at once; a flow with
//!   `ordered: true` has at most one batch in flight, taken in acceptance order.
//! - **At least once.** Work leaves the queue only in the change that stores its execution; a
//!   crash (or a shutdown past its deadline) leaves it queued, and it runs after the restart.

use super::runs::RunRequest;
use super::{DomainError, Flows, Result};
use crate::store::{Change, DeadLetterRecord, ExecutionStatus, Op, QueuedRun, Storage, TriggerKind, now};
use plugboard_runtime::flow::{DeadLetter, ErrorReport, StoredRecord};
use plugboard_runtime::sync::Locked;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a flow whose queued work cannot start (a plugin inactive, a storage fault) waits
/// before a worker tries it again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Queue bounds and workers (`[queue]` in the config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// Workers running queued work at once (default: the number of cores).
    pub workers: usize,
    /// Most runs queued for one flow (default 10,000).
    pub max_depth_per_flow: usize,
    /// Most runs queued in total (default 100,000).
    pub max_depth: usize,
    /// Most records one micro-batched execution takes from consecutive queued runs (default 500).
    pub batch_records: usize,
}

impl Default for QueueSettings {
    fn default() -> QueueSettings {
        QueueSettings {
            workers: std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            max_depth_per_flow: 10_000,
            max_depth: 100_000,
            batch_records: 500,
        }
    }
}

/// Runs a worker has taken: consecutive queued runs of one flow.
struct Claim {
    flow: String,
    ordered: bool,
    runs: Vec<QueuedRun>,
}

#[derive(Default)]
struct State {
    depth: BTreeMap<String, usize>,
    total: usize,
    claimed: BTreeSet<u64>,
    ordered_busy: BTreeSet<String>,
    paused_until: BTreeMap<String, Instant>,
    last_flow: Option<String>,
}

/// The queue, its bounds and what its workers hold.
pub struct WorkQueue {
    pub(super) store: Arc<dyn Storage>,
    pub(super) flows: Arc<Flows>,
    settings: QueueSettings,
    state: Mutex<State>,
    /// Woken when work is queued.
    signal: tokio::sync::Notify,
    /// When each cron trigger (`flow#index`) next fires.
    pub(super) cron_next: Mutex<BTreeMap<String, Option<chrono::DateTime<chrono::Utc>>>>,
}

impl WorkQueue {
    pub(super) fn open(store: Arc<dyn Storage>, flows: Arc<Flows>, settings: QueueSettings) -> Result<WorkQueue> {
        let depth = store.queue_depths()?;
        let total = depth.values().sum();
        if total > 0 {
            tracing::info!(queued = total, "queued work from before the restart runs now");
        }
        Ok(WorkQueue {
            store,
            flows,
            settings,
            state: Mutex::new(State { depth, total, ..State::default() }),
            signal: tokio::sync::Notify::new(),
            cron_next: Mutex::default(),
        })
    }

    /// The settings.
    pub fn settings(&self) -> QueueSettings {
        self.settings
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.locked()
    }

    /// Runs queued for `flow`.
    pub fn depth(&self, flow: &str) -> usize {
        self.state().depth.get(flow).copied().unwrap_or(0)
    }

    /// Runs queued in total.
    pub fn total_depth(&self) -> usize {
        self.state().total
    }

    /// Counts one more run of `flow`, or refuses it when a bound is reached.
    pub(super) fn reserve(&self, flow: &str) -> Result<()> {
        let mut state = self.state();
        let depth = state.depth.get(flow).copied().unwrap_or(0);
        let (scope, depth) = if depth >= self.settings.max_depth_per_flow {
            (format!("of flow {flow}"), depth)
        } else if state.total >= self.settings.max_depth {
            ("of the server".to_string(), state.total)
        } else {
            *state.depth.entry(flow.to_string()).or_insert(0) += 1;
            state.total += 1;
            return Ok(());
        };
        Err(DomainError::QueueFull { scope, depth, retry_after_secs: 1 })
    }

    /// Forgets `count` runs of `flow` (dequeued, or reserved but not queued).
    pub(super) fn release(&self, flow: &str, count: usize) {
        let mut state = self.state();
        if let Some(depth) = state.depth.get_mut(flow) {
            *depth = depth.saturating_sub(count);
            if *depth == 0 {
                state.depth.remove(flow);
            }
        }
        state.total = state.total.saturating_sub(count);
    }

    /// Counts runs adopted from a cluster node that stopped (already in the store) and wakes
    /// the workers.
    pub(super) fn adopt(&self, runs: &BTreeMap<String, usize>) {
        let mut state = self.state();
        for (flow, count) in runs {
            *state.depth.entry(flow.clone()).or_insert(0) += count;
            state.total += count;
        }
        drop(state);
        self.wake_all();
    }

    /// After this node missed events (an adoption among them, perhaps): counts every flow at
    /// least as deep as the store holds this node's runs of it, and wakes the workers, so adopted
    /// work never waits for a restart. Never lowers a count: a run reserved but not yet stored,
    /// or one whose removal is stored but not yet released, is counted right in memory.
    ///
    /// # Errors
    /// A storage failure (the depth is then left as it was).
    pub(super) fn resync(&self) -> Result<()> {
        let stored = self.store.queue_depths()?;
        let mut state = self.state();
        for (flow, count) in stored {
            let depth = state.depth.entry(flow).or_insert(0);
            let raised = count.saturating_sub(*depth);
            *depth += raised;
            state.total += raised;
        }
        drop(state);
        self.wake_all();
        Ok(())
    }

    fn wake_all(&self) {
        for _ in 0..self.settings.workers.max(1) {
            self.signal.notify_one();
        }
    }

    /// Wakes a worker.
    pub(super) fn wake(&self) {
        self.signal.notify_one();
    }

    /// Queues a run of `flow` (a cron firing) durably; returns its id once durable.
    ///
    /// # Errors
    /// [`DomainError::QueueFull`], or a storage failure.
    pub async fn enqueue(&self, flow: &str, records: Vec<serde_json::Value>, trigger: TriggerKind) -> Result<u64> {
        self.reserve(flow)?;
        let run = QueuedRun {
            id: 0,
            flow: flow.into(),
            records,
            headers: Vec::new(),
            trigger,
            received_at: now(),
            node: None,
            accepted: None,
        };
        let queued = self.store.next_id().map_err(DomainError::from).and_then(|id| {
            let run = QueuedRun { id, ..run };
            self.store.apply(Change::new().with(Op::Enqueue(run)))?;
            Ok(id)
        });
        let id = match queued {
            Ok(id) => id,
            Err(err) => {
                self.release(flow, 1);
                return Err(err);
            }
        };
        self.store.durable().await?;
        self.wake();
        Ok(id)
    }

    /// Takes the next batch of queued work, if any flow has work no worker holds.
    fn claim(&self) -> Result<Option<Claim>> {
        let mut state = self.state();
        let now = Instant::now();
        state.paused_until.retain(|_, until| *until > now);
        // Round robin: flows after the one served last, then the rest.
        let flows: Vec<String> = {
            let after = state.last_flow.clone().unwrap_or_default();
            let (later, earlier): (Vec<&String>, Vec<&String>) = state.depth.keys().partition(|f| **f > after);
            later.into_iter().chain(earlier).cloned().collect()
        };
        for flow in flows {
            if state.paused_until.contains_key(&flow) || state.ordered_busy.contains(&flow) {
                continue;
            }
            let ordered = self.store.flow(&flow)?.is_some_and(|f| f.ordered);
            let ids = self.store.queued_ids(&flow, None, state.claimed.len() + self.settings.batch_records.max(1))?;
            let mut runs: Vec<QueuedRun> = Vec::new();
            let mut records = 0;
            for id in ids {
                if state.claimed.contains(&id) {
                    if ordered || !runs.is_empty() {
                        break;
                    }
                    continue;
                }
                let Some(run) = self.store.queued_run(id)? else { continue };
                let fits = runs.first().is_none_or(|first: &QueuedRun| {
                    first.trigger == run.trigger
                        && !first.records.is_empty()
                        && !run.records.is_empty()
                        && records + run.records.len() <= self.settings.batch_records
                });
                if !fits {
                    break;
                }
                records += run.records.len();
                runs.push(run);
            }
            if runs.is_empty() {
                continue;
            }
            state.claimed.extend(runs.iter().map(|r| r.id));
            if ordered {
                state.ordered_busy.insert(flow.clone());
            }
            state.last_flow = Some(flow.clone());
            return Ok(Some(Claim { flow, ordered, runs }));
        }
        Ok(None)
    }

    /// Releases a claim; `dequeued` of its runs left the queue.
    fn unclaim(&self, claim: &Claim, dequeued: usize, pause: bool) {
        {
            let mut state = self.state();
            for run in &claim.runs {
                state.claimed.remove(&run.id);
            }
            if claim.ordered {
                state.ordered_busy.remove(&claim.flow);
            }
            if pause {
                state.paused_until.insert(claim.flow.clone(), Instant::now() + RETRY_PAUSE);
            }
        }
        if dequeued > 0 {
            self.release(&claim.flow, dequeued);
        }
    }

    /// Runs one claimed batch as one execution; the work leaves the queue with it.
    async fn run_claim(&self, claim: &Claim) {
        let ids: Vec<u64> = claim.runs.iter().map(|r| r.id).collect();
        let input = claim.runs.iter().flat_map(QueuedRun::input).collect();
        let trigger = claim.runs.first().map_or(TriggerKind::Webhook, |r| r.trigger);
        let request = RunRequest { trigger, from: None, queued: &ids, replaying: None };
        let all = claim.runs.len();
        match self.flows.run(&claim.flow, input, request).await {
            Ok(execution) if execution.status == ExecutionStatus::Failed && all > 1 => {
                // The batch failed as a whole (a `validate` step with `on_invalid: fail`): one
                // delivery must not take the others down with it. Its runs stayed queued; run
                // each on its own.
                tracing::warn!(flow = %claim.flow, execution = execution.id, runs = all, "a micro-batch failed; running its deliveries one by one");
                let (dequeued, pause) = self.run_one_by_one(claim).await;
                self.unclaim(claim, dequeued, pause);
            }
            Ok(_) => self.unclaim(claim, all, false),
            Err(err @ DomainError::PluginInactive { .. }) => {
                tracing::warn!(flow = %claim.flow, %err, "queued flow work waits for its plugins");
                self.unclaim(claim, 0, true);
            }
            Err(DomainError::Runtime(plugboard_runtime::Error::NotFound(what))) => {
                // It cannot run at all (the flow is gone): keep its records as dead letters.
                tracing::error!(flow = %claim.flow, %what, "queued flow work could not start; dead-lettered");
                let dead_lettered = self.dead_letter(claim, &what).await;
                self.unclaim(claim, if dead_lettered { all } else { 0 }, !dead_lettered);
            }
            Err(err) => {
                tracing::error!(flow = %claim.flow, %err, "queued flow work failed to run; it stays queued");
                self.unclaim(claim, 0, true);
            }
        }
    }

    /// Runs each queued run of `claim` as its own execution; answers how many left the queue and
    /// whether the flow should pause (a run could not run).
    async fn run_one_by_one(&self, claim: &Claim) -> (usize, bool) {
        let (mut dequeued, mut pause) = (0, false);
        for run in &claim.runs {
            let input = run.input().collect();
            let request =
                RunRequest { trigger: run.trigger, from: None, queued: std::slice::from_ref(&run.id), replaying: None };
            match self.flows.run(&claim.flow, input, request).await {
                Ok(_) => dequeued += 1,
                Err(err) => {
                    tracing::error!(flow = %claim.flow, queued = run.id, %err, "queued run failed to run; it stays queued");
                    pause = true;
                }
            }
        }
        (dequeued, pause)
    }

    async fn dead_letter(&self, claim: &Claim, what: &str) -> bool {
        let mut change = Change::new();
        for run in &claim.runs {
            for record in run.input() {
                let letter = DeadLetter {
                    step: String::new(),
                    attempts: 1,
                    error: ErrorReport::new(plugboard_runtime::ErrorCode::NotFound, what.to_string()),
                    reasons: Vec::new(),
                    logs: Vec::new(),
                    record: StoredRecord::from(&record),
                };
                change.push(Op::PutDeadLetter(Box::new(DeadLetterRecord::new(&claim.flow, 0, letter))));
            }
            change.push(Op::Dequeue { flow: claim.flow.clone(), id: run.id, execution: None });
        }
        let stored = self.store.apply(change);
        match stored {
            Ok(()) => self.store.durable().await.is_ok(),
            Err(err) => {
                tracing::error!(%err, "dead-lettering queued work");
                false
            }
        }
    }

    /// One worker: takes batches until `stop` turns true; a batch in flight finishes first.
    pub async fn work(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        while !*stop.borrow() {
            match self.claim() {
                Ok(Some(claim)) => {
                    self.run_claim(&claim).await;
                    // Another worker may be idle while more is queued.
                    self.wake();
                }
                Ok(None) => {
                    tokio::select! {
                        () = self.signal.notified() => {},
                        () = tokio::time::sleep(Duration::from_millis(250)) => {},
                        changed = stop.changed() => if changed.is_err() { return },
                    }
                }
                Err(err) => {
                    tracing::error!(%err, "reading the work queue");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
}
