//! Flow definitions, validated against the installed plugins; executions and dead letters to
//! read, page by page; webhook secrets. Running flows is in [`super::runs`].

use super::webhook::secrets::WebhookSecrets;
use super::{DomainError, Plugins, Result};
use crate::store::{
    AuditAction, AuditEntry, Change, DeadLetterRecord, ExecutionRecord, ExecutionStatus, Op, Page, PageRequest,
    Storage, now,
};
use plugboard_runtime::Error;
use plugboard_runtime::flow::{FlowDefinition, Step};
use std::sync::Arc;

/// The shortest webhook secret accepted.
pub const MIN_WEBHOOK_SECRET_LEN: usize = 16;

/// Longest time a replaced webhook secret stays accepted (30 days).
pub const MAX_SECRET_OVERLAP_SECS: u64 = 30 * 24 * 3600;

/// Flows: definitions, executions, dead letters.
pub struct Flows {
    pub(super) store: Arc<dyn Storage>,
    pub(super) plugins: Arc<Plugins>,
}

impl Flows {
    pub(super) fn new(store: Arc<dyn Storage>, plugins: Arc<Plugins>) -> Flows {
        Flows { store, plugins }
    }

    /// Refuses input of more records than the host's per-batch cap (`[caps] max_records`) before
    /// it is queued or run: a batch no plugin could take would only become dead letters.
    ///
    /// # Errors
    /// [`plugboard_runtime::Error::TooManyRecords`] (`input-too-large`).
    pub fn check_input(&self, records: usize) -> Result<()> {
        let limit = self.plugins.runtime.config().caps.max_records;
        let count = records as u64;
        if count > limit {
            let set_by = plugboard_runtime::LimitSource::Host;
            return Err(plugboard_runtime::Error::TooManyRecords { count, limit, output: false, set_by }.into());
        }
        Ok(())
    }

    /// Validates and saves a flow; `replace` allows overwriting an existing one.
    ///
    /// # Errors
    /// `flow-invalid`, `conflict` (exists, without `replace`) or `not-found` (missing, with it).
    pub async fn put(&self, flow: FlowDefinition, replace: bool, actor: &str) -> Result<()> {
        flow.validate(|name| self.plugins.kind_of(name))?;
        for pipeline in std::iter::once(&flow.main).chain(flow.branches.values()) {
            for step in &pipeline.steps {
                if let Step::Route { routes, .. } = step {
                    for rule in routes {
                        rule.when.check().map_err(|reason| Error::FlowInvalid {
                            reason: format!("step `{}`: {reason}", step.id()),
                        })?;
                    }
                }
            }
        }
        let read_at = self.store.position();
        let exists = self.store.flow(&flow.name)?.is_some();
        if exists && !replace {
            return Err(DomainError::conflict(format!("flow {} exists; replace it instead", flow.name)));
        }
        if !exists && replace {
            return Err(DomainError::not_found(format!("flow {}", flow.name)));
        }
        let action = if replace { AuditAction::FlowUpdate } else { AuditAction::FlowCreate };
        let entry = AuditEntry::new(actor, action, &flow.name).detail(format!("plugins {:?}", flow.plugins()));
        self.store.apply(Change::read_at(read_at).with(Op::PutFlow(Box::new(flow))).audit(entry))?;
        self.store.durable().await?;
        Ok(())
    }

    /// Deletes a flow, its webhook secret and cursor (executions, dead letters and webhook
    /// delivery marks stay: the marks keep refusing replays of old deliveries).
    ///
    /// # Errors
    /// `not-found`.
    pub async fn delete(&self, name: &str, actor: &str) -> Result<()> {
        let read_at = self.store.position();
        if self.store.flow(name)?.is_none() {
            return Err(DomainError::not_found(format!("flow {name}")));
        }
        self.store.apply(Change::read_at(read_at).with(Op::RemoveFlow(name.into())).audit(AuditEntry::new(
            actor,
            AuditAction::FlowDelete,
            name,
        )))?;
        self.store.durable().await?;
        Ok(())
    }

    /// A flow definition.
    ///
    /// # Errors
    /// `not-found`.
    pub fn get(&self, name: &str) -> Result<FlowDefinition> {
        self.store.flow(name)?.ok_or_else(|| DomainError::not_found(format!("flow {name}")))
    }

