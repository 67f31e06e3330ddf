//! Publisher keys, API tokens, connections and the audit log: their trees and writes.

use super::{Area, SledStore, Write, backend, decode, encode};
use crate::{AccessStore, AuditEntry, AuditFilter, Op, Page, PageRequest, Result, TokenRecord};
use plugboard_runtime::signing::TrustStore;

/// Connections live in the secrets tree (sealed like every secret), under this prefix.
const CONNECTION_PREFIX: &[u8] = b"connection\0";

fn connection_key(name: &str) -> String {
    format!("connection\0{name}")
}

impl SledStore {
    /// Plain writes for an access-area operation; audit entries get their id here (unless set).
    pub(super) fn access_writes(&self, op: Op, writes: &mut Vec<Write>) -> Result<()> {
        use crate::Storage;
        match op {
            Op::PutTrust(trust) => writes.push(Write::put(Area::Meta, "trust", encode(&trust))),
            Op::PutTokens(tokens) => writes.push(Write::put(Area::Meta, "tokens", encode(&tokens))),
            Op::PutConnection { name, definition } => {
                let key = connection_key(&name);
                let sealed = self.seal_secret(key.as_bytes(), definition.as_bytes())?;
                writes.push(Write::put(Area::Secrets, key, sealed));
            }
            Op::RemoveConnection(name) => writes.push(Write::remove(Area::Secrets, connection_key(&name))),
            Op::Audit(mut entry) => {
                // The cluster backend assigns ids before a change reaches its replicas.
                if entry.id == 0 {
                    entry.id = self.next_id()?;
                }
                writes.push(Write::put(Area::Audit, entry.id.to_be_bytes(), encode(&entry)));
            }
            _ => {}
        }
        Ok(())
    }
}

impl AccessStore for SledStore {
    fn trust(&self) -> Result<TrustStore> {
        Ok(self.get(Area::Meta, "meta", b"trust")?.unwrap_or_default())
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        Ok(self.get(Area::Meta, "meta", b"tokens")?.unwrap_or_default())
    }

    fn connections(&self) -> Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        for entry in self.tree(Area::Secrets).scan_prefix(CONNECTION_PREFIX) {
            let (key, _) = entry.map_err(backend)?;
            let Some(definition) = self.secret(&key)? else { continue };
            let name = String::from_utf8_lossy(&key[CONNECTION_PREFIX.len()..]).into_owned();
            found.push((name, String::from_utf8_lossy(&definition).into_owned()));
        }
        Ok(found)
    }

    fn audit_page(&self, page: PageRequest, filter: &AuditFilter) -> Result<Page<AuditEntry>> {
        self.page(Area::Audit, None, page, |_, value| {
            let entry: AuditEntry = decode("audit", value)?;
            Ok(filter.matches(&entry).then_some(entry))
        })
    }
}
