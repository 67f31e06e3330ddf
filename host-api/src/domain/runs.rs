//! Running flows: manual runs, queued runs and dead-letter replays.
//!
//! An execution pins the active version of every plugin the flow uses when it starts; activating
//! a new version meanwhile does not touch it. When it ends, one [`Change`] stores the execution,
//! its dead letters, the source's next cursor and the removal of the queued work it ran, so a
//! crash either keeps all of it or none (and the queued work runs again: at least once). The
//! plugins' key-value writes are staged for the whole execution and committed right after that
//! change, so work that runs again never finds the state its first attempt wrote. The run is
//! answered only once both are durable.

use super::{DomainError, Flows, Result};
use crate::store::{
    AuditAction, AuditEntry, Change, DeadLetterRecord, ExecutionRecord, ExecutionStatus, INLINE_DEAD_LETTERS, Op,
    PageRequest, TriggerKind, now,
};
use plugboard_runtime::flow::{ErrorReport, FlowDefinition, FlowRun, RunOutcome};
use plugboard_runtime::{Batch, ErrorCode, Plugin, Record, StagedKeyValue};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Dead letters replayed per step group and page.
const REPLAY_PAGE: usize = 500;

/// What a run is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct RunRequest<'a> {
    /// What started it.
    pub trigger: TriggerKind,
    /// Start at this step (a replay) instead of the beginning.
    pub from: Option<&'a str>,
    /// The queued runs it carries, removed from the queue in the change that stores it.
    pub queued: &'a [u64],
    /// The dead letters it replays: they leave the queue, and the replay is audited, in the
    /// change that stores its execution.
    pub replaying: Option<Replaying<'a>>,
}

/// Dead letters a run replays, and who asked.
#[derive(Debug, Clone, Copy)]
pub struct Replaying<'a> {
    /// Their ids.
    pub letters: &'a [u64],
    /// The caller, for the audit log.
    pub actor: &'a str,
}

impl Replaying<'_> {
    /// The audit entry of this replay as `execution`.
    fn audit(&self, flow: &str, execution: u64, failed: Option<&str>) -> AuditEntry {
        let letters: Vec<String> = self.letters.iter().map(u64::to_string).collect();
        let outcome = match failed {
            None => format!("as execution {execution}"),
            Some(error) => format!("failed as execution {execution} (the letters stay): {error}"),
        };
        AuditEntry::new(self.actor, AuditAction::DlqReplay, flow)
            .detail(format!("dead letters {} {outcome}", letters.join(", ")))
    }
}

impl Flows {
    /// The active plugins `flow` uses, pinned for one execution.
    fn pin(&self, flow: &FlowDefinition) -> Result<BTreeMap<String, Plugin>> {
        flow.plugins()
            .into_iter()
            .map(|name| match self.plugins.active(&name) {
                Some(plugin) => Ok((name, plugin)),
                None => Err(DomainError::PluginInactive { flow: flow.name.clone(), plugin: name }),
            })
            .collect()
    }

