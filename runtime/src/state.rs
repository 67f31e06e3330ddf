//! What one invocation's `Store` holds: WASI context, HTTP policy, limiter, logs and the grant.
//!
//! A fresh state (and Store) is built for every invocation; nothing from a trapped or finished
//! invocation is ever reused. That includes its uncommitted key-value writes: a failed invocation's
//! overlay is dropped with its Store.

use crate::engine::Shared;
use crate::grant::Effective;
use crate::host::keyvalue::overlay::Overlay;
use crate::host::keyvalue::{Cursors, KeyValueQuota, KeyValueStore};
use crate::host::logs::LogSink;
use crate::host::lookup_shares::PluginLookups;
use crate::host::outbound::OutboundPolicy;
use crate::limiter::MemoryLimiter;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Bytes of stdout and of stderr kept per invocation (then captured into the logs).
const STDIO_CAPTURE_BYTES: usize = 16 * 1024;

/// Most host resources (open buckets, HTTP fields, requests, bodies, streams, pollables) one
/// invocation may hold at once. They live in host memory, outside the guest's memory budget; past
/// this, the call that would create one fails and the invocation ends with
/// [`Error::TooManyResources`](crate::Error::TooManyResources).
pub const MAX_HOST_RESOURCES: usize = 4096;
/// Most bytes of names and values in one HTTP `fields` resource (wasmtime's default is 128 KiB):
/// with [`MAX_HOST_RESOURCES`], what a guest's headers can hold in the host is at most 128 MiB.
pub const MAX_FIELDS_BYTES: usize = 32 * 1024;
/// Most component-model handles alive in one invocation's Store, guest-defined resources included.
/// Above [`MAX_HOST_RESOURCES`], so a guest hoarding host resources meets the host's typed limit
/// first.
pub const MAX_COMPONENT_HANDLES: usize = 2 * MAX_HOST_RESOURCES;

/// The data of one invocation's Store.
pub struct InvocationState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) outbound: OutboundPolicy,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) logs: LogSink,
    pub(crate) grant: Arc<Effective>,
    pub(crate) key_value: Arc<dyn KeyValueStore>,
    pub(crate) key_value_quota: KeyValueQuota,
    pub(crate) kv_cursors: Cursors,
    /// The invocation's key-value writes, committed only if it succeeds.
    pub(crate) kv_overlay: Overlay,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl InvocationState {
    pub(crate) fn new(grant: Arc<Effective>, shared: &Shared) -> InvocationState {
        let config = &shared.config;
        let stdout = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        // No preopened directories, no environment, no arguments and no sockets: a plugin reaches
        // the outside world only through the interfaces its grant allows.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let logs = LogSink::default();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HOST_RESOURCES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELDS_BYTES);
        InvocationState {
            wasi,
            table,
            http,
            outbound: OutboundPolicy::new(
                grant.outbound_hosts.clone(),
                grant.requested_hosts.clone(),
                config.outbound,
                config.resolver.clone(),
                PluginLookups { shares: shared.lookups.clone(), plugin: grant.namespace.as_str().into() },
                logs.clone(),
            )
            .with_credentials(grant.connections.clone(), config.credentials.clone())
            .allowing_private(grant.allow_private),
            limiter: MemoryLimiter::new(grant.budget.memory_bytes),
            logs,
            grant,
            key_value: config.key_value.clone(),
            key_value_quota: config.key_value_quota,
            kv_cursors: Cursors::default(),
            kv_overlay: Overlay::default(),
            stdout,
            stderr,
        }
    }

    /// Moves captured stdout and stderr lines into the logs.
    pub(crate) fn capture_stdio(&self) {
        use crate::host::logs::LogLevel;
        for (pipe, context, level) in
            [(&self.stdout, "stdout", LogLevel::Info), (&self.stderr, "stderr", LogLevel::Warn)]
        {
            let contents = pipe.contents();
            let text = String::from_utf8_lossy(&contents);
            let mut lines: Vec<&str> = text.lines().collect();
            // A full pipe cut its last line somewhere: dropped whole, so no secret is left half
            // visible at the cut (blanking matches only whole values).
            let cut = contents.len() >= STDIO_CAPTURE_BYTES;
            if cut {
                lines.pop();
            }
            for line in lines.into_iter().filter(|l| !l.is_empty()) {
                self.logs.push(level, context, line);
            }
            if cut {
                self.logs.push(
                    LogLevel::Warn,
                    "host",
                    &format!("{context} stopped at {STDIO_CAPTURE_BYTES} bytes; its last, cut line is not kept"),
                );
            }
        }
    }
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for InvocationState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}
