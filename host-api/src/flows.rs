//! Flows in the control plane: definitions validated against the installed plugins, manual runs
//! with pinned plugin versions, persisted executions and a persisted dead-letter queue with replay.
//!
//! An execution pins the active version of every plugin the flow uses when it starts; activating a
//! new version meanwhile does not touch it. The execution and its dead letters are flushed before
//! the run is answered.

use crate::api::error::ApiError;
use crate::registry::{Registry, now};
use crate::store::{DeadLetterRecord, ExecutionRecord, QueuedRun};
use plugboard_runtime::flow::{FlowDefinition, FlowRun, RunOutcome};
use plugboard_runtime::{Batch, Error, Kind, Plugin, Record};
use std::collections::BTreeMap;
use std::sync::Arc;

impl Registry {
    fn kind_of(&self, name: &str) -> Option<Kind> {
        match self.active(name) {
            Some(plugin) => Some(plugin.manifest().kind),
            None => self.versions(name).ok()?.last().map(|v| v.manifest.kind),
        }
    }

    /// Validates and saves a flow; `replace` allows overwriting an existing one.
    pub async fn put_flow(&self, flow: FlowDefinition, replace: bool, actor: &str) -> Result<(), ApiError> {
        flow.validate(|name| self.kind_of(name))?;
        for pipeline in std::iter::once(&flow.main).chain(flow.branches.values()) {
            for step in &pipeline.steps {
                if let plugboard_runtime::flow::Step::Route { routes, .. } = step {
                    for rule in routes {
                        rule.when.check().map_err(|reason| Error::FlowInvalid {
                            reason: format!("step `{}`: {reason}", step.id()),
                        })?;
                    }
                }
            }
        }
        let exists = self.store.flow(&flow.name)?.is_some();
        if exists && !replace {
            return Err(
                Error::Conflict(format!("flow {} exists; PUT /v1/flows/{} replaces it", flow.name, flow.name)).into()
            );
        }
        if !exists && replace {
            return Err(Error::NotFound(format!("flow {}", flow.name)).into());
        }
        self.store.put_flow(&flow)?;
        self.store.audit(crate::store::AuditEntry {
            id: 0,
            at: now(),
            actor: actor.into(),
            action: if replace { "flow-update" } else { "flow-create" }.into(),
            target: flow.name.clone(),
            key_id: None,
            detail: format!("plugins {:?}", flow.plugins()),
        })?;
        self.store.flush().await?;
        Ok(())
    }

    /// The active plugins `flow` uses, pinned for one execution.
    fn pin(&self, flow: &FlowDefinition) -> Result<BTreeMap<String, Plugin>, ApiError> {
        flow.plugins()
            .into_iter()
            .map(|name| match self.active(&name) {
                Some(plugin) => Ok((name, plugin)),
                None => {
                    Err(Error::Conflict(format!("flow {} uses plugin {name}, which has no active version", flow.name))
                        .into())
                }
            })
            .collect()
    }

    /// Runs `flow_name` on `input` (or, with `from`, replays `input` from that step), persisting
    /// the execution and its dead letters before returning.
    pub async fn run_flow(
        &self,
        flow_name: &str,
        input: Batch,
        from: Option<&str>,
        trigger: &str,
    ) -> Result<ExecutionRecord, ApiError> {
        let flow = self.store.flow(flow_name)?.ok_or_else(|| Error::NotFound(format!("flow {flow_name}")))?;
        let plugins = self.pin(&flow)?;
        let mut execution = ExecutionRecord {
            id: self.store.next_id()?,
            flow: flow.name.clone(),
            status: "running".into(),
            trigger: trigger.into(),
            started_at: now(),
            finished_at: None,
            plugin_versions: plugins.iter().map(|(n, p)| (n.clone(), p.manifest().version.to_string())).collect(),
            records_in: input.len() as u64,
            outcome: RunOutcome::default(),
        };
        self.store.put_execution(&execution)?;
        let run = FlowRun::new(flow.clone(), plugins);
        // A run that brings no records reads them from the flow's source, if it has one; its cursor
        // advances only after the execution is stored (below), so sinks have acknowledged.
        let mut next_cursor = None;
        if from.is_none() && input.is_empty() && flow.source.is_some() {
            let cursor = self.store.cursor(&flow.name)?;
            match run.run_source(cursor).await {
                Ok((outcome, cursor)) => {
                    execution.records_in = outcome.steps.first().map_or(0, |s| s.records_out);
                    execution.outcome = outcome;
                    next_cursor = Some(cursor);
                }
                Err(err) => execution.outcome.failure = Some((&err).into()),
            }
            return self.finish(execution, next_cursor).await;
        }
        execution.outcome = match from {
            Some(step) => match run.run_from(step, input).await {
                Ok(outcome) => outcome,
                Err(err) => {
                    execution.status = "failed".into();
                    execution.finished_at = Some(now());
                    execution.outcome.failure = Some((&err).into());
                    self.store.put_execution(&execution)?;
                    self.store.flush().await?;
                    return Err(err.into());
                }
            },
            None => run.run(input).await,
        };
        self.finish(execution, None).await
    }

