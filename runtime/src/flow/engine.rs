//! Running a flow: batches move through the steps, retryable failures are retried with backoff,
//! and records that still fail become dead letters carrying the error, step, attempts and record.
//!
//! The caller pins the plugin versions (a map from name to loaded [`Plugin`]) when the execution
//! starts, so activating a new version never changes an execution in progress. Delivery to sinks
//! is at least once: a sink call that fails after the outside system took the batch is retried.

use super::definition::{FlowDefinition, OnInvalid, Pipeline, RetryPolicy, Step};
use super::report::{
    DeadLetter, ErrorReport, RunOutcome, STEP_LOG_LINES, StepReport, StoredRecord, last_lines, letter_logs,
};
use crate::error::Error;
use crate::host::logs::LogEntry;
use crate::plugin::Plugin;
use crate::record::{Batch, PluginError};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Runs each part of an execution on its own task, so CPU-bound guests use every core and none
/// spends another's deadline waiting for its turn; answers their outcomes in the parts' order.
/// Dropping the returned future aborts the parts still running.
async fn in_parallel<F>(parts: impl IntoIterator<Item = F>) -> Vec<RunOutcome>
where
    F: Future<Output = RunOutcome> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    let mut outcomes = Vec::new();
    for (index, part) in parts.into_iter().enumerate() {
        tasks.spawn(async move { (index, part.await) });
        outcomes.push(None);
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, outcome)) => outcomes[index] = Some(outcome),
            Err(err) => tracing::error!(%err, "a part of a flow execution panicked"),
        }
    }
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| RunOutcome {
                failure: Some(ErrorReport::new(
                    crate::error::ErrorCode::Internal,
                    "internal error; see the server log",
                )),
                ..RunOutcome::default()
            })
        })
        .collect()
}

/// Whether an error is worth retrying.
fn retryable(err: &Error) -> bool {
    // A refused key-value commit may have met a concurrent writer that frees room again.
    matches!(
        err,
        Error::Guest(PluginError::Retryable(_) | PluginError::RetryAfter(_))
            | Error::Timeout { .. }
            | Error::Overloaded(_)
            | Error::KeyValueQuota(_)
    )
}

/// The least wait a failure asked for before its retry.
fn asked_delay(err: &Error) -> Option<std::time::Duration> {
    match err {
        Error::Guest(PluginError::RetryAfter(retry)) => Some(std::time::Duration::from_millis(retry.delay_ms)),
        _ => None,
    }
}

fn jitter() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs one flow with pinned plugins. Cheap to clone: the definition and plugins are shared.
#[derive(Clone)]
pub struct FlowRun {
    flow: Arc<FlowDefinition>,
    plugins: Arc<BTreeMap<String, Plugin>>,
    /// Set when the execution fails as a whole, so concurrently running branches stop too.
    failed: Arc<AtomicBool>,
}

type Boxed<'b> = Pin<Box<dyn Future<Output = ()> + Send + 'b>>;

impl FlowRun {
    /// A run of `flow` with `plugins` (every plugin the flow names, pinned by the caller).
    pub fn new(flow: FlowDefinition, plugins: BTreeMap<String, Plugin>) -> FlowRun {
        FlowRun { flow: Arc::new(flow), plugins: Arc::new(plugins), failed: Arc::default() }
    }

    /// The same flow and plugins, for one more execution (its own failure state).
    fn execution(&self) -> FlowRun {
        FlowRun { failed: Arc::default(), ..self.clone() }
    }

    /// Runs `input` through the whole flow.
    pub async fn run(&self, input: Batch) -> RunOutcome {
        let run = self.execution();
        let mut outcome = RunOutcome::default();
        run.pipeline(&run.flow.main, input, 0, &mut outcome).await;
        outcome
    }