    /// Runs `flow_name` on `input`, storing the execution, its dead letters and the removal of
    /// the queued work it carries durably before returning.
    ///
    /// # Errors
    /// `not-found` for an unknown flow, [`DomainError::PluginInactive`], storage failures.
    pub async fn run(&self, flow_name: &str, input: Batch, request: RunRequest<'_>) -> Result<ExecutionRecord> {
        let flow = self.get(flow_name)?;
        let plugins = self.pin(&flow)?;
        let mut execution = ExecutionRecord {
            id: self.store.next_id()?,
            flow: flow.name.clone(),
            status: ExecutionStatus::Running,
            trigger: request.trigger,
            queued: request.queued.to_vec(),
            started_at: now(),
            finished_at: None,
            plugin_versions: plugins.iter().map(|(n, p)| (n.clone(), p.manifest().version.to_string())).collect(),
            records_in: input.len() as u64,
            dead_letter_count: 0,
            state_error: None,
            node: None,
            outcome: RunOutcome::default(),
        };
        self.store.apply(Change::new().with(Op::PutExecution(Box::new(execution.clone()))))?;
        // Key-value writes of the execution's plugins are staged and committed with its record
        // (see `finish`), so a crash before then re-runs the work over the state as it was.
        let staged = Arc::new(StagedKeyValue::new(self.plugins.runtime.config().key_value.clone()));
        let plugins = plugins.into_iter().map(|(name, plugin)| (name, plugin.with_key_value(staged.clone()))).collect();
        let run = FlowRun::new(flow.clone(), plugins);
        // A run that brings no records reads them from the flow's source, if it has one; its
        // cursor advances only in the change that stores the execution (sinks have acknowledged).
        if request.from.is_none() && input.is_empty() && flow.source.is_some() {
            let cursor = self.store.cursor(&flow.name)?;
            let mut next_cursor = None;
            match run.run_source(cursor).await {
                Ok((outcome, cursor)) => {
                    execution.records_in = outcome.steps.first().map_or(0, |s| s.records_out);
                    execution.outcome = outcome;
                    next_cursor = cursor;
                }
                // The flow has no source after all (it checked above): a failure of the run.
                Err(err) => execution.outcome.failure = Some((&err).into()),
            }
            self.record_steps(&flow, &execution.outcome);
            return self.finish(execution, next_cursor, request.replaying, &staged).await;
        }
        execution.outcome = match request.from {
            Some(step) => match run.run_from(step, input).await {
                Ok(outcome) => outcome,
                Err(err) => {
                    execution.status = ExecutionStatus::Failed;
                    execution.finished_at = Some(now());
                    execution.outcome.failure = Some((&err).into());
                    let mut change = Change::new();
                    if let Some(replaying) = request.replaying {
                        change.push(Op::Audit(replaying.audit(&flow.name, execution.id, Some(&err.to_string()))));
                    }
                    self.store.apply(change.with(Op::PutExecution(Box::new(execution))))?;
                    self.store.durable().await?;
                    return Err(err.into());
                }
            },
            None => run.run(input).await,
        };
        self.record_steps(&flow, &execution.outcome);
        if request.queued.len() > 1
            && let Some(error) = execution.outcome.batch_failure.take()
        {
            // A micro-batch of several deliveries that a step failed as a whole: none of its
            // records become dead letters here; the runs stay queued and the worker runs each
            // delivery on its own, so only the delivery at fault ends in the dead-letter queue.
            execution.outcome.dead_letters.clear();
            let message = format!(
                "{} (the micro-batch of {} deliveries runs again one by one)",
                error.message,
                request.queued.len()
            );
            execution.outcome.failure = Some(ErrorReport { message, ..error });
        }
        self.finish(execution, None, request.replaying, &staged).await
    }

    /// Counts every plugin step of `outcome` as an invocation of its plugin (usage totals and
    /// telemetry), as a direct invocation through the API is counted.
    fn record_steps(&self, flow: &FlowDefinition, outcome: &RunOutcome) {
        for step in &outcome.steps {
            if let Some(plugin) = flow.plugin_of(&step.step) {
                for retried in &step.retried {
                    self.plugins.record_retry(plugin, &retried.code);
                }
                let wall = std::time::Duration::from_secs_f64(step.duration_ms.max(0.0) / 1000.0);
                self.plugins.record_usage(plugin, step.fuel, wall, step.error.as_ref().map(|e| e.code.as_str()));
            }
        }
    }

