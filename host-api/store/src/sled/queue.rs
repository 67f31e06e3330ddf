//! Queued work (with its per-flow index), source cursors and webhook delivery marks.

use super::{Area, SledStore, Write, backend, encode, prefixed_id, trailing_id};
use crate::{Op, QueueStore, QueuedRun, Result};
use std::collections::BTreeMap;

/// Field `index` (0: expiry, 1: queued run id) of a delivery mark, two big-endian `u64`s.
fn mark_field(mark: &[u8], index: usize) -> u64 {
    mark.get(index * 8..index * 8 + 8).and_then(|bytes| bytes.try_into().ok()).map_or(0, u64::from_be_bytes)
}

/// The queued run a delivery mark names.
pub(super) fn mark_run(mark: &[u8]) -> u64 {
    mark_field(mark, 1)
}

/// Where the execution that ran queued run `id` of `flow` is noted (in the meta tree).
fn ran_key(flow: &str, id: u64) -> Vec<u8> {
    let mut key = format!("ran\0{flow}\0").into_bytes();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

impl SledStore {
    /// Plain writes for a queue-area operation.
    pub(super) fn queue_writes(&self, op: Op, writes: &mut Vec<Write>) -> Result<()> {
        match op {
            Op::Enqueue(run) => {
                writes.push(Write::put(Area::QueueByFlow, prefixed_id(&run.flow, run.id), Vec::new()));
                writes.push(Write::put(Area::Queue, run.id.to_be_bytes(), encode(&run)));
            }
            Op::Dequeue { flow, id, execution } => {
                writes.push(Write::remove(Area::QueueByFlow, prefixed_id(&flow, id)));
                writes.push(Write::remove(Area::Queue, id.to_be_bytes()));
                if let Some(execution) = execution {
                    writes.push(Write::put(Area::Meta, ran_key(&flow, id), execution.to_be_bytes().to_vec()));
                }
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

impl SledStore {
    /// The queued run that holds the delivery `signature` of `flow`, while its mark is kept.
    pub(crate) fn delivery_run(&self, flow: &str, signature: &[u8]) -> Result<Option<u64>> {
        let mut key = format!("{flow}\0").into_bytes();
        key.extend_from_slice(signature);
        Ok(self.tree(Area::Deliveries).get(key).map_err(backend)?.map(|mark| mark_field(&mark, 1)))
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

    fn ran_by(&self, flow: &str, id: u64) -> Result<Option<u64>> {
        let value = self.tree(Area::Meta).get(ran_key(flow, id)).map_err(backend)?;
        Ok(value.and_then(|v| v.as_ref().try_into().ok()).map(u64::from_be_bytes))
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
        // No sled transaction: they take sled's process-wide lock and serialise every request.
        // Order instead: (1) the run, (2) the mark, set only if absent, (3) the index entry that
        // makes workers see the run. sled recovers a prefix of its writes, so after a crash the
        // mark is never there without the run. At open (`migrate.rs`), an unindexed run that a
        // mark names is indexed (a retry was or will be answered "duplicate", so it must run) and
        // one no mark names is removed (nobody was answered; the retry queues it afresh). A
        // delivery that loses the race for the mark removes its run before any worker sees it.
        let mut key = format!("{}\0", run.flow).into_bytes();
        key.extend_from_slice(signature);
        let mut mark = expires_at.to_be_bytes().to_vec();
        mark.extend_from_slice(&run.id.to_be_bytes());
        let queue = self.tree(Area::Queue);
        queue.insert(run.id.to_be_bytes(), encode(run)).map_err(backend)?;
        let claimed = self.tree(Area::Deliveries).compare_and_swap(&key, None::<&[u8]>, Some(mark)).map_err(backend)?;
        if let Err(lost) = claimed {
            let earlier = lost.current.map_or(0, |mark| mark_field(&mark, 1));
            if earlier == run.id {
                // The same run again, not a repeated delivery: a cluster replica applying its log
                // again after a crash lost its position. Removing the run would lose it.
                self.tree(Area::QueueByFlow).insert(prefixed_id(&run.flow, run.id), Vec::new()).map_err(backend)?;
                return Ok((run.id, true));
            }
            queue.remove(run.id.to_be_bytes()).map_err(backend)?;
            return Ok((earlier, false));
        }
        self.tree(Area::QueueByFlow).insert(prefixed_id(&run.flow, run.id), Vec::new()).map_err(backend)?;
        Ok((run.id, true))
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
