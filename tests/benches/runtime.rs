//! Runtime benchmarks, each printed as a ratio against a baseline measured in the same run.
//!
//! `cargo bench -p plugboard-tests` prints:
//! 1. invoke overhead: `Plugin::transform` of json-mapper on a 1 KiB record ÷ bare wasmtime
//!    (`InstancePre` instantiate + call, same engine, same fuel/memory limits); goal ≤ 1.10;
//! 2. on-demand ÷ pooled instantiation (an identity call on an empty batch);
//! 3. compile ÷ cached-artifact load (`Runtime::load` without and with a primed cache); goal ≥ 100;
//! 4. 64 KiB identity round-trip throughput in MiB/s; goal ≥ 300.
//!
//! Timing: each case warms up, then runs batches until it has spent its time budget; the figure is
//! the median per-iteration time over the batches. No test asserts on these numbers.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use plugboard_runtime::bindings::config_store;
use plugboard_runtime::bindings::transformer::TransformerPre;
use plugboard_runtime::{Budget, Grant, Plugin, Record, Runtime, RuntimeConfig};
use plugboard_tests::{GUEST_HOSTILE, JSON_MAPPER};
use serde_json::json;
use std::future::Future;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Median time per iteration of `f`, over batches run for about `budget`.
async fn measure<F, Fut>(budget: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..20 {
        f().await;
    }
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < budget || samples.len() < 5 {
        let batch = 20;
        let t = Instant::now();
        for _ in 0..batch {
            f().await;
        }
        samples.push(t.elapsed() / batch);
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn measure_sync(budget: Duration, mut f: impl FnMut()) -> Duration {
    f();
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < budget || samples.len() < 5 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

/// Store data for the bare-wasmtime baseline: WASI and a config map, nothing else.
struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    mapping: String,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl config_store::Host for Bare {
    fn get(&mut self, key: String) -> Result<Option<String>, config_store::Error> {
        Ok((key == "mapping").then(|| self.mapping.clone()))
    }
    fn get_all(&mut self) -> Result<Vec<(String, String)>, config_store::Error> {
        Ok(vec![("mapping".into(), self.mapping.clone())])
    }
}

const MAPPING: &str = r#"{"id": "$.id", "name": "$.name", "tags": "$.tags[*]", "payload": "$.payload"}"#;

fn one_kib_record() -> Vec<Record> {
    let record = Record::json(&json!({"id": 42, "name": "order", "tags": ["a", "b"], "payload": "x".repeat(960)}));
    assert!((1000..1100).contains(&record.value.len()));
    vec![record]
}

async fn invoke_overhead(budget: Duration) {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let grant = Grant { config: [("mapping".to_string(), MAPPING.to_string())].into(), ..Grant::default() };
    let plugin = JSON_MAPPER.load(&runtime, &grant);
    let input = one_kib_record();
    let expected = plugin.transform(input.clone()).await.into_result().expect("runs");

    // Bare wasmtime on the same engine, same limits.
    let engine = runtime.engine().clone();
    let caps = plugin.effective().budget;
    let mut linker: Linker<Bare> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
    config_store::add_to_linker::<_, HasSelf<Bare>>(&mut linker, |s| s).expect("config");
    let component = Component::new(&engine, JSON_MAPPER.bytes()).expect("compile");
    let pre = TransformerPre::new(linker.instantiate_pre(&component).expect("pre")).expect("typed pre");
    let bare = || {
        let pre = pre.clone();
        let engine = engine.clone();
        let input = input.clone();
        async move {
            let state = Bare {
                wasi: WasiCtxBuilder::new().build(),
                table: ResourceTable::new(),
                limits: StoreLimitsBuilder::new().memory_size(caps.memory_bytes as usize).build(),
                mapping: MAPPING.to_string(),
            };
            let mut store = Store::new(&engine, state);
            store.limiter(|s| &mut s.limits);
            store.set_fuel(caps.fuel).expect("fuel");
            store.fuel_async_yield_interval(Some(plugboard_runtime::FUEL_YIELD_INTERVAL)).expect("yield");
            let instance = pre.instantiate_async(&mut store).await.expect("instantiate");
            let out = instance.plugboard_plugin_transform().call_transform(&mut store, &input).await.expect("call");
            assert!(out.is_ok());
        }
    };
    bare().await;
    let plugboard = || {
        let plugin = plugin.clone();
        let input = input.clone();
        let expected = &expected;
        async move {
            let out = plugin.transform(input).await.into_result().expect("runs");
            assert_eq!(&out, expected);
        }
    };
    let bare_time = measure(budget, bare).await;
    let plugboard_time = measure(budget, plugboard).await;
    report("invoke json-mapper 1 KiB: plugboard ÷ bare wasmtime", plugboard_time, bare_time, "goal ≤ 1.10");
}

async fn echo_plugin(runtime: &Runtime) -> Plugin {
    let grant = Grant { config: [("mode".to_string(), "echo".to_string())].into(), ..Grant::default() };
    GUEST_HOSTILE.load(runtime, &grant)
}

async fn pooling(budget: Duration) {
    let pooled = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let on_demand = Runtime::new(RuntimeConfig { pooling: false, ..RuntimeConfig::default() }).expect("runtime");
    let time = |plugin: Plugin| async move {
        measure(budget, || {
            let plugin = plugin.clone();
            async move {
                plugin.transform(Vec::new()).await.into_result().expect("echo");
            }
        })
        .await
    };
    let pooled_time = time(echo_plugin(&pooled).await).await;
    let on_demand_time = time(echo_plugin(&on_demand).await).await;
    report("instantiate + call: on-demand ÷ pooled", on_demand_time, pooled_time, "higher is better for pooling");
}

fn compile_vs_cache(budget: Duration) {
    let dir = std::env::temp_dir().join(format!("plugboard-bench-cache-{}", std::process::id()));
    let uncached = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let cached =
        Runtime::new(RuntimeConfig { cache_dir: Some(dir.clone()), ..RuntimeConfig::default() }).expect("runtime");
    let bytes = JSON_MAPPER.bytes();
    let manifest = JSON_MAPPER.manifest();
    cached.load(&bytes, manifest.clone(), &Grant::default()).expect("prime the cache");
    let compile = measure_sync(budget, || {
        uncached.load(&bytes, manifest.clone(), &Grant::default()).expect("compile");
    });
    let load = measure_sync(budget, || {
        let plugin = cached.load(&bytes, manifest.clone(), &Grant::default()).expect("cached");
        assert_eq!(plugin.compile_source(), plugboard_runtime::CompileSource::Cached);
    });
    let _ = std::fs::remove_dir_all(&dir);
    report("load json-mapper: compile ÷ cached artifact", compile, load, "goal ≥ 100");
}

async fn identity_throughput(budget: Duration) {
    let runtime = Runtime::new(RuntimeConfig { caps: Budget::default(), ..RuntimeConfig::default() }).expect("runtime");
    let plugin = echo_plugin(&runtime).await;
    let record = Record { key: None, value: vec![b'x'; 64 << 10], headers: Vec::new() };
    let per_call = measure(budget, || {
        let plugin = plugin.clone();
        let input = vec![record.clone()];
        async move {
            let out = plugin.transform(input).await.into_result().expect("echo");
            assert_eq!(out[0].value.len(), 64 << 10);
        }
    })
    .await;
    let mib_per_s = (64.0 / 1024.0) / per_call.as_secs_f64();
    println!(
        "{:<55} {:>10.1} MiB/s   ({:?} per 64 KiB call; goal ≥ 300)",
        "identity round-trip, 64 KiB record", mib_per_s, per_call
    );
}

fn report(name: &str, measured: Duration, baseline: Duration, goal: &str) {
    let ratio = measured.as_secs_f64() / baseline.as_secs_f64();
    println!("{name:<55} {ratio:>10.3}   ({measured:?} ÷ {baseline:?}; {goal})");
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing and should
    // stay quick, so it uses a token budget.
    let full = std::env::args().any(|a| a == "--bench");
    let budget = if full { Duration::from_secs(3) } else { Duration::from_millis(50) };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio");
    println!("plugboard runtime benchmarks ({} cores)", std::thread::available_parallelism().map_or(1, |n| n.get()));
    runtime.block_on(invoke_overhead(budget));
    runtime.block_on(pooling(budget));
    compile_vs_cache(budget);
    runtime.block_on(identity_throughput(budget));
}
