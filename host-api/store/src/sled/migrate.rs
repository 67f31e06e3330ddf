//! Index entries a table holds records for but no index names, built at open.
//!
//! Two cases: data directories from before the per-flow indexes (their executions would not be
//! listed and, worse, their acknowledged queued work would never run), and a webhook delivery a
//! crash caught inside `enqueue_once` (indexed when its delivery mark names it, removed when not).
//! Executions are indexed once, when their index is empty; every queued run is checked at each
//! open.

use super::{Area, SledStore, backend, decode, prefixed_id};
use crate::{ExecutionRecord, ExecutionStatus, QueuedRun, Result, TriggerKind};

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
        // A queued run without an index entry is either from before the index (the whole index
        // is empty: index it), or a webhook delivery a crash caught inside `enqueue_once`. Such a
        // run is acknowledged-or-retried only if its delivery mark names it: then index it (a
        // retry is answered "duplicate", so it must run); without a mark nobody was answered and
        // the sender's retry queues it afresh, so remove it (or it would run twice). The queue is
        // bounded, so this scan is too; a run that does not decode is left for the operator.
        let legacy = self.tree(Area::QueueByFlow).is_empty();
        let marked: std::collections::BTreeSet<u64> = if legacy {
            std::collections::BTreeSet::new()
        } else {
            self.tree(Area::Deliveries)
                .iter()
                .values()
                .map(|mark| mark.map(|mark| super::queue::mark_run(&mark)).map_err(backend))
                .collect::<Result<_>>()?
        };
        for entry in self.tree(Area::Queue).iter() {
            let (id, value) = entry.map_err(backend)?;
            let run: QueuedRun = match decode("queue", &value) {
                Ok(run) => run,
                Err(err) => {
                    tracing::error!(%err, "a queued run does not decode; it stays in the queue tree, unrun");
                    continue;
                }
            };
            let key = prefixed_id(&run.flow, run.id);
            if self.tree(Area::QueueByFlow).contains_key(&key).map_err(backend)? {
                continue;
            }
            if legacy || run.trigger != TriggerKind::Webhook || marked.contains(&run.id) {
                self.tree(Area::QueueByFlow).insert(key, Vec::new()).map_err(backend)?;
            } else {
                self.tree(Area::Queue).remove(id).map_err(backend)?;
            }
            written += 1;
        }
        if written > 0 {
            self.tree(Area::Meta).flush().map_err(backend)?;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use crate::sled::SledStore;
    use crate::{FlowStore, PageRequest, QueueStore, QueuedRun, TriggerKind};

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
                headers: Vec::new(),
                trigger: TriggerKind::Webhook,
                received_at: 0,
                node: None,
                accepted: None,
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
        let store = SledStore::open(&dir, crate::sealed::SecretsKey::ephemeral().unwrap()).unwrap();
        assert_eq!(store.queued_ids("old", None, 10).unwrap(), vec![7]);
        assert_eq!(store.queue_depths().unwrap().get("old"), Some(&1));
        assert_eq!(store.executions_page("old", PageRequest::after(None, 10)).unwrap().items.len(), 1);
        assert_eq!(store.running_executions().unwrap().len(), 1);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_run_a_crash_left_unindexed_runs_only_if_its_delivery_was_marked() {
        use crate::{Change, Op, Storage};
        let dir = std::env::temp_dir().join(format!("plugboard-orphans-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = |id: u64| QueuedRun {
            id,
            flow: "hooked".into(),
            records: vec![serde_json::json!({"n": id})],
            headers: Vec::new(),
            trigger: TriggerKind::Webhook,
            received_at: 0,
            node: None,
            accepted: None,
        };
        {
            let store = SledStore::open(&dir, crate::sealed::SecretsKey::ephemeral().unwrap()).unwrap();
            // An indexed run, so the index is not empty (not a legacy store).
            store.apply(Change::new().with(Op::Enqueue(run(1)))).unwrap();
            // Crashed after its mark, before its index entry: acknowledged, or its retry would be
            // answered "duplicate" — it must run.
            store.tree(super::Area::Queue).insert(2u64.to_be_bytes(), serde_json::to_vec(&run(2)).unwrap()).unwrap();
            let mut mark = 99u64.to_be_bytes().to_vec();
            mark.extend_from_slice(&2u64.to_be_bytes());
            store.tree(super::Area::Deliveries).insert(b"hooked\0sig-2", mark).unwrap();
            // Crashed before its mark: nobody was answered; the retry queues it again.
            store.tree(super::Area::Queue).insert(3u64.to_be_bytes(), serde_json::to_vec(&run(3)).unwrap()).unwrap();
            ::sled::Tree::flush(store.tree(super::Area::Queue)).unwrap();
        }
        // sled's flusher thread may hold the database's lock for a moment after the store is dropped.
        let reopen = || SledStore::open(&dir, crate::sealed::SecretsKey::ephemeral().unwrap());
        let store = (0..50)
            .find_map(|_| {
                reopen().ok().or_else(|| {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    None
                })
            })
            .unwrap_or_else(|| reopen().unwrap());
        assert_eq!(store.queued_ids("hooked", None, 10).unwrap(), vec![1, 2]);
        assert!(store.queued_run(3).unwrap().is_none(), "the unmarked run is gone, not run twice");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn secrets_stored_in_clear_are_sealed_at_open() {
        use crate::{FlowStore, PluginStore};
        let dir = tempfile::tempdir().unwrap();
        {
            let db = ::sled::Config::new().path(dir.path()).open().unwrap();
            let secrets = db.open_tree("secrets").unwrap();
            secrets.insert(b"flow\0hooked", b"webhook-secret-in-clear".to_vec()).unwrap();
            secrets.insert(b"mapper", br#"{"token":"plugin-secret-in-clear"}"#.to_vec()).unwrap();
            db.flush().unwrap();
        }
        let key = crate::sealed::SecretsKey::ephemeral().unwrap();
        let store = SledStore::open(dir.path(), key).unwrap();
        assert_eq!(store.webhook_secret("hooked").unwrap().as_deref(), Some("webhook-secret-in-clear"));
        assert_eq!(
            store.grant("mapper").unwrap().secrets.get("token").map(String::as_str),
            Some("plugin-secret-in-clear")
        );
        for entry in store.tree(super::Area::Secrets).iter() {
            let (_, value) = entry.unwrap();
            assert!(crate::sealed::SecretsKey::is_sealed(&value), "every value is sealed at rest");
        }
    }
}