    /// Settles an execution's status, stores it with its dead letters (and the source's next
    /// cursor), and flushes.
    async fn finish(
        &self,
        mut execution: ExecutionRecord,
        next_cursor: Option<Option<String>>,
    ) -> Result<ExecutionRecord, ApiError> {
        execution.finished_at = Some(now());
        execution.status = match (&execution.outcome.failure, execution.outcome.dead_letters.is_empty()) {
            (Some(_), _) => "failed",
            (None, true) => "succeeded",
            (None, false) => "completed-with-dead-letters",
        }
        .into();
        for letter in &execution.outcome.dead_letters {
            self.store.put_dead_letter(&DeadLetterRecord {
                id: self.store.next_id()?,
                flow: execution.flow.clone(),
                execution: execution.id,
                at: now(),
                letter: letter.clone(),
            })?;
        }
        self.store.put_execution(&execution)?;
        // A source that says "nothing further for now" (no next cursor) is read again from the same
        // place next time, which is how append-only paged sources pick up new records.
        if let Some(Some(cursor)) = next_cursor
            && execution.outcome.failure.is_none()
        {
            self.store.put_cursor(&execution.flow, Some(&cursor))?;
        }
        self.store.flush().await?;
        Ok(execution)
    }

    /// Replays dead letters of `flow` (all, or those in `ids`) from the step each failed at;
    /// replayed letters leave the queue (those that fail again come back as new letters).
    pub async fn replay(&self, flow: &str, ids: Option<&[u64]>) -> Result<Vec<ExecutionRecord>, ApiError> {
        let letters: Vec<DeadLetterRecord> =
            self.store.dead_letters(flow)?.into_iter().filter(|l| ids.is_none_or(|ids| ids.contains(&l.id))).collect();
        let mut by_step: BTreeMap<String, Vec<DeadLetterRecord>> = BTreeMap::new();
        for letter in letters {
            by_step.entry(letter.letter.step.clone()).or_default().push(letter);
        }
        let mut executions = Vec::new();
        for (step, letters) in by_step {
            let batch: Batch = letters.iter().map(|l| Record::from(&l.letter.record)).collect();
            // An empty step means the work never started (see `drain_queue`): replay it whole.
            let from = (!step.is_empty()).then_some(step.as_str());
            // Letters leave the queue only once the replay ran; records failing again come back as
            // new letters of that execution.
            let execution = self.run_flow(flow, batch, from, "replay").await?;
            for letter in &letters {
                self.store.remove_dead_letter(flow, letter.id)?;
            }
            self.store.flush().await?;
            executions.push(execution);
        }
        Ok(executions)
    }
}

impl Registry {
    /// Queues a run of `flow` (a cron firing) durably; returns the queue id once it is flushed.
    /// Webhook deliveries go through [`Registry::accept_delivery`], which also catches repeats.
    pub async fn enqueue(&self, flow: &str, records: Vec<serde_json::Value>, trigger: &str) -> Result<u64, ApiError> {
        let run = QueuedRun {
            id: self.store.next_id()?,
            flow: flow.into(),
            records,
            trigger: trigger.into(),
            received_at: now(),
        };
        self.store.enqueue(&run)?;
        self.store.flush().await?;
        self.queue_signal.notify_one();
        Ok(run.id)
    }