    /// Reads the next page from the flow's source at `cursor` and runs it through the flow. The
    /// answered cursor is the source's `next-cursor`, where the following run starts; the caller
    /// persists it only once this run's results are stored, so a crash re-reads the page (at least
    /// once). A read that fails is the source step's failure: the outcome has the source's report
    /// (error and logs) and `failure` set, and no cursor.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the flow has no source.
    pub async fn run_source(&self, cursor: Option<String>) -> Result<(RunOutcome, Option<String>), Error> {
        let run = self.execution();
        let source =
            run.flow.source.as_ref().ok_or_else(|| Error::NotFound(format!("a source in flow `{}`", run.flow.name)))?;
        let started = Instant::now();
        let attempted = match run.plugin(&source.plugin) {
            Ok(plugin) => {
                run.with_retry(&RetryPolicy::default(), || plugin.read(cursor.clone(), source.max_records)).await
            }
            Err(err) => Attempted::failed(err),
        };
        let mut report = StepReport::new(&source.id, 0, attempted.attempts, started, attempted.fuel);
        report.logs = last_lines(&attempted.logs, STEP_LOG_LINES);
        let mut outcome = RunOutcome::default();
        match attempted.result {
            Ok(page) => {
                report.records_out = page.records.len() as u64;
                outcome.steps.push(report);
                run.pipeline(&run.flow.main, page.records, 0, &mut outcome).await;
                Ok((outcome, page.next_cursor))
            }
            Err(err) => {
                report.error = Some(ErrorReport::from(&err));
                outcome.failure = report.error.clone();
                outcome.steps.push(report);
                Ok((outcome, None))
            }
        }
    }

    /// Replays `input` from step `step` (a step or sink id), as a dead-letter replay does.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no step has that id.
    pub async fn run_from(&self, step: &str, input: Batch) -> Result<RunOutcome, Error> {
        let run = self.execution();
        let mut outcome = RunOutcome::default();
        for pipeline in std::iter::once(&run.flow.main).chain(run.flow.branches.values()) {
            if let Some(index) = pipeline.steps.iter().position(|s| s.id() == step) {
                run.pipeline(pipeline, input, index, &mut outcome).await;
                return Ok(outcome);
            }
            if let Some(sink) = pipeline.sinks.iter().find(|s| s.id == step) {
                run.sink(&sink.id, &sink.plugin, &sink.retry, input, &mut outcome).await;
                return Ok(outcome);
            }
        }
        Err(Error::NotFound(format!("step `{step}` in flow `{}`", run.flow.name)))
    }

    /// Whether the execution has stopped: this part failed, or another part failed it as a whole.
    fn stopped(&self, outcome: &RunOutcome) -> bool {
        outcome.failure.is_some() || self.failed.load(Ordering::Relaxed)
    }

    fn plugin(&self, name: &str) -> Result<&Plugin, Error> {
        self.plugins.get(name).ok_or_else(|| Error::NotFound(format!("plugin `{name}` is not active")))
    }

