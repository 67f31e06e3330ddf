//! Running a flow: batches move through the steps, retryable failures are retried with backoff,
//! and records that still fail become dead letters carrying the error, step, attempts and record.
//!
//! The caller pins the plugin versions (a map from name to loaded [`Plugin`]) when the execution
//! starts, so activating a new version never changes an execution in progress. Delivery to sinks
//! is at least once: a sink call that fails after the outside system took the batch is retried.

use super::definition::{FlowDefinition, OnInvalid, Pipeline, RetryPolicy, Step};
use crate::error::Error;
use crate::plugin::Plugin;
use crate::record::{Batch, PluginError, Record};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// An error as an execution records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// The stable code.
    pub code: String,
    /// The message.
    pub message: String,
}

impl From<&Error> for ErrorReport {
    /// Internal errors keep their detail out of reports (which API callers read); it is logged.
    fn from(err: &Error) -> ErrorReport {
        let message = match err {
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error in a flow step");
                "internal error; see the server log".to_string()
            }
            other => other.to_string(),
        };
        ErrorReport { code: err.code().as_str().to_string(), message }
    }
}

/// One step's part of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Step id.
    pub step: String,
    /// Records in.
    pub records_in: u64,
    /// Records out (delivered, for sinks).
    pub records_out: u64,
    /// Attempts made (retries included).
    pub attempts: u32,
    /// Wall time in milliseconds, retries and backoff included.
    pub duration_ms: f64,
    /// Fuel consumed.
    pub fuel: u64,
    /// The final error, if the step failed.
    pub error: Option<ErrorReport>,
}

impl StepReport {
    fn new(step: &str, records_in: usize, attempts: u32, started: Instant, fuel: u64) -> StepReport {
        StepReport {
            step: step.to_string(),
            records_in: records_in as u64,
            records_out: 0,
            attempts,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            fuel,
            error: None,
        }
    }
}

/// A record that could not be processed, kept for inspection and replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The step it failed at (replay restarts there).
    pub step: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why.
    pub error: ErrorReport,
    /// Record reasons from a validator, if any.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// The record as it entered the failed step.
    pub record: StoredRecord,
}

/// A record in a storable form: JSON value (or text, for a value that is not JSON), key, headers.
///
/// Records are JSON by convention; a value that is not JSON is kept as text and replayed as a JSON
/// string, so replay is exact only for JSON records (and UTF-8 keys and headers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// Key, as text.
    pub key: Option<String>,
    /// Value.
    pub value: serde_json::Value,
    /// Headers, as text.
    pub headers: BTreeMap<String, String>,
}

impl From<&Record> for StoredRecord {
    fn from(record: &Record) -> StoredRecord {
        StoredRecord {
            key: record.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
            value: record
                .to_json()
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&record.value).into_owned())),
            headers: record
                .headers
                .iter()
                .map(|h| (h.name.clone(), String::from_utf8_lossy(&h.value).into_owned()))
                .collect(),
        }
    }
}

impl From<&StoredRecord> for Record {
    fn from(stored: &StoredRecord) -> Record {
        let mut record = Record::json(&stored.value);
        record.key = stored.key.as_ref().map(|k| k.clone().into_bytes());
        for (name, value) in &stored.headers {
            record.headers.push(crate::record::Header { name: name.clone(), value: value.clone().into_bytes() });
        }
        record
    }
}

/// What one execution did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// Per-step reports: steps in order, parallel branches and sinks in the order they are named.
    pub steps: Vec<StepReport>,
    /// Records written to sinks and accepted, summed over sinks.
    pub delivered: u64,
    /// Records a route step matched to no branch.
    pub dropped: u64,
    /// Records that failed for good.
    pub dead_letters: Vec<DeadLetter>,
    /// Set when the execution failed as a whole (a validate step with `on_invalid: fail`).
    pub failure: Option<ErrorReport>,
}

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
                failure: Some(ErrorReport {
                    code: crate::error::ErrorCode::Internal.as_str().to_string(),
                    message: "internal error; see the server log".to_string(),
                }),
                ..RunOutcome::default()
            })
        })
        .collect()
}

impl RunOutcome {
    /// Adds what a concurrently run part of the same execution did.
    fn absorb(&mut self, part: RunOutcome) {
        self.steps.extend(part.steps);
        self.delivered += part.delivered;
        self.dropped += part.dropped;
        self.dead_letters.extend(part.dead_letters);
        if self.failure.is_none() {
            self.failure = part.failure;
        }
    }
}

