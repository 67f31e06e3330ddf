//! Flow definitions, executions (with their per-flow and running indexes) and dead letters.

use super::{Area, SledStore, Write, backend, decode, encode, prefixed_id, trailing_id};
use crate::{DeadLetterRecord, ExecutionRecord, ExecutionStatus, FlowStore, Op, Page, PageRequest, Result};
use plugboard_runtime::flow::FlowDefinition;

fn webhook_secret_key(flow: &str) -> String {
    format!("flow\0{flow}")
}

impl SledStore {
    /// Plain writes for a flow-area operation; dead letters get their id here.
    pub(super) fn flow_writes(&self, op: Op, writes: &mut Vec<Write>) -> Result<()> {
        use crate::Storage;
        match op {
            Op::PutFlow(flow) => writes.push(Write::put(Area::Flows, flow.name.as_str(), encode(&flow))),
            Op::RemoveFlow(name) => {
                writes.push(Write::remove(Area::Flows, name.as_str()));
                writes.push(Write::remove(Area::Secrets, webhook_secret_key(&name)));
                writes.push(Write::remove(Area::Meta, format!("cursor\0{name}")));
                // Delivery marks stay until their window closes (the sweep forgets them): a flow
                // re-created under the name with the same secret must still refuse the replay of
                // a delivery the old one accepted.
            }
            Op::PutWebhookSecret { flow, secret } => {
                let key = webhook_secret_key(&flow);
                let sealed = self.seal_secret(key.as_bytes(), secret.as_bytes())?;
                writes.push(Write::put(Area::Secrets, key, sealed));
            }
            Op::PutExecution(execution) => {
                let id = execution.id.to_be_bytes();
                writes.push(Write::put(Area::ExecutionsByFlow, prefixed_id(&execution.flow, execution.id), Vec::new()));
                writes.push(if execution.status == ExecutionStatus::Running {
                    Write::put(Area::Running, id, Vec::new())
                } else {
                    Write::remove(Area::Running, id)
                });
                writes.push(Write::put(Area::Executions, id, encode(&execution)));
            }
            Op::PutDeadLetter(mut letter) => {
                if letter.id == 0 {
                    letter.id = self.next_id()?;
                }
                writes.push(Write::put(Area::Dlq, prefixed_id(&letter.flow, letter.id), encode(&letter)));
            }
            Op::RemoveDeadLetter { flow, id } => writes.push(Write::remove(Area::Dlq, prefixed_id(&flow, id))),
            _ => {}
        }
        Ok(())
    }
}

impl FlowStore for SledStore {
    fn flow(&self, name: &str) -> Result<Option<FlowDefinition>> {
        self.get(Area::Flows, "flows", name.as_bytes())
    }

    fn flows(&self) -> Result<Vec<FlowDefinition>> {
        self.tree(Area::Flows).iter().values().map(|v| decode("flows", &v.map_err(backend)?)).collect()
    }

    fn webhook_secret(&self, flow: &str) -> Result<Option<String>> {
        Ok(self.secret(webhook_secret_key(flow).as_bytes())?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn execution(&self, id: u64) -> Result<Option<ExecutionRecord>> {
        self.get(Area::Executions, "executions", &id.to_be_bytes())
    }

    fn executions_page(&self, flow: &str, page: PageRequest) -> Result<Page<ExecutionRecord>> {
        self.page(Area::ExecutionsByFlow, Some(flow), page, |key, _| {
            let execution = self.execution(trailing_id(key))?;
            if execution.is_none() {
                tracing::warn!(flow, id = trailing_id(key), "execution index entry without its record");
            }
            Ok(execution)
        })
    }

    fn running_executions(&self) -> Result<Vec<ExecutionRecord>> {
        let mut running = Vec::new();
        for key in self.tree(Area::Running).iter().keys() {
            if let Some(execution) = self.execution(trailing_id(&key.map_err(backend)?))? {
                running.push(execution);
            }
        }
        Ok(running)
    }

    fn dead_letters_page(&self, flow: &str, page: PageRequest) -> Result<Page<DeadLetterRecord>> {
        self.page(Area::Dlq, Some(flow), page, |_, value| decode("dlq", value).map(Some))
    }

    fn dead_letter_total(&self) -> Result<u64> {
        Ok(self.dead_letter_count())
    }

    fn dead_letter(&self, flow: &str, id: u64) -> Result<Option<DeadLetterRecord>> {
        self.get(Area::Dlq, "dlq", &prefixed_id(flow, id))
    }
}

#[cfg(test)]
mod tests {
    use crate::records::DeadLetterRecord;
    use crate::sled::SledStore;
    use crate::{Change, FlowStore, Op, Storage};
    use plugboard_runtime::flow::{DeadLetter, ErrorReport, StoredRecord};

    fn letter(id: u64) -> Op {
        let error = ErrorReport { code: "guest-error".into(), message: "no".into(), backtrace: Vec::new() };
        let record = StoredRecord { key: None, value: serde_json::json!({"n": id}), headers: Default::default() };
        let letter = DeadLetter { step: "s".into(), attempts: 1, error, reasons: Vec::new(), logs: Vec::new(), record };
        Op::PutDeadLetter(Box::new(DeadLetterRecord { id, ..DeadLetterRecord::new("f", 1, letter) }))
    }

    #[test]
    fn the_dead_letter_count_follows_every_change_and_survives_a_reopen() {
        let dir = std::env::temp_dir().join(format!("plugboard-dlq-count-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let open = || SledStore::open(&dir, crate::sealed::SecretsKey::ephemeral().unwrap()).unwrap();
        let store = open();
        store.apply(Change::new().with(letter(1)).with(letter(2)).with(letter(3))).unwrap();
        // Writing a letter again (a replay that failed the same way) and removing one that is gone
        // change nothing.
        store.apply(Change::new().with(letter(2))).unwrap();
        store.apply(Change::new().with(Op::RemoveDeadLetter { flow: "f".into(), id: 1 })).unwrap();
        store.apply(Change::new().with(Op::RemoveDeadLetter { flow: "f".into(), id: 1 })).unwrap();
        assert_eq!(store.dead_letter_total().unwrap(), 2);
        store.inner.db.flush().unwrap();
        drop(store);
        assert_eq!(open().dead_letter_total().unwrap(), 2, "counted again at open");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
