//! Loading: from component bytes plus a manifest and a grant to a ready-to-invoke [`Plugin`].
//!
//! The loader takes the manifest and grant from its caller, so signature verification (which
//! extracts a signed manifest from the file) runs before it and hands it only verified input.
//! Loading validates the bytes, compiles once (or loads the verified cached artifact), checks that
//! the component implements the manifest's world and needs no import Plugboard does not provide,
//! and keeps an `InstancePre` so each invocation only instantiates.

use crate::bindings::{sink::SinkPre, source::SourcePre, transformer::TransformerPre};
use crate::engine::{Runtime, Shared};
use crate::error::{Error, Result};
use crate::grant::{Effective, Grant};
use crate::manifest::{Contract, Kind, Manifest};
use crate::signing::{self, TrustStore, VerifyOptions};
use crate::state::InvocationState;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use wasmtime::component::Component;

/// The version header of a WebAssembly core module and of a component (after `\0asm`).
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0, 1, 0];

/// The world-specific pre-instantiated component.
#[derive(Clone)]
pub(crate) enum Pre {
    Transformer(TransformerPre<InvocationState>),
    Source(SourcePre<InvocationState>),
    Sink(SinkPre<InvocationState>),
    /// Any kind, built against an earlier contract.
    Earlier(crate::earlier::EarlierPre),
}

/// How a load was satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    /// Compiled from the component bytes.
    Compiled,
    /// Loaded from the verified artifact cache.
    Cached,
}

pub(crate) struct PluginInner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) manifest: Manifest,
    pub(crate) digest: String,
    pub(crate) effective: Arc<Effective>,
    pub(crate) pre: Pre,
    pub(crate) compile_source: CompileSource,
    pub(crate) signer: Option<String>,
}

/// A loaded plugin, ready to invoke concurrently. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
    /// Where this handle's invocations keep key-value state, when not the runtime's store (a
    /// flow execution's [`StagedKeyValue`](crate::StagedKeyValue)).
    pub(crate) key_value: Option<Arc<dyn crate::KeyValueStore>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.manifest.name)
            .field("version", &self.inner.manifest.version.to_string())
            .field("digest", &self.inner.digest)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// The manifest it was loaded with.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// Hex SHA-256 of the component bytes.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// The capabilities and budget it runs with.
    pub fn effective(&self) -> &Effective {
        &self.inner.effective
    }

    /// The same compiled plugin under another grant (new capabilities, config and budget); cheap,
    /// nothing is recompiled. Invocations already running keep the grant they started with.
    pub fn regrant(&self, grant: &Grant) -> Plugin {
        let inner = &self.inner;
        let effective = Arc::new(Effective::new(&inner.manifest, grant, inner.shared.config.caps));
        Plugin {
            inner: Arc::new(PluginInner {
                shared: inner.shared.clone(),
                manifest: inner.manifest.clone(),
                digest: inner.digest.clone(),
                effective,
                pre: inner.pre.clone(),
                compile_source: inner.compile_source,
                signer: inner.signer.clone(),
            }),
            key_value: self.key_value.clone(),
        }
    }

    /// The same plugin with its key-value state read from and committed to `store` instead of
    /// the runtime's (a flow execution stages its writes this way); cheap, nothing is recompiled.
    pub fn with_key_value(&self, store: Arc<dyn crate::KeyValueStore>) -> Plugin {
        Plugin { inner: self.inner.clone(), key_value: Some(store) }
    }

    /// Id of the publisher key that signed it; `None` when loaded unsigned.
    pub fn signer(&self) -> Option<&str> {
        self.inner.signer.as_deref()
    }

    /// The contract the component was built against.
    pub fn contract(&self) -> Contract {
        match &self.inner.pre {
            Pre::Earlier(pre) => pre.contract(),
            _ => Contract::CURRENT,
        }
    }

    /// Whether this load compiled or came from the artifact cache.
    pub fn compile_source(&self) -> CompileSource {
        self.inner.compile_source
    }
}