    /// Runs queued work until none is left. Work is removed only after its execution is stored, so
    /// a crash in between runs it again (at least once).
    pub async fn drain_queue(&self) -> Result<usize, ApiError> {
        let mut done = 0;
        for run in self.store.queued()? {
            let input = run.records.iter().map(Record::json).collect();
            if let Err(err) = self.run_flow(&run.flow, input, None, &run.trigger).await {
                if err.runtime_code() == Some(plugboard_runtime::ErrorCode::Conflict) {
                    // A plugin of the flow has no active version right now: keep the work queued.
                    tracing::warn!(flow = %run.flow, queued = run.id, %err, "queued flow run waits for its plugins");
                    continue;
                }
                // It cannot run at all (the flow is gone): keep its records as dead letters.
                tracing::error!(flow = %run.flow, queued = run.id, %err, "queued flow run could not start; dead-lettered");
                for record in &run.records {
                    self.store.put_dead_letter(&DeadLetterRecord {
                        id: self.store.next_id()?,
                        flow: run.flow.clone(),
                        execution: 0,
                        at: now(),
                        letter: plugboard_runtime::flow::DeadLetter {
                            step: String::new(),
                            attempts: 1,
                            error: plugboard_runtime::flow::ErrorReport {
                                code: err.code().into(),
                                message: err.to_string(),
                            },
                            reasons: Vec::new(),
                            record: plugboard_runtime::flow::StoredRecord::from(&Record::json(record)),
                        },
                    })?;
                }
            }
            self.store.dequeue(run.id)?;
            self.store.flush().await?;
            done += 1;
        }
        Ok(done)
    }
}

impl Registry {
    /// Queues a run of every cron flow that is due, once per due time; skips a due run while the
    /// previous one of that flow is still queued (unless the trigger allows overlap).
    pub async fn fire_due_cron(&self) -> Result<(), ApiError> {
        let now = chrono::Utc::now();
        let flows = self.store.all_flows()?;
        let queued: Vec<String> = self.store.queued()?.into_iter().map(|q| q.flow).collect();
        for flow in flows {
            for (index, schedule) in flow.cron_schedules().into_iter().enumerate() {
                let key = format!("{}#{index}", flow.name);
                let due = {
                    let mut next = self.cron_next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let at = next.entry(key.clone()).or_insert_with(|| schedule.next_after(now));
                    match *at {
                        Some(time) if time <= now => {
                            *at = schedule.next_after(now);
                            true
                        }
                        _ => false,
                    }
                };
                if !due {
                    continue;
                }
                if !schedule.allow_overlap && queued.contains(&flow.name) {
                    tracing::info!(flow = %flow.name, "cron run skipped: the previous run has not finished");
                    continue;
                }
                self.enqueue(&flow.name, Vec::new(), "cron").await?;
            }
        }
        Ok(())
    }
}

/// Starts the background worker: queues due cron runs, drains queued flow work (work acknowledged
/// before a crash first) whenever it arrives, and persists pending usage counters, every 250 ms;
/// once a minute it forgets expired webhook delivery marks.
pub fn start_worker(registry: Arc<Registry>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_sweep = std::time::Instant::now();
        loop {
            registry.persist_usage();
            if last_sweep.elapsed() >= std::time::Duration::from_secs(60) {
                registry.sweep_delivery_marks();
                last_sweep = std::time::Instant::now();
            }
            if let Err(err) = registry.fire_due_cron().await {
                tracing::error!(%err, "cron triggers");
            }
            if let Err(err) = registry.drain_queue().await {
                tracing::error!(%err, "flow worker");
            }
            tokio::select! {
                () = registry.queue_signal.notified() => {},
                () = tokio::time::sleep(std::time::Duration::from_millis(250)) => {},
            }
        }
    })
}
