//! Flows: named pipelines of plugins (source → transformers → routes and fan-outs → sinks), with
//! per-step retries and a dead-letter queue. This module defines, validates and runs them; the
//! control plane persists definitions, executions and dead letters and triggers runs.

pub mod cidr;
pub mod condition;
pub mod definition;
pub mod engine;
pub mod report;
pub mod webhook;

pub use condition::{Condition, Op, RecordCondition};
pub use definition::{
    CronSchedule, FlowDefinition, OnInvalid, Pipeline, RetryPolicy, RouteRule, SinkStep, SourceStep, Step, Trigger,
};
pub use engine::FlowRun;
pub use report::{
    DEAD_LETTER_LOG_BYTES, DEAD_LETTER_LOG_LINES, DeadLetter, ErrorReport, RunOutcome, STEP_LOG_LINES, StepReport,
    StoredRecord,
};
pub use webhook::{MAX_WEBHOOK_TOLERANCE_SECS, WebhookTrigger};
