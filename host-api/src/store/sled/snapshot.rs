//! A replica's shared state as a list of entries, out and back in: what the cluster's snapshots
//! carry (`store::cluster::snapshot`), so a node joining a long-lived cluster starts from the
//! latest snapshot instead of replaying the whole change log.
//!
//! Every area but the ones a node keeps for itself in cluster mode (the plugins' key-value data
//! and usage counters, see the cluster store's docs) is exported, the meta area included: the
//! applied position and the replay marks travel with the state they describe, so a node that
//! imports a snapshot of sequence `S` and then applies the log from `S + 1` holds what a node that
//! applied every message holds.

use super::{AREAS, Area, SledStore, backend};
use crate::store::{Result, StoreError};
use std::sync::atomic::Ordering;

/// Areas a node keeps for itself in cluster mode.
const LOCAL: [Area; 2] = [Area::Kv, Area::Usage];

/// One exported entry: the area's index in [`AREAS`], the key, the value.
pub(crate) type Entry = (u8, Vec<u8>, Vec<u8>);

impl SledStore {
    /// Hands every entry of the shared areas to `sink`, area by area in key order. The caller
    /// keeps writers out while it runs (sled has no point-in-time reads).
    pub(crate) fn export_shared(&self, mut sink: impl FnMut(u8, &[u8], &[u8]) -> Result<()>) -> Result<()> {
        for (index, (area, _)) in AREAS.iter().enumerate() {
            if LOCAL.contains(area) {
                continue;
            }
            let index = u8::try_from(index).unwrap_or(u8::MAX);
            for entry in self.tree(*area).iter() {
                let (key, value) = entry.map_err(backend)?;
                sink(index, &key, &value)?;
            }
        }
        Ok(())
    }

    /// Writes exported entries into this store, one batch per area. A shared area index that
    /// does not exist, or a local one, is refused: a snapshot names only what it may carry.
    pub(crate) fn import_entries(&self, entries: Vec<Entry>) -> Result<()> {
        let mut batches: Vec<::sled::Batch> = (0..AREAS.len()).map(|_| ::sled::Batch::default()).collect();
        for (index, key, value) in entries {
            let area = AREAS.get(usize::from(index)).map(|(area, _)| *area);
            let Some(area) = area.filter(|area| !LOCAL.contains(area)) else {
                return Err(StoreError::Corrupt { area: "snapshot", detail: format!("an entry of area {index}") });
            };
            batches[area as usize].insert(key, value);
        }
        for ((area, _), batch) in AREAS.iter().zip(batches) {
            self.tree(*area).apply_batch(batch).map_err(backend)?;
        }
        Ok(())
    }

    /// Empties every shared area (a snapshot that failed halfway leaves nothing behind) and
    /// counts the dead letters again (an import adds them behind `apply`'s back).
    pub(crate) fn clear_shared(&self) -> Result<()> {
        for (area, _) in AREAS.iter().filter(|(area, _)| !LOCAL.contains(area)) {
            self.tree(*area).clear().map_err(backend)?;
        }
        self.recount();
        Ok(())
    }

    /// Counts the dead letters again, after an import.
    pub(crate) fn recount(&self) {
        self.inner.dead_letters.store(self.tree(Area::Dlq).len() as u64, Ordering::Relaxed);
    }

    /// Writes everything to disk now.
    pub(crate) fn flush_now(&self) -> Result<()> {
        self.inner.db.flush().map(|_| ()).map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sealed::SecretsKey;
    use crate::store::{AuditAction, AuditEntry, Change, Op, Storage};

    #[test]
    fn shared_state_travels_and_local_state_stays() {
        let key = SecretsKey::ephemeral().expect("key");
        let (from_dir, to_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
        let from = SledStore::open(from_dir.path(), key.clone()).expect("open");
        let change =
            Change::new().with(Op::Applied(42)).audit(AuditEntry::new("tester", AuditAction::TokenCreate, "t"));
        Storage::apply(&from, change).expect("apply");
        from.tree(Area::Usage).insert("local", "counter").expect("insert");
        let mut entries = Vec::new();
        from.export_shared(|area, key, value| {
            entries.push((area, key.to_vec(), value.to_vec()));
            Ok(())
        })
        .expect("export");
        let to = SledStore::open(to_dir.path(), key).expect("open");
        to.import_entries(entries).expect("import");
        assert_eq!(to.cluster_applied().expect("applied"), 42);
        assert_eq!(to.tree(Area::Audit).len(), 1);
        assert!(to.tree(Area::Usage).is_empty(), "usage counters are the node's own");
        let local = u8::try_from(Area::Kv as usize).expect("index");
        assert!(to.import_entries(vec![(local, b"k".to_vec(), b"v".to_vec())]).is_err());
        assert!(to.import_entries(vec![(200, b"k".to_vec(), b"v".to_vec())]).is_err());
        to.clear_shared().expect("clear");
        assert_eq!(to.cluster_applied().expect("applied"), 0);
    }
}
