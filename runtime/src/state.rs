//! What one invocation's `Store` holds: WASI context, HTTP policy, limiter, logs and the grant.
//!
//! A fresh state (and Store) is built for every invocation; nothing from a trapped or finished
//! invocation is ever reused.

use crate::grant::Effective;
use crate::host::keyvalue::KeyValueStore;
use crate::host::logs::LogSink;
use crate::host::outbound::{OutboundLimits, OutboundPolicy};
use crate::host::resolver::Resolve;
use crate::limiter::MemoryLimiter;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Bytes of stdout and of stderr kept per invocation (then captured into the logs).
const STDIO_CAPTURE_BYTES: usize = 16 * 1024;

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
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl InvocationState {
    pub(crate) fn new(
        grant: Arc<Effective>,
        outbound: OutboundLimits,
        resolver: Arc<dyn Resolve>,
        key_value: Arc<dyn KeyValueStore>,
    ) -> InvocationState {
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
        InvocationState {
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            outbound: OutboundPolicy::new(grant.outbound_hosts.clone(), outbound, resolver, logs.clone()),
            limiter: MemoryLimiter::new(grant.budget.memory_bytes),
            logs,
            grant,
            key_value,
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
            for line in String::from_utf8_lossy(&contents).lines().filter(|l| !l.is_empty()) {
                self.logs.push(level, context, line);
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
