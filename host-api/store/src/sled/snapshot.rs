//! A replica's shared state as a list of entries, out and back in: what the cluster's snapshots
//! carry (`store::cluster::snapshot`), so a node joining a long-lived cluster starts from the
//! latest snapshot instead of replaying the whole change log.
//!
//! Every area is exported — the plugins' key-value data too, which the change log shares like the
//! rest — the meta area included: the applied position and the replay marks travel with the state they describe, so a node that
//! imports a snapshot of sequence `S` and then applies the log from `S + 1` holds what a node that
//! applied every message holds.
//!
//! Entries name their area by its tree name, so a snapshot stays readable however the areas are
//! ordered. The applied position is held back while a snapshot is imported and written last,
//! after everything else is on disk: a node that stops halfway finds an applied position of 0 at
//! its next start, empties the shared areas and imports again.

use super::{APPLIED_KEY, AREAS, Area, SledStore, backend};
use crate::{Result, StoreError};
use std::sync::atomic::Ordering;

/// One exported entry: the area's tree name, the key, the value.
pub(crate) type Entry = (String, Vec<u8>, Vec<u8>);

impl SledStore {
    /// Hands every entry of the shared areas to `sink`, area by area in key order. The caller
    /// keeps writers out while it runs (sled has no point-in-time reads).
    pub(crate) fn export_shared(&self, mut sink: impl FnMut(&str, &[u8], &[u8]) -> Result<()>) -> Result<()> {
        for (area, name) in AREAS {
            for entry in self.tree(area).iter() {
                let (key, value) = entry.map_err(backend)?;
                sink(name, &key, &value)?;
            }
        }
        Ok(())
    }

    /// Writes exported entries into this store, one batch per area, all but the applied position,
    /// which it answers (if among them) for [`SledStore::finish_import`]. An area that does not
    /// exist is refused.
    pub(crate) fn import_entries(&self, entries: Vec<Entry>) -> Result<Option<u64>> {
        let mut batches: Vec<::sled::Batch> = (0..AREAS.len()).map(|_| ::sled::Batch::default()).collect();
        let mut applied = None;
        for (name, key, value) in entries {
            let area = AREAS.iter().find(|(_, known)| *known == name).map(|(area, _)| *area);
            let Some(area) = area else {
                return Err(StoreError::Corrupt { area: "snapshot", detail: format!("an entry of area {name:?}") });
            };
            if area == Area::Meta && key == APPLIED_KEY {
                applied = Some(value.as_slice().try_into().map(u64::from_be_bytes).map_err(|_| {
                    StoreError::Corrupt { area: "snapshot", detail: "an applied position that is no number".into() }
                })?);
                continue;
            }
            batches[area as usize].insert(key, value);
        }
        for ((area, _), batch) in AREAS.iter().zip(batches) {
            self.tree(*area).apply_batch(batch).map_err(backend)?;
        }
        Ok(applied)
    }

    /// Ends an import: everything imported on disk, then the applied position `seq`, on disk too.
    pub(crate) fn finish_import(&self, seq: u64) -> Result<()> {
        self.flush_now()?;
        self.tree(Area::Meta).insert(APPLIED_KEY, &seq.to_be_bytes()).map_err(backend)?;
        self.recount();
        self.flush_now()
    }

    /// Empties every shared area, on disk (what an import that stopped halfway left is gone),
    /// and counts the dead letters again.
    pub(crate) fn clear_shared(&self) -> Result<()> {
        for (area, _) in AREAS {
            self.tree(area).clear().map_err(backend)?;
        }
        self.recount();
        self.flush_now()
    }

    /// Counts the dead letters again, and the key-value quota usage at its next use, after an
    /// import.
    pub(crate) fn recount(&self) {
        self.inner.dead_letters.store(self.tree(Area::Dlq).len() as u64, Ordering::Relaxed);
        if let Some(key_value) = self.inner.key_value.get() {
            key_value.forget_all_usage();
        }
    }

    /// Writes everything to disk now.
    pub(crate) fn flush_now(&self) -> Result<()> {
        self.inner.db.flush().map(|_| ()).map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed::SecretsKey;
    use crate::{AuditAction, AuditEntry, Change, Op, Storage};

    #[test]
    fn every_area_travels_and_only_known_ones_are_taken() {
        let key = SecretsKey::ephemeral().expect("key");
        let (from_dir, to_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
        let from = SledStore::open(from_dir.path(), key.clone()).expect("open");
        let change =
            Change::new().with(Op::Applied(42)).audit(AuditEntry::new("tester", AuditAction::TokenCreate, "t"));
        Storage::apply(&from, change).expect("apply");
        from.tree(Area::Kv).insert("p\0b\0k", "data").expect("insert");
        let mut entries = Vec::new();
        from.export_shared(|area, key, value| {
            entries.push((area.to_string(), key.to_vec(), value.to_vec()));
            Ok(())
        })
        .expect("export");
        let to = SledStore::open(to_dir.path(), key).expect("open");
        assert_eq!(to.import_entries(entries).expect("import"), Some(42), "the applied position is answered");
        assert_eq!(to.cluster_applied().expect("applied"), 0, "held back until the import ends");
        to.finish_import(42).expect("finish");
        assert_eq!(to.cluster_applied().expect("applied"), 42);
        assert_eq!(to.tree(Area::Audit).len(), 1);
        assert_eq!(to.key_value().get("p", "b", "k").ok(), Some(Some(b"data".to_vec())), "key-value data travels");
        assert_eq!(to.key_value().usage("p").map(|u| u.keys).ok(), Some(1));
        assert!(to.import_entries(vec![("nonsense".into(), b"k".to_vec(), b"v".to_vec())]).is_err());
        to.clear_shared().expect("clear");
        assert_eq!(to.cluster_applied().expect("applied"), 0);
        assert_eq!(to.key_value().usage("p").map(|u| u.keys).ok(), Some(0), "counted again after a clear");
    }
}
