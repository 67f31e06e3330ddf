//! Components built against an earlier contract (`plugboard:plugin@0.1.0`), called unchanged.
//!
//! A plugin signed and installed last year must not stop working because the host learned a new
//! error case. Spin and wasmCloud keep their old worlds beside the new ones; so does Plugboard:
//! the 0.1.0 WIT stays, pinned, at `wit/earlier/plugboard-plugin-0.1.0.wit`, and this module calls a
//! component that exports `plugboard:plugin/<interface>@0.1.0`.
//!
//! The two contracts differ only in `plugin-error` (0.2.0 adds `retry-after`), so records, pages
//! and write reports cross with the current types: the component model checks types by
//! structure, and a 0.1.0 `record` *is* a 0.2.0 `record`. Only the error is lifted with the 0.1.0
//! bindings and then converted, losslessly, since every 0.1.0 case is a 0.2.0 case. Nothing is
//! copied beyond what a current plugin's call copies.
//!
//! The export is looked up and its signature checked once, when the plugin loads, so a component
//! whose 0.1.0 export has another shape is refused as `invalid-component` at upload.

use crate::bindings::sink::exports::plugboard::plugin::writer::WriteReport as WitWriteReport;
use crate::bindings::source::exports::plugboard::plugin::reader::ReadResult;
use crate::error::{Error, Result};
use crate::manifest::{Contract, Kind};
use crate::record::{Batch, Page, PluginError, Record, RecordIssue, WriteReport};
use crate::state::InvocationState;
use wasmtime::Store;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{ComponentExportIndex, ComponentNamedList, InstancePre, Lift, Lower, TypedFunc};

#[allow(missing_docs, clippy::all)]
mod v0_1 {
    wasmtime::component::bindgen!({
        path: ["../wit", "../wit/earlier/plugboard-plugin-0.1.0.wit"],
        world: "plugboard:plugin/transformer@0.1.0",
        exports: { default: async },
        with: {
            "wasi:logging/logging": crate::bindings::logging,
            "wasi:config/store": crate::bindings::config_store,
            "wasi:keyvalue/store": crate::bindings::keyvalue_store,
        },
    });
}

/// The 0.1.0 `plugin-error`.
type EarlierError = v0_1::plugboard::plugin0_1_0::types::PluginError;

/// A pre-instantiated component of an earlier contract, with its entry point found.
#[derive(Clone)]
pub(crate) struct EarlierPre {
    pre: InstancePre<InvocationState>,
    kind: Kind,
    contract: Contract,
    entry: ComponentExportIndex,
}

impl EarlierPre {
    /// Finds `kind`'s entry point at `contract` in the linked component.
    ///
    /// # Errors
    /// [`Error::InvalidComponent`] when the component lacks it.
    pub(crate) fn new(pre: InstancePre<InvocationState>, kind: Kind, contract: Contract) -> Result<EarlierPre> {
        let interface = kind.export_at(contract);
        let component = pre.component();
        let found = component
            .get_export_index(None, &interface)
            .and_then(|instance| component.get_export(Some(&instance), kind.function()));
        let Some((ComponentItem::ComponentFunc(func), entry)) = found else {
            return Err(Error::invalid_component(format!("`{interface}` exports no `{}` function", kind.function())));
        };
        // Checked now, as bindgen's own `*Pre::new` checks current components: a component whose
        // export has another shape is refused at upload, not at every call.
        let cx = pre.instance_type();
        let checked = match kind {
            Kind::Transformer => func.typecheck::<(&[Record],), (std::result::Result<Batch, EarlierError>,)>(&cx),
            Kind::Source => {
                func.typecheck::<(Option<&str>, u32), (std::result::Result<ReadResult, EarlierError>,)>(&cx)
            }
            Kind::Sink => func.typecheck::<(&[Record],), (std::result::Result<WitWriteReport, EarlierError>,)>(&cx),
        };
        checked.map_err(|err| {
            Error::invalid_component(format!(
                "`{interface}` `{}` does not have the {} contract's signature: {err:#}",
                kind.function(),
                contract.as_str()
            ))
        })?;
        Ok(EarlierPre { pre, kind, contract, entry })
    }

    /// The kind of plugin it is.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// The contract it was built against.
    pub(crate) fn contract(&self) -> Contract {
        self.contract
    }

    /// Instantiates it in `store` and drops the instance.
    pub(crate) async fn instantiate(&self, store: &mut Store<InvocationState>) -> wasmtime::Result<()> {
        self.pre.instantiate_async(store).await.map(drop)
    }

    /// Calls `transform`.
    pub(crate) async fn transform(
        &self,
        store: &mut Store<InvocationState>,
        input: &[Record],
    ) -> wasmtime::Result<std::result::Result<Batch, PluginError>> {
        let (result,) = self.call::<(&[Record],), (std::result::Result<Batch, EarlierError>,)>(store, (input,)).await?;
        Ok(result.map_err(current))
    }

    /// Calls `read`.
    pub(crate) async fn read(
        &self,
        store: &mut Store<InvocationState>,
        cursor: Option<&str>,
        max_records: u32,
    ) -> wasmtime::Result<std::result::Result<Page, PluginError>> {
        let (result,) = self
            .call::<(Option<&str>, u32), (std::result::Result<ReadResult, EarlierError>,)>(store, (cursor, max_records))
            .await?;
        Ok(result.map(|page| Page { records: page.records, next_cursor: page.next_cursor }).map_err(current))
    }

    /// Calls `write`.
    pub(crate) async fn write(
        &self,
        store: &mut Store<InvocationState>,
        input: &[Record],
    ) -> wasmtime::Result<std::result::Result<WriteReport, PluginError>> {
        let (result,) =
            self.call::<(&[Record],), (std::result::Result<WitWriteReport, EarlierError>,)>(store, (input,)).await?;
        Ok(result.map(|report| WriteReport { accepted: report.accepted, failed: report.failed }).map_err(current))
    }

    async fn call<Params, Results>(
        &self,
        store: &mut Store<InvocationState>,
        params: Params,
    ) -> wasmtime::Result<Results>
    where
        Params: ComponentNamedList + Lower + Send + Sync,
        Results: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let instance = self.pre.instantiate_async(&mut *store).await?;
        let func: TypedFunc<Params, Results> = instance.get_typed_func(&mut *store, self.entry)?;
        func.call_async(&mut *store, params).await
    }
}

/// The current `plugin-error` for a 0.1.0 one: the same case, the same payload.
fn current(error: EarlierError) -> PluginError {
    match error {
        EarlierError::InvalidInput(issues) => PluginError::InvalidInput(
            issues.into_iter().map(|issue| RecordIssue { index: issue.index, reasons: issue.reasons }).collect(),
        ),
        EarlierError::InvalidConfig(message) => PluginError::InvalidConfig(message),
        EarlierError::Retryable(message) => PluginError::Retryable(message),
        EarlierError::Denied(message) => PluginError::Denied(message),
        EarlierError::Internal(message) => PluginError::Internal(message),
    }
}