    fn pipeline<'b>(
        &'b self,
        pipeline: &'b Pipeline,
        mut batch: Batch,
        start: usize,
        outcome: &'b mut RunOutcome,
    ) -> Boxed<'b> {
        Box::pin(async move {
            for step in &pipeline.steps[start.min(pipeline.steps.len())..] {
                if batch.is_empty() || self.stopped(outcome) {
                    return;
                }
                match step {
                    Step::Transform { id, plugin, retry } => {
                        match self.transform(id, plugin, retry, batch, outcome).await {
                            Some(out) => batch = out,
                            None => return,
                        }
                    }
                    Step::Validate { id, plugin, on_invalid } => {
                        match self.validate(id, plugin, *on_invalid, batch, outcome).await {
                            Some(out) => batch = out,
                            None => return,
                        }
                    }
                    Step::Route { id, routes, default } => {
                        let mut groups: BTreeMap<&str, Batch> = BTreeMap::new();
                        let records_in = batch.len();
                        let started = Instant::now();
                        // Paths parsed once per batch; a condition that does not compile (a
                        // flow's validation refuses those) matches nothing.
                        let compiled: Vec<_> = routes.iter().map(|r| (r.when.compile().ok(), r.to.as_str())).collect();
                        for record in batch {
                            let json = record.to_json().unwrap_or(serde_json::Value::Null);
                            let target = {
                                let header = super::condition::header_of(&record);
                                compiled
                                    .iter()
                                    .find(|(when, _)| when.as_ref().is_some_and(|when| when.matches(&json, &header)))
                                    .map(|(_, to)| *to)
                                    .or(default.as_deref())
                            };
                            match target {
                                Some(branch) => groups.entry(branch).or_default().push(record),
                                None => outcome.dropped += 1,
                            }
                        }
                        let mut report = StepReport::new(id, records_in, 1, started, 0);
                        report.records_out = groups.values().map(|b| b.len() as u64).sum();
                        outcome.steps.push(report);
                        self.branches(groups.into_iter().map(|(b, r)| (b.to_string(), r)).collect(), outcome).await;
                        return;
                    }
                    Step::FanOut { id, to } => {
                        let mut report = StepReport::new(id, batch.len(), 1, Instant::now(), 0);
                        report.records_out = (batch.len() * to.len()) as u64;
                        outcome.steps.push(report);
                        self.branches(to.iter().map(|branch| (branch.clone(), batch.clone())).collect(), outcome).await;
                        return;
                    }
                }
            }
            if batch.is_empty() || self.stopped(outcome) {
                return;
            }
            let batch = Arc::new(batch);
            let writes = pipeline.sinks.iter().map(|sink| {
                let (run, sink, batch) = (self.clone(), sink.clone(), batch.clone());
                async move {
                    let mut part = RunOutcome::default();
                    run.sink(&sink.id, &sink.plugin, &sink.retry, Batch::clone(&batch), &mut part).await;
                    part
                }
            });
            for part in in_parallel(writes).await {
                outcome.absorb(part);
            }
        })
    }

    /// Runs branches in parallel, each on its own records, and merges what they did into
    /// `outcome` in branch order.
    async fn branches(&self, work: Vec<(String, Batch)>, outcome: &mut RunOutcome) {
        let runs =
            work.into_iter().filter(|(branch, _)| self.flow.branches.contains_key(branch)).map(|(branch, records)| {
                let run = self.clone();
                async move {
                    let mut part = RunOutcome::default();
                    if let Some(next) = run.flow.branches.get(&branch) {
                        run.pipeline(next, records, 0, &mut part).await;
                    }
                    part
                }
            });
        for part in in_parallel(runs).await {
            outcome.absorb(part);
        }
    }

    /// Calls `call` until it succeeds, fails for good, or the policy's attempts run out.
    async fn with_retry<T, F, Fut>(&self, retry: &RetryPolicy, mut call: F) -> Attempted<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = crate::invoke::Invocation<T>>,
    {
        let mut fuel = 0;
        let mut attempts = 1;
        let (mut retried, mut logs) = (Vec::new(), Vec::new());
        loop {
            let invocation = call().await;
            fuel += invocation.usage.fuel_consumed;
            logs.extend(invocation.logs.entries);
            match invocation.outcome {
                Err(err) if retryable(&err) && attempts < retry.max_attempts.max(1) => {
                    retried.push(ErrorReport::from(&err).without_backtrace());
                    attempts += 1;
                    tokio::time::sleep(retry.wait(attempts, jitter(), asked_delay(&err))).await;
                }
                result => return Attempted { result, attempts, fuel, logs, retried },
            }
        }
    }

    fn dead_letter_all(
        &self,
        step: &str,
        failed: &Attempted<impl Sized>,
        err: &Error,
        batch: &Batch,
        outcome: &mut RunOutcome,
    ) {
        let error = ErrorReport::from(err).without_backtrace();
        let logs = letter_logs(&failed.logs);
        // A retryable failure that outlasted its attempts (an outage) is not one delivery's
        // fault; running each delivery of a micro-batch again would only repeat it.
        if outcome.batch_failure.is_none() && !batch.is_empty() && !retryable(err) {
            outcome.batch_failure = Some(error.clone());
        }
        outcome.dead_letters.extend(batch.iter().map(|record| DeadLetter {
            step: step.to_string(),
            attempts: failed.attempts,
            error: error.clone(),
            reasons: Vec::new(),
            logs: logs.clone(),
            record: StoredRecord::from(record),
        }));
    }

    /// A transform step. A plugin's `invalid-input` naming some of the records dead-letters
    /// exactly those (with their reasons) and transforms the rest again, so one bad record does
    /// not take the others down; every other failure dead-letters the whole batch.
    async fn transform(
        &self,
        id: &str,
        plugin: &str,
        retry: &RetryPolicy,
        mut batch: Batch,
        outcome: &mut RunOutcome,
    ) -> Option<Batch> {
        let started = Instant::now();
        let mut report = StepReport::new(id, batch.len(), 0, started, 0);
        // Each round removes at least one record, so this bounds the rounds by the batch too.
        for round in 0.. {
            let mut attempted = match self.plugin(plugin) {
                Ok(p) => self.with_retry(retry, || p.transform(&batch)).await,
                Err(err) => Attempted::failed(err),
            };
            report.attempts += attempted.attempts;
            report.fuel += attempted.fuel;
            report.retried.append(&mut attempted.retried);
            report.logs.extend(attempted.logs.iter().cloned());
            report.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            let err = match attempted.take_result() {
                Ok(out) => {
                    report.records_out = out.len() as u64;
                    report.logs = last_lines(&report.logs, STEP_LOG_LINES);
                    outcome.steps.push(report);
                    return Some(out);
                }
                Err(err) => err,
            };
            report.error = Some(ErrorReport::from(&err));
            let rest = match &err {
                Error::Guest(PluginError::InvalidInput(issues)) if round < MAX_SPLIT_ROUNDS => {
                    split_invalid(id, &attempted, &err, issues, batch, outcome)
                }
                _ => Err(batch),
            };
            match rest {
                Ok(rest) if !rest.is_empty() => batch = rest,
                Ok(_) => break,
                Err(whole) => {
                    self.dead_letter_all(id, &attempted, &err, &whole, outcome);
                    break;
                }
            }
        }
        report.logs = last_lines(&report.logs, STEP_LOG_LINES);
        outcome.steps.push(report);
        None
    }

    async fn validate(
        &self,
        id: &str,
        plugin: &str,
        on_invalid: OnInvalid,
        batch: Batch,
        outcome: &mut RunOutcome,
    ) -> Option<Batch> {
        let started = Instant::now();
        let mut attempted = match self.plugin(plugin) {
            Ok(p) => Attempted::once(p.transform(&batch).await),
            Err(err) => Attempted::failed(err),
        };
        let mut report = StepReport::new(id, batch.len(), 1, started, attempted.fuel);
        report.logs = last_lines(&attempted.logs, STEP_LOG_LINES);
        match attempted.take_result() {
            Ok(out) => {
                report.records_out = out.len() as u64;
                outcome.steps.push(report);
                Some(out)
            }
            Err(err @ Error::Guest(PluginError::InvalidInput(_))) => {
                let Error::Guest(PluginError::InvalidInput(issues)) = &err else { return None };
                report.error = Some(ErrorReport::from(&err));
                if on_invalid == OnInvalid::Fail {
                    self.failed.store(true, Ordering::Relaxed);
                    outcome.failure = Some(ErrorReport::from(&err));
                    outcome.steps.push(report);
                    return None;
                }
                let valid = split_invalid(id, &attempted, &err, issues, batch, outcome).unwrap_or_else(|b| b);
                report.records_out = valid.len() as u64;
                outcome.steps.push(report);
                Some(valid)
            }
            Err(err) => {
                report.error = Some(ErrorReport::from(&err));
                outcome.steps.push(report);
                self.dead_letter_all(id, &attempted, &err, &batch, outcome);
                None
            }
        }
    }

    async fn sink(&self, id: &str, plugin: &str, retry: &RetryPolicy, batch: Batch, outcome: &mut RunOutcome) {
        let started = Instant::now();
        let mut attempted = match self.plugin(plugin) {
            Ok(p) => self.with_retry(retry, || p.write(&batch)).await,
            Err(err) => Attempted::failed(err),
        };
        let mut report = StepReport::new(id, batch.len(), attempted.attempts, started, attempted.fuel);
        report.logs = last_lines(&attempted.logs, STEP_LOG_LINES);
        report.retried = std::mem::take(&mut attempted.retried);
        match attempted.take_result() {
            Ok(written) => {
                report.records_out = u64::from(written.accepted);
                outcome.delivered += u64::from(written.accepted);
                if written.failed > 0 {
                    // The sink cannot say which records it rejected: keep the whole batch (at least
                    // once; the accepted ones may be delivered again on replay).
                    let error = ErrorReport::new(
                        crate::error::ErrorCode::GuestError,
                        format!("the sink rejected {} of {} records", written.failed, batch.len()),
                    );
                    report.error = Some(error.clone());
                    if outcome.batch_failure.is_none() {
                        outcome.batch_failure = Some(error.clone());
                    }
                    let logs = letter_logs(&attempted.logs);
                    outcome.dead_letters.extend(batch.iter().map(|record| DeadLetter {
                        step: id.to_string(),
                        attempts: attempted.attempts,
                        error: error.clone(),
                        reasons: Vec::new(),
                        logs: logs.clone(),
                        record: StoredRecord::from(record),
                    }));
                }
            }
            Err(err) => {
                report.error = Some(ErrorReport::from(&err));
                self.dead_letter_all(id, &attempted, &err, &batch, outcome);
            }
        }
        outcome.steps.push(report);
    }
}

