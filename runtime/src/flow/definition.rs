//! Flow definitions: a named pipeline of plugins, and its validation.
//!
//! ```json
//! {"name": "order-sync",
//!  "steps": [
//!    {"type": "transform", "id": "map", "plugin": "json-mapper"},
//!    {"type": "validate", "id": "check", "plugin": "schema-validator", "on_invalid": "dead-letter"},
//!    {"type": "route", "id": "by-size", "routes": [{"when": {"field": "$.total", "op": "gte", "value": 1000}, "to": "big"}], "default": "small"}],
//!  "branches": {
//!    "big": {"sinks": [{"plugin": "http-sink", "id": "crm"}]},
//!    "small": {"sinks": [{"plugin": "http-sink-2", "id": "mail"}]}}}
//! ```
//!
//! The main pipeline is `steps` then `sinks`. A `route` step sends each record to the first branch
//! whose condition holds (or to `default`; unrouted records are dropped and counted); a `fan-out` step
//! copies every record to each named branch. Either ends the pipeline it is in, and the branches it
//! feeds run concurrently, as do a pipeline's sinks. Branches have their own steps and sinks and may
//! route further, but never back: validation rejects cycles.

use super::condition::Condition;
use super::webhook::{MAX_DEDUPE_SECS, MAX_WEBHOOK_TOLERANCE_SECS, WebhookTrigger};
use crate::error::{Error, Result};
use crate::manifest::Kind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// When a step's retryable failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Wait before the second attempt.
    #[serde(default = "default_initial_ms")]
    pub initial_backoff_ms: u64,
    /// Longest wait between attempts.
    #[serde(default = "default_max_ms")]
    pub max_backoff_ms: u64,
}