    /// Settles an execution's status and stores it with its dead letters, the source's next
    /// cursor and the dequeueing of its queued work, in one change, then commits the key-value
    /// writes its plugins staged (unless it failed as a whole); waits until both are durable.
    ///
    /// The state is committed after the record, so a crash between the two can only lose state
    /// writes of a stored execution (a record may later pass a `dedupe` twice: at least once),
    /// never leave state written for work that will run again (which would drop its records).
    async fn finish(
        &self,
        mut execution: ExecutionRecord,
        next_cursor: Option<String>,
        replaying: Option<Replaying<'_>>,
        staged: &StagedKeyValue,
    ) -> Result<ExecutionRecord> {
        execution.finished_at = Some(now());
        execution.status = match (&execution.outcome.failure, execution.outcome.dead_letters.is_empty()) {
            (Some(_), _) => ExecutionStatus::Failed,
            (None, true) => ExecutionStatus::Succeeded,
            (None, false) => ExecutionStatus::CompletedWithDeadLetters,
        };
        let commit_state = execution.status != ExecutionStatus::Failed && !staged.is_empty();
        let mut change = Change::new();
        execution.dead_letter_count = execution.outcome.dead_letters.len() as u64;
        let inline = execution.outcome.dead_letters.iter().take(INLINE_DEAD_LETTERS).cloned().collect();
        for letter in std::mem::replace(&mut execution.outcome.dead_letters, inline) {
            change.push(Op::PutDeadLetter(Box::new(DeadLetterRecord::new(&execution.flow, execution.id, letter))));
        }
        // A source that says "nothing further for now" (no next cursor) is read again from the
        // same place next time, which is how append-only paged sources pick up new records.
        if let Some(cursor) = next_cursor
            && execution.outcome.failure.is_none()
        {
            change.push(Op::PutCursor { flow: execution.flow.clone(), cursor: Some(cursor) });
        }
        // A micro-batch that failed as a whole keeps its runs queued: the worker runs each on its
        // own, so one bad delivery does not drop the others (see `WorkQueue`).
        if execution.status != ExecutionStatus::Failed || execution.queued.len() <= 1 {
            for id in &execution.queued {
                change.push(Op::Dequeue { flow: execution.flow.clone(), id: *id, execution: Some(execution.id) });
            }
        }
        if let Some(replaying) = replaying {
            // A replay that failed as a whole made no new letters of its records: keep the old.
            let failure = execution.outcome.failure.as_ref().map(|failure| failure.message.clone());
            if failure.is_none() {
                for id in replaying.letters {
                    change.push(Op::RemoveDeadLetter { flow: execution.flow.clone(), id: *id });
                }
            }
            change.push(Op::Audit(replaying.audit(&execution.flow, execution.id, failure.as_deref())));
        }
        change.push(Op::PutExecution(Box::new(execution.clone())));
        self.store.apply(change)?;
        if commit_state {
            let refused = staged.commit_all(self.plugins.runtime.config().key_value_quota);
            if !refused.is_empty() {
                // Another execution took the room since these writes were staged (or, in a
                // cluster, the log could not take them): the refused plugins' writes are dropped
                // (the others' committed), and the execution says so — `key-value-quota` when the
                // quota refused them all, `internal` when storage failed.
                let each: Vec<String> = refused.iter().map(|(plugin, err)| format!("plugin {plugin}: {err}")).collect();
                let message = format!("key-value writes were not committed: {}", each.join("; "));
                tracing::warn!(flow = %execution.flow, execution = execution.id, %message);
                let quota = refused.iter().all(|(_, err)| matches!(err, plugboard_runtime::CommitError::Quota(_)));
                let code = if quota { ErrorCode::KeyValueQuota } else { ErrorCode::Internal };
                execution.state_error = Some(ErrorReport::new(code, message));
                self.store.apply(Change::new().with(Op::PutExecution(Box::new(execution.clone()))))?;
            }
        }
        self.store.durable().await?;
        Ok(execution)
    }

    /// The id of the newest dead letter of `flow` now (0: none). Ids grow with time in both
    /// stores (in cluster mode they come from the change log's sequence, not from this node's id
    /// block, so that block is no bound: letters another node stored since would be skipped).
    fn newest_dead_letter(&self, flow: &str) -> Result<u64> {
        let mut newest = 0;
        let mut cursor = None;
        loop {
            let page = self.store.dead_letters_page(flow, PageRequest::after(cursor, REPLAY_PAGE))?;
            newest = page.items.iter().map(|letter| letter.id).fold(newest, u64::max);
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok(newest);
            }
        }
    }

    /// Replays dead letters of `flow` (all, or those in `ids`) from the step each failed at;
    /// replayed letters leave the queue, and the replay is audited, in the change that stores the
    /// replay's execution (those that fail again come back as new letters of that execution). Letters that arrive while it
    /// runs are left for a later replay.
    ///
    /// # Errors
    /// `not-found` for an unknown flow; run failures.
    pub async fn replay(&self, flow: &str, ids: Option<&[u64]>, actor: &str) -> Result<Vec<ExecutionRecord>> {
        self.get(flow)?;
        let bound = self.newest_dead_letter(flow)?;
        let mut executions = Vec::new();
        let mut cursor = None;
        loop {
            let letters: Vec<DeadLetterRecord> = match ids {
                Some(ids) => ids
                    .iter()
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .filter_map(|id| self.store.dead_letter(flow, *id).transpose())
                    .collect::<std::result::Result<_, _>>()?,
                None => {
                    let page = self.store.dead_letters_page(flow, PageRequest::after(cursor, REPLAY_PAGE))?;
                    cursor = page.next_cursor;
                    page.items.into_iter().filter(|l| l.id <= bound).collect()
                }
            };
            let mut by_step: BTreeMap<String, Vec<DeadLetterRecord>> = BTreeMap::new();
            for letter in letters {
                by_step.entry(letter.letter.step.clone()).or_default().push(letter);
            }
            for (step, letters) in by_step {
                let batch: Batch = letters.iter().map(|l| Record::from(&l.letter.record)).collect();
                // An empty step means the work never started (see `WorkQueue`): replay it whole.
                let from = (!step.is_empty()).then_some(step.as_str());
                let ids: Vec<u64> = letters.iter().map(|l| l.id).collect();
                let replaying = Some(Replaying { letters: &ids, actor });
                let request = RunRequest { trigger: TriggerKind::Replay, from, queued: &[], replaying };
                executions.push(self.run(flow, batch, request).await?);
            }
            if ids.is_some() || cursor.is_none() {
                return Ok(executions);
            }
        }
    }
}
