//! Index entries a table holds records for but no index names, built at open.
//!
//! Two cases: data directories from before the per-flow indexes (their executions would not be
//! listed and, worse, their acknowledged queued work would never run), and a webhook delivery a
//! crash caught between storing its run and indexing it (see `enqueue_once`). Executions are
//! indexed once, when their index is empty; every queued run is checked at each open.

use super::{Area, SledStore, backend, decode, prefixed_id};
use crate::store::{ExecutionRecord, ExecutionStatus, QueuedRun, Result};

impl SledStore {
    /// Builds missing indexes; answers how many entries it wrote.
    pub(super) fn index_legacy_records(&self) -> Result<usize> {
        let mut written = 0;
        if self.tree(Area::ExecutionsByFlow).is_empty() && !self.tree(Area::Executions).is_empty() {
            for value in self.tree(Area::Executions).iter().values() {
                let execution: ExecutionRecord = decode("executions", &value.map_err(backend)?)?;
                let key = prefixed_id(&execution.flow, execution.id);
                self.tree(Area::ExecutionsByFlow).insert(key, Vec::new()).map_err(backend)?;
                if execution.status == ExecutionStatus::Running {
                    self.tree(Area::Running).insert(execution.id.to_be_bytes(), Vec::new()).map_err(backend)?;
                }
                written += 1;
            }
        }
        // Every queued run has an index entry: also those a crash caught between storing a
        // webhook delivery and indexing it (see `enqueue_once`). The queue is bounded, so this
        // scan is too.
        for value in self.tree(Area::Queue).iter().values() {
            let run: QueuedRun = decode("queue", &value.map_err(backend)?)?;
            let key = prefixed_id(&run.flow, run.id);
            if !self.tree(Area::QueueByFlow).contains_key(&key).map_err(backend)? {
                self.tree(Area::QueueByFlow).insert(key, Vec::new()).map_err(backend)?;
                written += 1;
            }
        }
        if written > 0 {
            self.tree(Area::Meta).flush().map_err(backend)?;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::sled::SledStore;
    use crate::store::{FlowStore, QueueStore, QueuedRun, TriggerKind};

    #[test]
    fn queued_work_and_executions_from_before_the_indexes_are_found() {
        let dir = std::env::temp_dir().join(format!("plugboard-migrate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            // Written as the store before the indexes wrote them: the tables alone.
            let db = ::sled::open(&dir).unwrap();
            let run = QueuedRun {
                id: 7,
                flow: "old".into(),
                records: vec![serde_json::json!({"n": 1})],
                trigger: TriggerKind::Webhook,
                received_at: 0,
            };
            db.open_tree("queue").unwrap().insert(7u64.to_be_bytes(), serde_json::to_vec(&run).unwrap()).unwrap();
            let execution = serde_json::json!({"id": 9, "flow": "old", "status": "running", "trigger": "webhook",
                "started_at": 0, "finished_at": null, "plugin_versions": {}, "records_in": 1,
                "steps": [], "delivered": 0, "dropped": 0, "dead_letters": [], "failure": null});
            db.open_tree("executions")
                .unwrap()
                .insert(9u64.to_be_bytes(), serde_json::to_vec(&execution).unwrap())
                .unwrap();
            db.flush().unwrap();
        }
        let store = SledStore::open(&dir).unwrap();
        assert_eq!(store.queued_ids("old", None, 10).unwrap(), vec![7]);
        assert_eq!(store.queue_depths().unwrap().get("old"), Some(&1));
        assert_eq!(store.executions_page("old", None, 10).unwrap().items.len(), 1);
        assert_eq!(store.running_executions().unwrap().len(), 1);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