fn default_attempts() -> u32 {
    3
}
fn default_initial_ms() -> u64 {
    100
}
fn default_max_ms() -> u64 {
    5_000
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: default_attempts(),
            initial_backoff_ms: default_initial_ms(),
            max_backoff_ms: default_max_ms(),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` (2, 3, …): exponential, capped, with full jitter drawn
    /// from `jitter` in `[0, 1)`.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> std::time::Duration {
        let exponent = attempt.saturating_sub(2).min(30);
        let ceiling = self.initial_backoff_ms.saturating_mul(1 << exponent).min(self.max_backoff_ms);
        std::time::Duration::from_millis((ceiling as f64 * jitter.clamp(0.0, 1.0)) as u64)
    }

    /// The wait before attempt `attempt` after a failure that asked for at least `delay` (a
    /// plugin's `retry-after`, a remote's `Retry-After`): never shorter than the delay, with
    /// jitter of up to a tenth of it only above it, and never longer than `max_backoff_ms`, which
    /// also caps the delay itself (a remote cannot hold a flow for an hour).
    pub fn wait(&self, attempt: u32, jitter: f64, delay: Option<std::time::Duration>) -> std::time::Duration {
        let backoff = self.backoff(attempt, jitter);
        let Some(delay) = delay else { return backoff };
        let cap = std::time::Duration::from_millis(self.max_backoff_ms);
        let floor = delay.min(cap);
        let above = floor.mul_f64(jitter.clamp(0.0, 1.0) / 10.0);
        backoff.max(floor + above).min(cap.max(floor))
    }
}

/// What a validate step does with invalid records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnInvalid {
    /// Invalid records go to the dead-letter queue with their reasons; valid ones continue.
    #[default]
    DeadLetter,
    /// Any invalid record fails the execution.
    Fail,
}

/// One routing rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// The condition on the record.
    pub when: Condition,
    /// The branch records matching it go to.
    pub to: String,
}

/// A step of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// A transformer plugin.
    Transform {
        /// Step id, unique in the flow.
        id: String,
        /// Plugin name.
        plugin: String,
        /// Retry policy for retryable failures.
        #[serde(default)]
        retry: RetryPolicy,
    },
    /// A transformer plugin that checks records (its `invalid-input` errors name the bad ones).
    Validate {
        /// Step id.
        id: String,
        /// Plugin name.
        plugin: String,
        /// What to do with invalid records.
        #[serde(default)]
        on_invalid: OnInvalid,
    },
    /// Conditions on record fields or headers choose a branch per record.
    Route {
        /// Step id.
        id: String,
        /// Rules, first match wins.
        routes: Vec<RouteRule>,
        /// Branch for records no rule matches; without it they are dropped.
        #[serde(default)]
        default: Option<String>,
    },
    /// Every record goes to every named branch.
    FanOut {
        /// Step id.
        id: String,
        /// Branches.
        to: Vec<String>,
    },
}

impl Step {
    /// The step id.
    pub fn id(&self) -> &str {
        match self {
            Step::Transform { id, .. }
            | Step::Validate { id, .. }
            | Step::Route { id, .. }
            | Step::FanOut { id, .. } => id,
        }
    }

    fn targets(&self) -> Vec<&str> {
        match self {
            Step::Route { routes, default, .. } => {
                routes.iter().map(|r| r.to.as_str()).chain(default.as_deref()).collect()
            }
            Step::FanOut { to, .. } => to.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// A sink of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkStep {
    /// Step id.
    pub id: String,
    /// Sink plugin name.
    pub plugin: String,
    /// Retry policy for retryable failures.
    #[serde(default)]
    pub retry: RetryPolicy,
}

/// Where a flow's records come from when a run brings none: a source plugin, read from the flow's
/// persisted cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceStep {
    /// Step id.
    pub id: String,
    /// Source plugin name.
    pub plugin: String,
    /// Most records per run.
    #[serde(default = "default_max_records")]
    pub max_records: u32,
}

fn default_max_records() -> u32 {
    100
}

/// A pipeline: steps, then sinks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Steps in order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Sinks every record reaching the end is written to.
    #[serde(default)]
    pub sinks: Vec<SinkStep>,
}

/// What starts a flow besides a manual run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Trigger {
    /// `POST /v1/hooks/{flow}`, authenticated by the trigger's scheme under the flow's webhook
    /// secret (see [`super::webhook`]).
    Webhook(Box<WebhookTrigger>),
    /// A schedule: standard 5-field cron (`*/5 * * * *`) or 6-field with seconds first.
    ///
    /// Runs missed while the server was down are not caught up: the schedule resumes at its next
    /// time after the start. Without `allow_overlap`, a due run is skipped while the previous one
    /// is still queued or running.
    Cron {
        /// The cron expression.
        schedule: String,
        /// IANA time zone the expression is read in.
        #[serde(default = "default_timezone")]
        timezone: String,
        /// Start a run even if the previous one has not finished.
        #[serde(default)]
        allow_overlap: bool,
    },
}

fn default_timezone() -> String {
    "UTC".into()
}

/// A parsed cron trigger.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    schedule: cron::Schedule,
    timezone: chrono_tz::Tz,
    /// Whether runs may overlap.
    pub allow_overlap: bool,
}

/// Why a cron trigger's schedule cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    /// Not a cron expression the parser takes (5 or 6 fields).
    #[error("invalid cron expression `{schedule}`: {}", source.to_string().replace('\n', " "))]
    Expression {
        /// The expression as written.
        schedule: String,
        /// The cron parser's error.
        source: cron::error::Error,
    },
    /// A time zone the tz database does not know.
    #[error("unknown time zone `{timezone}`")]
    TimeZone {
        /// The zone as written.
        timezone: String,
    },
}

impl CronSchedule {
    /// Parses `schedule` (5 or 6 fields) in `timezone`.
    ///
    /// # Errors
    /// [`CronError`]: an invalid expression (with the cron parser's error) or an unknown time zone.
    pub fn parse(schedule: &str, timezone: &str, allow_overlap: bool) -> std::result::Result<CronSchedule, CronError> {
        use std::str::FromStr;
        let fields = schedule.split_whitespace().count();
        let normalised = if fields == 5 { format!("0 {schedule}") } else { schedule.to_string() };
        let parsed = cron::Schedule::from_str(&normalised)
            .map_err(|source| CronError::Expression { schedule: schedule.to_string(), source })?;
        let timezone =
            timezone.parse::<chrono_tz::Tz>().map_err(|_| CronError::TimeZone { timezone: timezone.to_string() })?;
        Ok(CronSchedule { schedule: parsed, timezone, allow_overlap })
    }

    /// The first time strictly after `after` the schedule fires.
    pub fn next_after(&self, after: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
        self.schedule.after(&after.with_timezone(&self.timezone)).next().map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// A flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "FlowDefinition")]
pub struct FlowDefinition {
    /// Lower-case letters, digits and dashes.
    pub name: String,
    /// Triggers besides manual runs (always allowed).
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// Run queued work (webhook deliveries, cron firings) one batch at a time, in the order it
    /// was accepted. Without it, several workers may run a flow's queued work at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ordered: bool,
    /// Where records come from when a run brings none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceStep>,
    /// The main pipeline.
    #[serde(flatten)]
    pub main: Pipeline,
    /// Named branches that route and fan-out steps send records to.
    #[serde(default)]
    pub branches: BTreeMap<String, Pipeline>,
}

impl FlowDefinition {
    /// Checks the definition against the installed plugins (`kind_of` answers a plugin's kind, or
    /// `None` when no such plugin is installed).
    ///
    /// # Errors
    /// [`Error::FlowInvalid`] naming the offending step or branch.
    pub fn validate(&self, kind_of: impl Fn(&str) -> Option<Kind>) -> Result<()> {
        let invalid = |reason: String| Err(Error::FlowInvalid { reason });
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return invalid(format!("flow name `{}` must be 1-64 lower-case letters, digits or dashes", self.name));
        }
        for trigger in &self.triggers {
            match trigger {
                Trigger::Cron { schedule, timezone, allow_overlap } => {
                    CronSchedule::parse(schedule, timezone, *allow_overlap)
                        .map_err(|reason| Error::FlowInvalid { reason: reason.to_string() })?;
                }
                Trigger::Webhook(webhook) => webhook.validate()?,
            }
        }
        let mut ids = BTreeSet::new();
        if let Some(source) = &self.source {
            ids.insert(source.id.clone());
            check_plugin(&kind_of, &source.id, &source.plugin, Kind::Source)?;
        }
        let pipelines = std::iter::once(("main", &self.main)).chain(self.branches.iter().map(|(n, p)| (n.as_str(), p)));
        for (branch, pipeline) in pipelines {
            if pipeline.steps.is_empty() && pipeline.sinks.is_empty() {
                return invalid(format!("branch `{branch}` has no steps and no sinks"));
            }
            for (index, step) in pipeline.steps.iter().enumerate() {
                if !ids.insert(step.id().to_string()) {
                    return invalid(format!("step id `{}` is used twice", step.id()));
                }
                let ends = matches!(step, Step::Route { .. } | Step::FanOut { .. });
                if ends && (index + 1 < pipeline.steps.len() || !pipeline.sinks.is_empty()) {
                    return invalid(format!(
                        "step `{}` hands records to branches, so it must end `{branch}`",
                        step.id()
                    ));
                }
                if let Step::Transform { plugin, .. } | Step::Validate { plugin, .. } = step {
                    check_plugin(&kind_of, step.id(), plugin, Kind::Transformer)?;
                }
                for target in step.targets() {
                    if !self.branches.contains_key(target) {
                        return invalid(format!(
                            "step `{}` sends records to branch `{target}`, which does not exist",
                            step.id()
                        ));
                    }
                }
                if let Step::FanOut { to, .. } = step
                    && to.is_empty()
                {
                    return invalid(format!("fan-out step `{}` names no branch", step.id()));
                }
                if let Step::Route { routes, .. } = step {
                    for route in routes {
                        if let Err(reason) = route.when.check() {
                            return invalid(format!("route step `{}`: {reason}", step.id()));
                        }
                    }
                }
            }
            for sink in &pipeline.sinks {
                if !ids.insert(sink.id.clone()) {
                    return invalid(format!("step id `{}` is used twice", sink.id));
                }
                check_plugin(&kind_of, &sink.id, &sink.plugin, Kind::Sink)?;
            }
        }
        self.check_cycles()
    }

    /// Branches a pipeline hands records to.
    fn edges(pipeline: &Pipeline) -> Vec<&str> {
        pipeline.steps.iter().flat_map(Step::targets).collect()
    }

    fn check_cycles(&self) -> Result<()> {
        // Depth-first search from the main pipeline; a branch met again on the current path is a cycle.
        fn visit<'a>(flow: &'a FlowDefinition, branch: &'a str, path: &mut Vec<&'a str>) -> Result<()> {
            if let Some(start) = path.iter().position(|b| *b == branch) {
                let mut cycle: Vec<&str> = path[start..].to_vec();
                cycle.push(branch);
                return Err(Error::FlowInvalid { reason: format!("branches form a cycle: {}", cycle.join(" -> ")) });
            }
            let Some(pipeline) = flow.branches.get(branch) else { return Ok(()) };
            path.push(branch);
            for next in FlowDefinition::edges(pipeline) {
                visit(flow, next, path)?;
            }
            path.pop();
            Ok(())
        }
        for start in FlowDefinition::edges(&self.main) {
            visit(self, start, &mut Vec::new())?;
        }
        for branch in self.branches.keys() {
            visit(self, branch, &mut Vec::new())?;
        }
        Ok(())
    }

    /// The flow's webhook trigger, if it has one. Its tolerance is capped again here: a flow
    /// stored before the cap existed may hold a larger one.
    pub fn webhook(&self) -> Option<WebhookTrigger> {
        self.triggers.iter().find_map(|t| match t {
            Trigger::Webhook(webhook) => Some(WebhookTrigger {
                tolerance_secs: webhook.tolerance_secs.min(MAX_WEBHOOK_TOLERANCE_SECS),
                dedupe_secs: webhook.dedupe_secs.min(MAX_DEDUPE_SECS),
                ..WebhookTrigger::clone(webhook)
            }),
            Trigger::Cron { .. } => None,
        })
    }

    /// The flow's cron schedules (invalid ones are skipped; validation refuses them).
    pub fn cron_schedules(&self) -> Vec<CronSchedule> {
        self.triggers
            .iter()
            .filter_map(|t| match t {
                Trigger::Cron { schedule, timezone, allow_overlap } => {
                    CronSchedule::parse(schedule, timezone, *allow_overlap).ok()
                }
                Trigger::Webhook(_) => None,
            })
            .collect()
    }

    /// The plugin step `step` runs, if it runs one (routes and fan-outs do not).
    pub fn plugin_of(&self, step: &str) -> Option<&str> {
        if let Some(source) = self.source.as_ref().filter(|s| s.id == step) {
            return Some(&source.plugin);
        }
        std::iter::once(&self.main).chain(self.branches.values()).find_map(|pipeline| {
            pipeline
                .steps
                .iter()
                .find_map(|s| match s {
                    Step::Transform { id, plugin, .. } | Step::Validate { id, plugin, .. } if id == step => {
                        Some(plugin.as_str())
                    }
                    _ => None,
                })
                .or_else(|| pipeline.sinks.iter().find(|s| s.id == step).map(|s| s.plugin.as_str()))
        })
    }

    /// Every plugin the flow uses.
    pub fn plugins(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.source.iter().map(|s| s.plugin.clone()).collect();
        for pipeline in std::iter::once(&self.main).chain(self.branches.values()) {
            for step in &pipeline.steps {
                if let Step::Transform { plugin, .. } | Step::Validate { plugin, .. } = step {
                    names.insert(plugin.clone());
                }
            }
            names.extend(pipeline.sinks.iter().map(|s| s.plugin.clone()));
        }
        names
    }
}

fn check_plugin(kind_of: &impl Fn(&str) -> Option<Kind>, step: &str, plugin: &str, expected: Kind) -> Result<()> {
    match kind_of(plugin) {
        None => {
            Err(Error::FlowInvalid { reason: format!("step `{step}` uses plugin `{plugin}`, which is not installed") })
        }
        Some(kind) if kind != expected => Err(Error::FlowInvalid {
            reason: format!("step `{step}` needs a {}, but `{plugin}` is a {}", expected.as_str(), kind.as_str()),
        }),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;
    use std::time::Duration;

    #[test]
    fn an_asked_delay_is_a_floor_with_jitter_only_above_and_the_policy_caps_it() {
        let policy = RetryPolicy { max_attempts: 3, initial_backoff_ms: 100, max_backoff_ms: 5_000 };
        for jitter in [0.0, 0.5, 0.999] {
            let wait = policy.wait(2, jitter, Some(Duration::from_secs(2)));
            assert!(wait >= Duration::from_secs(2) && wait <= Duration::from_millis(2_200), "{wait:?}");
            assert_eq!(policy.wait(2, jitter, Some(Duration::from_secs(3_600))), Duration::from_secs(5));
            assert_eq!(policy.wait(2, jitter, None), policy.backoff(2, jitter));
        }
        // A delay shorter than the backoff leaves the backoff.
        assert_eq!(policy.wait(9, 0.5, Some(Duration::from_millis(1))), policy.backoff(9, 0.5));
    }
}
