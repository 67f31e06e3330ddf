//! Publisher keys, API tokens and the audit log: their trees and writes.

use super::{Area, SledStore, Write, decode, encode};
use crate::store::{AccessStore, AuditEntry, AuditFilter, Op, Page, PageRequest, Result, TokenRecord};
use plugboard_runtime::signing::TrustStore;

impl SledStore {
    /// Plain writes for an access-area operation; audit entries get their id here (unless set).
    pub(super) fn access_writes(&self, op: Op, writes: &mut Vec<Write>) -> Result<()> {
        use crate::store::Storage;
        match op {
            Op::PutTrust(trust) => writes.push(Write::put(Area::Meta, "trust", encode(&trust))),
            Op::PutTokens(tokens) => writes.push(Write::put(Area::Meta, "tokens", encode(&tokens))),
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

    fn audit_page(&self, page: PageRequest, filter: &AuditFilter) -> Result<Page<AuditEntry>> {
        self.page(Area::Audit, None, page, |_, value| {
            let entry: AuditEntry = decode("audit", value)?;
            Ok(filter.matches(&entry).then_some(entry))
        })
    }
}