    /// Every flow definition.
    pub fn list(&self) -> Result<Vec<FlowDefinition>> {
        Ok(self.store.flows()?)
    }

    /// Sets the secret webhook senders sign with (write-only); with `keep_previous_secs` the one
    /// it replaces stays accepted that long (a rotation, see [`WebhookSecrets`]).
    ///
    /// # Errors
    /// `invalid` for a short secret, `not-found` for an unknown flow.
    pub async fn set_webhook_secret(
        &self,
        name: &str,
        secret: &str,
        keep_previous_secs: u64,
        actor: &str,
    ) -> Result<()> {
        if secret.len() < MIN_WEBHOOK_SECRET_LEN {
            return Err(DomainError::Invalid(format!(
                "webhook secrets are at least {MIN_WEBHOOK_SECRET_LEN} characters"
            )));
        }
        if keep_previous_secs > MAX_SECRET_OVERLAP_SECS {
            return Err(DomainError::Invalid(format!(
                "keep_previous_secs is at most {MAX_SECRET_OVERLAP_SECS} (30 days)"
            )));
        }
        let read_at = self.store.position();
        self.get(name)?;
        let stored = self.store.webhook_secret(name)?;
        let secrets = match stored {
            Some(stored) => WebhookSecrets::decode(&stored).rotate(secret, keep_previous_secs, now()),
            None => WebhookSecrets::single(secret),
        };
        self.store.apply(
            Change::read_at(read_at)
                .with(Op::PutWebhookSecret { flow: name.into(), secret: secrets.encode() })
                .audit(AuditEntry::new(actor, AuditAction::WebhookSecret, name)),
        )?;
        self.store.durable().await?;
        Ok(())
    }

    /// A page of the executions of `flow`.
    pub fn executions(&self, flow: &str, page: PageRequest) -> Result<Page<ExecutionRecord>> {
        Ok(self.store.executions_page(flow, page)?)
    }

    /// One execution.
    ///
    /// # Errors
    /// `not-found`.
    pub fn execution(&self, id: u64) -> Result<ExecutionRecord> {
        self.store.execution(id)?.ok_or_else(|| DomainError::not_found(format!("execution {id}")))
    }

    /// A page of the dead letters of `flow`.
    pub fn dead_letters(&self, flow: &str, page: PageRequest) -> Result<Page<DeadLetterRecord>> {
        Ok(self.store.dead_letters_page(flow, page)?)
    }

    /// Deletes a dead letter; audited.
    ///
    /// # Errors
    /// `not-found`.
    pub async fn delete_dead_letter(&self, flow: &str, id: u64, actor: &str) -> Result<()> {
        if self.store.dead_letter(flow, id)?.is_none() {
            return Err(DomainError::not_found(format!("dead letter {id} of flow {flow}")));
        }
        self.store.apply(
            Change::new()
                .with(Op::RemoveDeadLetter { flow: flow.into(), id })
                .audit(AuditEntry::new(actor, AuditAction::DlqDelete, flow).detail(format!("dead letter {id}"))),
        )?;
        self.store.durable().await?;
        Ok(())
    }

    /// Marks executions a crash left running as interrupted (their queued work runs again).
    pub(super) fn mark_interrupted(&self) -> Result<()> {
        self.interrupt(self.store.running_executions()?)
    }

    /// Marks executions a cluster node that stopped was running as interrupted (their queued
    /// runs were adopted and run again here).
    pub(super) fn interrupt_adopted(&self, ids: &[u64]) -> Result<()> {
        let running = ids
            .iter()
            .filter_map(|id| self.store.execution(*id).transpose())
            .filter(|e| e.as_ref().map_or(true, |e| e.status == ExecutionStatus::Running))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        self.interrupt(running)
    }

    fn interrupt(&self, running: Vec<ExecutionRecord>) -> Result<()> {
        if running.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            interrupted = running.len(),
            "flow executions were interrupted by a crash; their queued work runs again"
        );
        let mut change = Change::new();
        for mut execution in running {
            execution.status = ExecutionStatus::Interrupted;
            change.push(Op::PutExecution(Box::new(execution)));
        }
        self.store.apply(change)?;
        Ok(())
    }
}
