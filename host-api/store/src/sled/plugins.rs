//! Plugins and blobs, grants, config and secrets, usage: their trees and writes.

use super::{Area, SledStore, Write, backend, decode, encode};
use crate::{Op, PluginOwner, PluginStore, Result, StoreError, UsageTotals, VersionRecord};
use plugboard_runtime::Grant;
use plugboard_runtime::signing::VersionFloor;
use std::collections::BTreeMap;

fn version_key(name: &str, version: &semver::Version) -> Vec<u8> {
    format!("{name}\0{version}").into_bytes()
}

fn owner_key(name: &str) -> String {
    format!("owner\0{name}")
}

impl SledStore {
    /// Plain writes for a plugin-area operation.
    pub(super) fn plugin_writes(&self, op: Op, writes: &mut Vec<Write>) -> Result<()> {
        match op {
            Op::PutBlob { digest, bytes } => writes.push(Write::put(Area::Blobs, digest, bytes)),
            Op::RemoveBlob(digest) => writes.push(Write::remove(Area::Blobs, digest)),
            Op::PutVersion(record) => {
                writes.push(Write::put(Area::Versions, version_key(&record.name, &record.version), encode(&record)));
            }
            Op::RemoveVersion { name, version } => {
                writes.push(Write::remove(Area::Versions, version_key(&name, &version)))
            }
            Op::SetActive { name, version: Some(version) } => {
                writes.push(Write::put(Area::Active, name, version.to_string()));
            }
            Op::SetActive { name, version: None } => writes.push(Write::remove(Area::Active, name)),
            Op::PutFloor(floor) => writes.push(Write::put(Area::Meta, "floor", encode(&floor))),
            Op::PutOwner { name, owner } => {
                writes.push(Write::put(Area::Meta, owner_key(&name), String::from(owner).into_bytes()))
            }
            Op::PutGrant { name, grant } => {
                let public = Grant { secrets: BTreeMap::new(), ..grant.clone() };
                writes.push(Write::put(Area::Grants, name.as_str(), encode(&public)));
                let sealed = self.seal_secret(name.as_bytes(), &encode(&grant.secrets))?;
                writes.push(Write::put(Area::Secrets, name, sealed));
            }
            Op::ForgetPlugin(name) => {
                for area in [Area::Active, Area::Grants, Area::Secrets, Area::Usage] {
                    writes.push(Write::remove(area, name.as_str()));
                }
                writes.push(Write::remove(Area::Meta, owner_key(&name)));
                for key in self.tree(Area::Kv).scan_prefix(format!("{name}\0").as_bytes()).keys() {
                    writes.push(Write::remove(Area::Kv, key.map_err(backend)?.to_vec()));
                }
            }
            // Read now and written with the batch: only the cluster's applier writes usage this way,
            // one plugin per change, so nothing changes the totals in between.
            Op::AddUsage { plugin, delta } => {
                let mut totals = self.usage(&plugin)?;
                totals.add(&delta);
                writes.push(Write::put(Area::Usage, plugin, encode(&totals)));
            }
            _ => {}
        }
        Ok(())
    }
}

impl PluginStore for SledStore {
    fn blob(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let Some(bytes) = self.tree(Area::Blobs).get(digest).map_err(backend)? else { return Ok(None) };
        if plugboard_runtime::digest(&bytes) != digest {
            return Err(StoreError::DigestMismatch(digest.to_string()));
        }
        Ok(Some(bytes.to_vec()))
    }

    fn blob_digests(&self) -> Result<Vec<String>> {
        self.tree(Area::Blobs)
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k.map_err(backend)?).into_owned()))
            .collect()
    }

    fn all_versions(&self) -> Result<Vec<VersionRecord>> {
        self.tree(Area::Versions).iter().values().map(|v| decode("versions", &v.map_err(backend)?)).collect()
    }

    fn versions(&self, name: &str) -> Result<Vec<VersionRecord>> {
        let mut versions: Vec<VersionRecord> = self
            .tree(Area::Versions)
            .scan_prefix(format!("{name}\0").as_bytes())
            .values()
            .map(|v| decode("versions", &v.map_err(backend)?))
            .collect::<Result<_>>()?;
        versions.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(versions)
    }

    fn version(&self, name: &str, version: &semver::Version) -> Result<Option<VersionRecord>> {
        self.get(Area::Versions, "versions", &version_key(name, version))
    }

    fn active(&self, name: &str) -> Result<Option<semver::Version>> {
        self.tree(Area::Active)
            .get(name)
            .map_err(backend)?
            .map(|v| {
                semver::Version::parse(&String::from_utf8_lossy(&v))
                    .map_err(|e| StoreError::Corrupt { area: "active", detail: e.to_string() })
            })
            .transpose()
    }

    fn floor(&self) -> Result<VersionFloor> {
        Ok(self.get(Area::Meta, "meta", b"floor")?.unwrap_or_default())
    }

    fn owner(&self, name: &str) -> Result<Option<PluginOwner>> {
        let owner = self.tree(Area::Meta).get(owner_key(name)).map_err(backend)?;
        Ok(owner.map(|bytes| PluginOwner::from(String::from_utf8_lossy(&bytes).into_owned())))
    }

    fn grant(&self, name: &str) -> Result<Grant> {
        let mut grant: Grant = self.get(Area::Grants, "grants", name.as_bytes())?.unwrap_or_default();
        grant.secrets = match self.secret(name.as_bytes())? {
            Some(bytes) => decode("secrets", &bytes)?,
            None => BTreeMap::new(),
        };
        Ok(grant)
    }

    fn usage(&self, name: &str) -> Result<UsageTotals> {
        Ok(self.get(Area::Usage, "usage", name.as_bytes())?.unwrap_or_default())
    }

    fn add_usage(&self, name: &str, delta: &UsageTotals) -> Result<()> {
        self.tree(Area::Usage)
            .fetch_and_update(name, |old| {
                let mut totals: UsageTotals = old.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
                totals.add(delta);
                Some(encode(&totals))
            })
            .map_err(backend)?;
        Ok(())
    }
}
