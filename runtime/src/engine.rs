//! The [`Runtime`]: one wasmtime engine, its linker and its artifact cache.
//!
//! Engine choices, and why:
//! - component model + async: plugins are components; invocations run on tokio and yield while a
//!   guest waits on HTTP or burns fuel, so one stuck plugin cannot starve the others;
//! - fuel: a deterministic bound on guest work; with `fuel_async_yield_interval` the guest also yields
//!   to the executor every [`FUEL_YIELD_INTERVAL`] units (well under a millisecond of guest code);
//! - the wall-clock deadline is an async timeout around the call: running guest code reaches a yield
//!   point within [`FUEL_YIELD_INTERVAL`] units and a guest waiting in a host call is pending, so
//!   the timeout stops both; a call hook makes every call into the host trap once the deadline has
//!   passed, so a loop of cheap-in-fuel but slow host calls cannot outrun it between yields. Epoch
//!   interruption would add a check to every loop and function entry of every guest for nothing
//!   more (measured: the flow benchmark went from 0.48 to 0.53 of native without it);
//! - pooling allocator with explicit caps: instantiation reuses pre-reserved slots (much faster than
//!   mmap per instance) and the pool size is the hard concurrency bound (exhaustion is `overloaded`);
//! - a bounded wasm stack, so deep recursion is a `stack-overflow` trap, never a host crash.

use crate::budget::Budget;
use crate::cache::ArtifactCache;
use crate::error::{Error, Result};
use crate::host::keyvalue::{KeyValueQuota, KeyValueStore, MemoryKeyValue};
use crate::host::lookup_shares::{LookupLimits, LookupShares};
use crate::host::outbound::OutboundLimits;
use crate::host::resolver::{DnsResolver, Resolve};
use crate::state::InvocationState;
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Fuel units between voluntary yields to the async executor.
pub const FUEL_YIELD_INTERVAL: u64 = 1_000_000;

/// How to build a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Host caps: no manifest or grant can raise a limit above these.
    pub caps: Budget,
    /// Use the pooling instance allocator (`true`) or allocate on demand.
    pub pooling: bool,
    /// Most component instances alive at once (pool size); further invocations are `overloaded`.
    pub max_concurrent_instances: u32,
    /// Where compiled artifacts are persisted; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Most bytes of wasm stack a guest may use.
    pub max_wasm_stack: usize,
    /// Bounds on outbound HTTP.
    pub outbound: OutboundLimits,
    /// Resolves outbound destinations' names, once per request.
    pub resolver: Arc<dyn Resolve>,
    /// DNS lookups in flight at once, host-wide and per plugin.
    pub lookups: LookupLimits,
    /// Where plugins' key-value buckets live.
    pub key_value: Arc<dyn KeyValueStore>,
    /// Caps on each plugin's key-value data, over all its buckets.
    pub key_value_quota: KeyValueQuota,
    /// Credentials of connections, added to plugins' requests to their hosts (none: no plugin
    /// request carries any).
    pub credentials: Option<Arc<dyn crate::host::credentials::Credentials>>,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            caps: Budget::default(),
            pooling: true,
            max_concurrent_instances: 128,
            cache_dir: None,
            max_wasm_stack: 512 * 1024,
            outbound: OutboundLimits::default(),
            resolver: Arc::new(DnsResolver::system()),
            lookups: LookupLimits::default(),
            key_value: Arc::new(MemoryKeyValue::default()),
            key_value_quota: KeyValueQuota::default(),
            credentials: None,
        }
    }
}

/// Shared by the runtime and every plugin it loaded.
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<InvocationState>,
    pub(crate) config: RuntimeConfig,
    pub(crate) cache: Option<ArtifactCache>,
    pub(crate) lookups: Arc<LookupShares>,
}

/// Loads plugins and runs them under budgets. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("config", &self.shared.config).finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine, linker and (if configured) the artifact cache.
    ///
    /// # Errors
    /// [`Error::Internal`] when wasmtime rejects the configuration (for example a pool larger than
    /// the address space allows) or the cache directory cannot be created.
    pub fn new(config: RuntimeConfig) -> Result<Runtime> {
        let engine = Engine::new(&engine_config(&config)).map_err(Error::internal)?;
        let mut linker = Linker::<InvocationState>::new(&engine);
        add_host_interfaces(&mut linker).map_err(Error::internal)?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(ArtifactCache::open(dir.clone(), &engine)?),
            None => None,
        };
        let lookups = LookupShares::new(config.lookups);
        Ok(Runtime { shared: Arc::new(Shared { engine, linker, config, cache, lookups }) })
    }

    /// The wasmtime engine (for tools and benchmarks that compare against bare wasmtime).
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// DNS lookups of plugins' outbound requests in flight right now.
    pub fn dns_lookups_in_flight(&self) -> usize {
        self.shared.lookups.in_flight()
    }

    /// The configuration this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.shared.config
    }
}

fn engine_config(config: &RuntimeConfig) -> Config {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .consume_fuel(true)
        .max_wasm_stack(config.max_wasm_stack)
        .async_stack_size(config.max_wasm_stack + (1 << 20))
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    if config.pooling {
        let n = config.max_concurrent_instances;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(8))
            .total_stacks(n)
            .max_core_instances_per_component(16)
            .max_memories_per_component(8)
            .max_memories_per_module(4)
            .max_tables_per_component(16)
            .max_memory_size(usize::try_from(config.caps.memory_bytes).unwrap_or(usize::MAX))
            .max_unused_warm_slots(n.min(32))
            // Every call gets a fresh instance: resetting the first 4 MiB of a slot's memory with
            // memset beats returning it to the kernel and faulting it back in on the next call
            // (flow benchmark: ratio 0.31 -> 0.36 with 4 MiB; 8 MiB no more than 4). Where the
            // kernel has PAGEMAP_SCAN (Linux 6.7+), only the pages the call dirtied are reset
            // (0.49 -> 0.51 in paired runs); elsewhere the whole 4 MiB is.
            .linear_memory_keep_resident(4 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    wasm
}

fn add_host_interfaces(linker: &mut Linker<InvocationState>) -> wasmtime::Result<()> {
    // WASI p2 as the Rust standard library expects it (clocks, random, stdio); filesystem and
    // sockets are linked but the context grants no directories and no network.
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    crate::bindings::logging::add_to_linker::<_, HasSelf<InvocationState>>(linker, |state| state)?;
    crate::bindings::config_store::add_to_linker::<_, HasSelf<InvocationState>>(linker, |state| state)?;
    crate::bindings::keyvalue_store::add_to_linker::<_, HasSelf<InvocationState>>(linker, |state| state)?;
    Ok(())
}