/// Hex SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Runtime {
    /// Loads `bytes` as the plugin `manifest` describes, with the operator's `grant`, without any
    /// signature check: for tools and tests that hold a manifest they trust. Hosts load plugins with
    /// [`Runtime::load_signed`].
    ///
    /// Compilation is CPU-heavy; async callers should run this on a blocking thread.
    ///
    /// # Errors
    /// - [`Error::ManifestInvalid`] for a manifest that fails validation;
    /// - [`Error::InvalidComponent`] for bytes that are not a component (a core module, truncated,
    ///   invalid) or one that imports an interface Plugboard does not provide;
    /// - [`Error::WorldMismatch`] for a component that does not implement the manifest's world or
    ///   imports what that world does not offer;
    /// - [`Error::Internal`] when the artifact cache cannot be written.
    pub fn load(&self, bytes: &[u8], manifest: Manifest, grant: &Grant) -> Result<Plugin> {
        self.load_with_signer(bytes, manifest, grant, None)
    }

    /// Verifies a signed plugin file against `trust`, then loads it with its signed manifest.
    ///
    /// This is how plugins are meant to be loaded: nothing runs unless a trusted key signed it
    /// (or `options` explicitly allows unsigned files, for plugin development).
    ///
    /// # Errors
    /// [`Error::Signature`] when verification fails, and everything [`Runtime::load`] returns.
    pub fn load_signed(
        &self,
        file: &[u8],
        trust: &TrustStore,
        grant: &Grant,
        options: VerifyOptions,
    ) -> Result<Plugin> {
        let verified = signing::verify(file, trust, options)?;
        self.load_with_signer(file, verified.manifest, grant, verified.key_id)
    }

    fn load_with_signer(
        &self,
        bytes: &[u8],
        manifest: Manifest,
        grant: &Grant,
        signer: Option<String>,
    ) -> Result<Plugin> {
        manifest.validate()?;
        check_header(bytes)?;
        // Before compiling: a component for the wrong world is refused in milliseconds, not after
        // the seconds a large one takes to compile.
        let inspection = signing::inspect(bytes)?;
        let contract = crate::world::check(&inspection.imports, &inspection.exports, manifest.kind)?;
        if manifest.world.is_some() && manifest.contract() != Some(contract) {
            return Err(Error::WorldMismatch {
                manifest: manifest.kind,
                component: Some(manifest.kind),
                found: format!(
                    "implements `{}`, while the manifest names `{}`",
                    manifest.kind.world_at(contract),
                    manifest.world()
                ),
            });
        }
        let shared = &self.shared;
        let digest = inspection.digest;
        let _claim = shared.cache.as_ref().and_then(|cache| cache.claim(&digest));
        let cached = shared.cache.as_ref().and_then(|cache| cache.load(&shared.engine, &digest));
        let (component, compile_source) = match cached {
            Some(component) => (component, CompileSource::Cached),
            None => (self.compile(bytes, &digest)?, CompileSource::Compiled),
        };
        let pre = self.pre_instantiate(&component, manifest.kind, contract)?;
        let effective = Arc::new(Effective::new(&manifest, grant, shared.config.caps));
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                shared: shared.clone(),
                manifest,
                digest,
                effective,
                pre,
                compile_source,
                signer,
            }),
            key_value: None,
        })
    }

    fn compile(&self, bytes: &[u8], digest: &str) -> Result<Component> {
        let shared = &self.shared;
        let Some(cache) = &shared.cache else {
            return Component::new(&shared.engine, bytes).map_err(|err| Error::invalid_component(format!("{err:#}")));
        };
        let compiled =
            shared.engine.precompile_component(bytes).map_err(|err| Error::invalid_component(format!("{err:#}")))?;
        cache.store(digest, &compiled)?;
        cache
            .load(&shared.engine, digest)
            .ok_or_else(|| Error::internal("compiled artifact did not read back from the cache"))
    }

    fn pre_instantiate(&self, component: &Component, kind: Kind, contract: Contract) -> Result<Pre> {
        let instance_pre = self
            .shared
            .linker
            .instantiate_pre(component)
            .map_err(|err| Error::invalid_component(format!("cannot link: {err:#}")))?;
        let wrong_shape =
            |err: wasmtime::Error| Error::invalid_component(format!("export has the wrong shape: {err:#}"));
        if contract != Contract::CURRENT {
            return Ok(Pre::Earlier(crate::earlier::EarlierPre::new(instance_pre, kind, contract)?));
        }
        Ok(match kind {
            Kind::Transformer => Pre::Transformer(TransformerPre::new(instance_pre).map_err(wrong_shape)?),
            Kind::Source => Pre::Source(SourcePre::new(instance_pre).map_err(wrong_shape)?),
            Kind::Sink => Pre::Sink(SinkPre::new(instance_pre).map_err(wrong_shape)?),
        })
    }
}

fn check_header(bytes: &[u8]) -> Result<()> {
    if bytes.is_empty() {
        return Err(Error::invalid_component("the file is empty"));
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(Error::invalid_component("not a WebAssembly binary (no `\\0asm` header)"));
    }
    match <[u8; 4]>::try_from(&bytes[4..8]) {
        Ok(CORE_MODULE_VERSION) => Err(Error::invalid_component(
            "a core WebAssembly module, not a component; build plugins with `cargo build --target wasm32-wasip2`",
        )),
        Ok(COMPONENT_VERSION) => Ok(()),
        _ => Err(Error::invalid_component("unsupported WebAssembly binary version")),
    }
}
