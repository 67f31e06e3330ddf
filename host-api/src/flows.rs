//! Flows in the control plane: definitions validated against the installed plugins, manual runs
//! with pinned plugin versions, persisted executions and a persisted dead-letter queue with replay.
//!
//! An execution pins the active version of every plugin the flow uses when it starts; activating a
//! new version meanwhile does not touch it. The execution and its dead letters are flushed before
//! the run is answered.

use crate::api::error::ApiError;
use crate::registry::{Registry, now};
use crate::store::{DeadLetterRecord, ExecutionRecord};
use plugboard_runtime::flow::{FlowDefinition, FlowRun, RunOutcome};
use plugboard_runtime::{Batch, Error, Kind, Plugin, Record};
use std::collections::BTreeMap;

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
        let run = FlowRun::new(&flow, &plugins);
        execution.outcome = match from {
            Some(step) => run.run_from(step, input).await?,
            None => run.run(input).await,
        };
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
                flow: flow.name.clone(),
                execution: execution.id,
                at: now(),
                letter: letter.clone(),
            })?;
        }
        self.store.put_execution(&execution)?;
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
            for letter in &letters {
                self.store.remove_dead_letter(flow, letter.id)?;
            }
            executions.push(self.run_flow(flow, batch, Some(&step), "replay").await?);
        }
        Ok(executions)
    }
}