/// Whether an error is worth retrying.
fn retryable(err: &Error) -> bool {
    matches!(err, Error::Guest(PluginError::Retryable(_)) | Error::Timeout { .. } | Error::Overloaded(_))
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
    /// outcome's `next_cursor` is where the following run starts; the caller persists it only once
    /// this run's results are stored, so a crash re-reads the page (at least once).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the flow has no source; the source's own error when the read fails.
    pub async fn run_source(&self, cursor: Option<String>) -> Result<(RunOutcome, Option<String>), Error> {
        let run = self.execution();
        let source =
            run.flow.source.as_ref().ok_or_else(|| Error::NotFound(format!("a source in flow `{}`", run.flow.name)))?;
        let started = Instant::now();
        let plugin = run.plugin(&source.plugin)?;
        let (result, attempts, fuel) =
            run.with_retry(&RetryPolicy::default(), || plugin.read(cursor.clone(), source.max_records)).await;
        let page = result?;
        let mut report = StepReport::new(&source.id, 0, attempts, started, fuel);
        report.records_out = page.records.len() as u64;
        let mut outcome = RunOutcome::default();
        outcome.steps.push(report);
        run.pipeline(&run.flow.main, page.records, 0, &mut outcome).await;
        Ok((outcome, page.next_cursor))
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
                        for record in batch {
                            let json = record.to_json().unwrap_or(serde_json::Value::Null);
                            let target = routes
                                .iter()
                                .find(|r| r.when.matches(&record, &json))
                                .map(|r| r.to.as_str())
                                .or(default.as_deref());
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
    async fn with_retry<T, F, Fut>(&self, retry: &RetryPolicy, mut call: F) -> (Result<T, Error>, u32, u64)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = crate::invoke::Invocation<T>>,
    {
        let mut fuel = 0;
        let mut attempt = 1;
        loop {
            let invocation = call().await;
            fuel += invocation.usage.fuel_consumed;
            match invocation.outcome {
                Err(err) if retryable(&err) && attempt < retry.max_attempts.max(1) => {
                    attempt += 1;
                    tokio::time::sleep(retry.backoff(attempt, jitter())).await;
                }
                outcome => return (outcome, attempt, fuel),
            }
        }
    }

    fn dead_letter_all(&self, step: &str, attempts: u32, err: &Error, batch: &Batch, outcome: &mut RunOutcome) {
        let error = ErrorReport::from(err);
        outcome.dead_letters.extend(batch.iter().map(|record| DeadLetter {
            step: step.to_string(),
            attempts,
            error: error.clone(),
            reasons: Vec::new(),
            record: StoredRecord::from(record),
        }));
    }

    async fn transform(
        &self,
        id: &str,
        plugin: &str,
        retry: &RetryPolicy,
        batch: Batch,
        outcome: &mut RunOutcome,
    ) -> Option<Batch> {
        let started = Instant::now();
        let (result, attempts, fuel) = match self.plugin(plugin) {
            Ok(p) => self.with_retry(retry, || p.transform(&batch)).await,
            Err(err) => (Err(err), 1, 0),
        };
        let mut report = StepReport::new(id, batch.len(), attempts, started, fuel);
        match result {
            Ok(out) => {
                report.records_out = out.len() as u64;
                outcome.steps.push(report);
                Some(out)
            }
            Err(err) => {
                report.error = Some(ErrorReport::from(&err));
                outcome.steps.push(report);
                self.dead_letter_all(id, attempts, &err, &batch, outcome);
                None
            }
        }
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
        let invocation = match self.plugin(plugin) {
            Ok(p) => p.transform(&batch).await,
            Err(err) => {
                crate::invoke::Invocation { outcome: Err(err), usage: Default::default(), logs: Default::default() }
            }
        };
        let mut report = StepReport::new(id, batch.len(), 1, started, invocation.usage.fuel_consumed);
        match invocation.outcome {
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
                let error = ErrorReport::from(&err);
                let mut valid = Vec::with_capacity(batch.len());
                for (index, record) in batch.into_iter().enumerate() {
                    match issues.iter().find(|issue| issue.index as usize == index) {
                        Some(issue) => outcome.dead_letters.push(DeadLetter {
                            step: id.to_string(),
                            attempts: 1,
                            error: error.clone(),
                            reasons: issue.reasons.clone(),
                            record: StoredRecord::from(&record),
                        }),
                        None => valid.push(record),
                    }
                }
                report.records_out = valid.len() as u64;
                outcome.steps.push(report);
                Some(valid)
            }
            Err(err) => {
                report.error = Some(ErrorReport::from(&err));
                outcome.steps.push(report);
                self.dead_letter_all(id, 1, &err, &batch, outcome);
                None
            }
        }
    }

    async fn sink(&self, id: &str, plugin: &str, retry: &RetryPolicy, batch: Batch, outcome: &mut RunOutcome) {
        let started = Instant::now();
        let (result, attempts, fuel) = match self.plugin(plugin) {
            Ok(p) => self.with_retry(retry, || p.write(&batch)).await,
            Err(err) => (Err(err), 1, 0),
        };
        let mut report = StepReport::new(id, batch.len(), attempts, started, fuel);
        match result {
            Ok(written) => {
                report.records_out = u64::from(written.accepted);
                outcome.delivered += u64::from(written.accepted);
                if written.failed > 0 {
                    // The sink cannot say which records it rejected: keep the whole batch (at least
                    // once; the accepted ones may be delivered again on replay).
                    let error = ErrorReport {
                        code: crate::error::ErrorCode::GuestError.as_str().to_string(),
                        message: format!("the sink rejected {} of {} records", written.failed, batch.len()),
                    };
                    report.error = Some(error.clone());
                    outcome.dead_letters.extend(batch.iter().map(|record| DeadLetter {
                        step: id.to_string(),
                        attempts,
                        error: error.clone(),
                        reasons: Vec::new(),
                        record: StoredRecord::from(record),
                    }));
                }
            }
            Err(err) => {
                report.error = Some(ErrorReport::from(&err));
                self.dead_letter_all(id, attempts, &err, &batch, outcome);
            }
        }
        outcome.steps.push(report);
    }
}
