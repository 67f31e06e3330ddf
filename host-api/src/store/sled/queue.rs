//! Queued work (with its per-flow index), source cursors and webhook delivery marks.

use super::{Area, SledStore, Write, backend, encode, prefixed_id, trailing_id};
use crate::store::{Op, QueueStore, QueuedRun, Result};
use std::collections::BTreeMap;

/// Field `index` (0: expiry, 1: queued run id) of a delivery mark, two big-endian `u64`s.
fn mark_field(mark: &[u8], index: usize) -> u64 {
    mark.get(index * 8..index * 8 + 8).and_then(|bytes| bytes.try_into().ok()).map_or(0, u64::from_be_bytes)
}

impl SledStore {
    /// Plain writes for a queue-area operation.
    pub(super) fn queue_writes(&self, op: Op, writes: &mut Vec<Write>) -> Result<()> {
        match op {
            Op::Enqueue(run) => {
                writes.push(Write::put(Area::QueueByFlow, prefixed_id(&run.flow, run.id), Vec::new()));
                writes.push(Write::put(Area::Queue, run.id.to_be_bytes(), encode(&run)));
            }
            Op::Dequeue { flow, id } => {
                writes.push(Write::remove(Area::QueueByFlow, prefixed_id(&flow, id)));
                writes.push(Write::remove(Area::Queue, id.to_be_bytes()));
            }
            Op::PutCursor { flow, cursor: Some(cursor) } => {
                writes.push(Write::put(Area::Meta, format!("cursor\0{flow}"), cursor));
            }
            Op::PutCursor { flow, cursor: None } => writes.push(Write::remove(Area::Meta, format!("cursor\0{flow}"))),
            _ => {}
        }
        Ok(())
    }
}

impl QueueStore for SledStore {
    fn queued_ids(&self, flow: &str, cursor: Option<u64>, limit: usize) -> Result<Vec<u64>> {
        let prefix = format!("{flow}\0").into_bytes();
        let start = match cursor {
            Some(after) => prefixed_id(flow, after.saturating_add(1)),
            None => prefix.clone(),
        };
        let mut ids = Vec::new();
        for key in self.tree(Area::QueueByFlow).range(start..).keys() {
            let key = key.map_err(backend)?;
            if !key.starts_with(&prefix) || ids.len() == limit {
                break;
            }
            ids.push(trailing_id(&key));
        }
        Ok(ids)
    }

    fn queued_run(&self, id: u64) -> Result<Option<QueuedRun>> {
        self.get(Area::Queue, "queue", &id.to_be_bytes())
    }

    fn queue_depths(&self) -> Result<BTreeMap<String, usize>> {
        let mut depths = BTreeMap::new();
        for key in self.tree(Area::QueueByFlow).iter().keys() {
            let key = key.map_err(backend)?;
            let flow = key.len().checked_sub(9).and_then(|end| key.get(..end)).unwrap_or_default();
            *depths.entry(String::from_utf8_lossy(flow).into_owned()).or_insert(0) += 1;
        }
        Ok(depths)
    }

    fn enqueue_once(&self, run: &QueuedRun, signature: &[u8], expires_at: u64) -> Result<(u64, bool)> {
        use ::sled::Transactional;
        use ::sled::transaction::TransactionError;
        let mut key = format!("{}\0", run.flow).into_bytes();
        key.extend_from_slice(signature);
        let mut mark = expires_at.to_be_bytes().to_vec();
        mark.extend_from_slice(&run.id.to_be_bytes());
        let run_bytes = encode(run);
        let index_key = prefixed_id(&run.flow, run.id);
        let trees = (self.tree(Area::Deliveries), self.tree(Area::Queue), self.tree(Area::QueueByFlow));
        let outcome = trees.transaction(|(deliveries, queue, by_flow)| {
            if let Some(earlier) = deliveries.get(&key)? {
                return Ok((mark_field(&earlier, 1), false));
            }
            deliveries.insert(key.as_slice(), mark.as_slice())?;
            queue.insert(&run.id.to_be_bytes(), run_bytes.as_slice())?;
            by_flow.insert(index_key.as_slice(), &[][..])?;
            Ok((run.id, true))
        });
        outcome.map_err(|err: TransactionError<std::convert::Infallible>| match err {
            TransactionError::Storage(err) => backend(err),
            TransactionError::Abort(never) => match never {},
        })
    }

    fn sweep_delivery_marks(&self, now: u64) -> Result<usize> {
        let deliveries = self.tree(Area::Deliveries);
        let mut swept = 0;
        for entry in deliveries.iter() {
            let (key, mark) = entry.map_err(backend)?;
            if mark_field(&mark, 0) < now {
                deliveries.remove(key).map_err(backend)?;
                swept += 1;
            }
        }
        Ok(swept)
    }

    fn cursor(&self, flow: &str) -> Result<Option<String>> {
        Ok(self
            .tree(Area::Meta)
            .get(format!("cursor\0{flow}"))
            .map_err(backend)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}