/// Most times a transform step runs again on the records its plugin did not name invalid.
const MAX_SPLIT_ROUNDS: usize = 8;

/// Dead-letters the records `issues` names (each with its reasons) and answers the others, in
/// order; answers the whole batch back (`Err`) when the issues name none of its records, so the
/// caller fails it as one.
fn split_invalid<T>(
    step: &str,
    failed: &Attempted<T>,
    err: &Error,
    issues: &[crate::record::RecordIssue],
    batch: Batch,
    outcome: &mut RunOutcome,
) -> Result<Batch, Batch> {
    if !issues.iter().any(|issue| (issue.index as usize) < batch.len()) {
        return Err(batch);
    }
    let error = ErrorReport::from(err).without_backtrace();
    let logs = letter_logs(&failed.logs);
    let mut valid = Vec::with_capacity(batch.len());
    for (index, record) in batch.into_iter().enumerate() {
        match issues.iter().find(|issue| issue.index as usize == index) {
            Some(issue) => outcome.dead_letters.push(DeadLetter {
                step: step.to_string(),
                attempts: failed.attempts,
                error: error.clone(),
                reasons: issue.reasons.clone(),
                logs: logs.clone(),
                record: StoredRecord::from(&record),
            }),
            None => valid.push(record),
        }
    }
    Ok(valid)
}

/// What calling one step's plugin came to, retries included: the last attempt's result and logs.
struct Attempted<T> {
    result: Result<T, Error>,
    attempts: u32,
    /// Fuel over all attempts.
    fuel: u64,
    /// What every attempt logged, in order.
    logs: Vec<LogEntry>,
    /// The errors of the attempts that were retried, in order.
    retried: Vec<ErrorReport>,
}

impl<T> Attempted<T> {
    /// One attempt, not retried.
    fn once(invocation: crate::invoke::Invocation<T>) -> Attempted<T> {
        let fuel = invocation.usage.fuel_consumed;
        Attempted { result: invocation.outcome, attempts: 1, fuel, logs: invocation.logs.entries, retried: Vec::new() }
    }

    /// A step that could not call its plugin at all.
    fn failed(err: Error) -> Attempted<T> {
        Attempted { result: Err(err), attempts: 1, fuel: 0, logs: Vec::new(), retried: Vec::new() }
    }

    /// The result, leaving the attempt's counts and logs for the report.
    fn take_result(&mut self) -> Result<T, Error> {
        std::mem::replace(&mut self.result, Err(Error::internal("result already taken")))
    }
}
