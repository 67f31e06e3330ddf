//! Reads of the cluster store: answered by this node's replica, except what is per node — the
//! queued work this node owns and the executions it is running.

use super::ClusterStore;
use crate::{
    AccessStore, AuditEntry, AuditFilter, DeadLetterRecord, ExecutionRecord, FlowStore, Page, PageRequest, PluginOwner,
    PluginStore, QueueStore, QueuedRun, Result, Storage, TokenRecord, UsageTotals, VersionRecord,
};
use plugboard_runtime::Grant;
use plugboard_runtime::flow::FlowDefinition;
use plugboard_runtime::signing::{TrustStore, VersionFloor};
use std::collections::BTreeMap;

impl PluginStore for ClusterStore {
    fn blob(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        self.replica().blob(digest)
    }
    fn blob_digests(&self) -> Result<Vec<String>> {
        self.replica().blob_digests()
    }
    fn all_versions(&self) -> Result<Vec<VersionRecord>> {
        self.replica().all_versions()
    }
    fn versions(&self, name: &str) -> Result<Vec<VersionRecord>> {
        self.replica().versions(name)
    }
    fn version(&self, name: &str, version: &semver::Version) -> Result<Option<VersionRecord>> {
        self.replica().version(name, version)
    }
    fn active(&self, name: &str) -> Result<Option<semver::Version>> {
        self.replica().active(name)
    }
    fn floor(&self) -> Result<VersionFloor> {
        self.replica().floor()
    }
    fn owner(&self, name: &str) -> Result<Option<PluginOwner>> {
        self.replica().owner(name)
    }
    fn grant(&self, name: &str) -> Result<Grant> {
        self.replica().grant(name)
    }
    /// This node's counters (usage is counted per node).
    fn usage(&self, name: &str) -> Result<UsageTotals> {
        self.replica().usage(name)
    }
    /// Published on the log, so every replica adds it (see [`Op::AddUsage`]).
    fn add_usage(&self, name: &str, delta: &UsageTotals) -> Result<()> {
        let op = crate::Op::AddUsage { plugin: name.to_string(), delta: delta.clone() };
        Storage::apply(self, crate::Change::new().with(op))
    }
}

impl AccessStore for ClusterStore {
    fn trust(&self) -> Result<TrustStore> {
        self.replica().trust()
    }
    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.replica().tokens()
    }
    fn connections(&self) -> Result<Vec<(String, String)>> {
        self.replica().connections()
    }
    fn audit_page(&self, page: PageRequest, filter: &AuditFilter) -> Result<Page<AuditEntry>> {
        self.replica().audit_page(page, filter)
    }
}

impl FlowStore for ClusterStore {
    fn flow(&self, name: &str) -> Result<Option<FlowDefinition>> {
        self.replica().flow(name)
    }
    fn flows(&self) -> Result<Vec<FlowDefinition>> {
        self.replica().flows()
    }
    fn webhook_secret(&self, flow: &str) -> Result<Option<String>> {
        self.replica().webhook_secret(flow)
    }
    fn execution(&self, id: u64) -> Result<Option<ExecutionRecord>> {
        self.replica().execution(id)
    }
    fn executions_page(&self, flow: &str, page: PageRequest) -> Result<Page<ExecutionRecord>> {
        self.replica().executions_page(flow, page)
    }
    /// Only those this node runs: another node's are its own business until it stops.
    fn running_executions(&self) -> Result<Vec<ExecutionRecord>> {
        let ids: Vec<u64> = {
            let tracked = self.tracked();
            tracked.running.iter().filter(|(_, node)| **node == self.inner.node).map(|(id, _)| *id).collect()
        };
        ids.into_iter().filter_map(|id| self.replica().execution(id).transpose()).collect()
    }
    fn dead_letters_page(&self, flow: &str, page: PageRequest) -> Result<Page<DeadLetterRecord>> {
        self.replica().dead_letters_page(flow, page)
    }
    fn dead_letter_total(&self) -> Result<u64> {
        self.replica().dead_letter_total()
    }
    fn dead_letter(&self, flow: &str, id: u64) -> Result<Option<DeadLetterRecord>> {
        self.replica().dead_letter(flow, id)
    }
}

impl QueueStore for ClusterStore {
    /// Only runs this node owns: it accepted them, or adopted them from a node that stopped.
    fn queued_ids(&self, flow: &str, cursor: Option<u64>, limit: usize) -> Result<Vec<u64>> {
        let tracked = self.tracked();
        let Some(ids) = tracked.owned.get(&self.inner.node).and_then(|flows| flows.get(flow)) else {
            return Ok(Vec::new());
        };
        // In the order the log accepted them; a cursor continues after its run's place.
        let after = match cursor {
            Some(id) => match tracked.run_owner.get(&id) {
                Some((_, _, place)) => std::ops::Bound::Excluded((*place, id)),
                None => std::ops::Bound::Excluded((id, id)),
            },
            None => std::ops::Bound::Unbounded,
        };
        Ok(ids.range((after, std::ops::Bound::Unbounded)).take(limit).map(|(_, id)| *id).collect())
    }
    fn queued_run(&self, id: u64) -> Result<Option<QueuedRun>> {
        self.replica().queued_run(id)
    }
    fn ran_by(&self, flow: &str, id: u64) -> Result<Option<u64>> {
        self.replica().ran_by(flow, id)
    }
    fn queue_depths(&self) -> Result<BTreeMap<String, usize>> {
        let tracked = self.tracked();
        Ok(tracked
            .owned
            .get(&self.inner.node)
            .map(|flows| flows.iter().map(|(flow, ids)| (flow.clone(), ids.len())).collect())
            .unwrap_or_default())
    }
    fn enqueue_once(&self, run: &QueuedRun, signature: &[u8], expires_at: u64) -> Result<(u64, bool)> {
        self.enqueue_delivery(run, signature, expires_at)
    }
    /// Marks expire per replica; the delivery's subject keeps refusing its replays.
    fn sweep_delivery_marks(&self, now: u64) -> Result<usize> {
        self.replica().sweep_delivery_marks(now)
    }
    fn cursor(&self, flow: &str) -> Result<Option<String>> {
        self.replica().cursor(flow)
    }
}
