//! The same transformer in Python, JavaScript and TypeScript against Rust, measured in one run.
//!
//! `cargo bench -p plugboard-tests --bench languages` builds the transformer `plugboard new`
//! writes in each language (they do the same work: parse each JSON record, add a `tag` field from
//! config, write it back; so this is what an author starts from) with the README's build command,
//! then prints per language and as a ratio to Rust:
//! 1. component size;
//! 2. compile time (`Runtime::load` into an empty artifact cache: validate, compile, store);
//! 3. cached load time (`Runtime::load` from that cache, as a restarted server loads plugins);
//! 4. instantiate time alone (`Plugin::instantiate_only`: a fresh store and instance, no call),
//!    and instantiate + call time on an empty batch (what a call costs before any record) and on a
//!    2-record batch (a fresh instance per call, as always), and the fuel each costs;
//! 5. peak linear memory of one instance;
//! 6. records/s in a flow (the transformer → http-sink into a local counting sink, batches of
//!    [`BATCH`] order records), the flow benchmark's shape.
//!
//! Timing: medians over repeated runs for the time budget (compile and first load run once: they
//! take seconds). No test asserts on these numbers.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use plugboard_host_api::scaffold::Lang;
use plugboard_runtime::flow::{FlowDefinition, FlowRun};
use plugboard_runtime::{Grant, Kind, Manifest, Plugin, Runtime, RuntimeConfig};
use plugboard_tests::bench::{counting_sink, orders};
use plugboard_tests::{HTTP_SINK, projects};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const BATCH: usize = 500;

/// One language's figures.
struct Figures {
    lang: &'static str,
    size: f64,
    compile: Duration,
    cached_load: Duration,
    instantiate: Duration,
    empty_call: Duration,
    empty_fuel: f64,
    empty_faults: f64,
    call: Duration,
    fuel: f64,
    memory: f64,
    records_per_sec: f64,
}

/// Median of `f`'s durations over runs for about `budget` (at least 5 runs).
async fn median<F: AsyncFnMut() -> Duration>(budget: Duration, mut f: F) -> Duration {
    f().await;
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < budget || samples.len() < 5 {
        samples.push(f().await);
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn grant() -> Grant {
    Grant { config: [("tag".to_string(), "bench".to_string())].into(), ..Grant::default() }
}

async fn measure(lang: Lang, name: &'static str, work: &Path, sink_url: &str, budget: Duration) -> Figures {
    let rust_target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold");
    let project = format!("bench-{name}");
    let (dir, component) = projects::create_and_build(work, &project, Kind::Transformer, lang, &rust_target);
    let bytes = std::fs::read(&component).unwrap();
    let manifest = Manifest::from_toml(&std::fs::read_to_string(dir.join("plugin.toml")).unwrap()).unwrap();
    let cache = work.join(format!("cache-{name}"));
    // `PLUGBOARD_BENCH_ON_DEMAND=1` measures with the on-demand instance allocator instead of the
    // pool, to see what instantiating (not running) a big component costs.
    let pooling = std::env::var_os("PLUGBOARD_BENCH_ON_DEMAND").is_none();
    let cached =
        || Runtime::new(RuntimeConfig { cache_dir: Some(cache.clone()), pooling, ..RuntimeConfig::default() }).unwrap();

    let started = Instant::now();
    cached().load(&bytes, manifest.clone(), &grant()).unwrap();
    let compile = started.elapsed();
    let runtime = cached();
    let cached_load = median(budget, async || {
        let started = Instant::now();
        runtime.load(&bytes, manifest.clone(), &grant()).unwrap();
        started.elapsed()
    })
    .await;

    let plugin = runtime.load(&bytes, manifest.clone(), &grant()).unwrap();
    let two = orders(2);
    let first = plugin.transform(two.clone()).await;
    let (fuel, memory) = (first.usage.fuel_consumed as f64, first.usage.peak_memory_bytes as f64);
    let out = first.into_result().unwrap();
    assert!(out.iter().all(|r| r.to_json().unwrap()["tag"] == "bench"), "{name} tags every record");
    let instantiate = median(budget, async || {
        let started = Instant::now();
        plugin.instantiate_only().await.unwrap();
        started.elapsed()
    })
    .await;
    let empty = plugin.transform(Vec::new()).await;
    let empty_fuel = empty.usage.fuel_consumed as f64;
    let faults_before = minor_faults();
    for _ in 0..100 {
        plugin.transform(Vec::new()).await.into_result().unwrap();
    }
    let empty_faults = (minor_faults() - faults_before) as f64 / 100.0;
    let empty_call = median(budget, async || {
        let started = Instant::now();
        plugin.transform(Vec::new()).await.into_result().unwrap();
        started.elapsed()
    })
    .await;
    let call = median(budget, async || {
        let started = Instant::now();
        plugin.transform(two.clone()).await.into_result().unwrap();
        started.elapsed()
    })
    .await;

    let flow = one_step_flow(&runtime, plugin.clone(), &manifest.name, sink_url);
    let input = orders(BATCH);
    let batch = median(budget, async || {
        let started = Instant::now();
        let outcome = flow.run(input.clone()).await;
        assert!(outcome.failure.is_none() && outcome.delivered as usize == BATCH, "{:?}", outcome.steps);
        started.elapsed()
    })
    .await;
    Figures {
        lang: name,
        size: bytes.len() as f64,
        compile,
        cached_load,
        instantiate,
        empty_call,
        empty_fuel,
        empty_faults,
        call,
        fuel,
        memory,
        records_per_sec: BATCH as f64 / batch.as_secs_f64(),
    }
}

/// Minor page faults of this process so far (`/proc/self/stat`, field 10): a fresh instance of a
/// pre-initialised interpreter faults in the pages of its memory image that the call touches.
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after.split_whitespace().nth(7).and_then(|field| field.parse().ok()).unwrap_or(0)
}

/// `plugin` → http-sink into `sink_url`, run by the flow engine.
fn one_step_flow(runtime: &Runtime, plugin: Plugin, name: &str, sink_url: &str) -> FlowRun {
    let sink_grant = Grant {
        config: [("url".to_string(), sink_url.to_string())].into(),
        outbound_hosts: vec!["127.0.0.1".into()],
        ..Grant::default()
    };
    let plugins: BTreeMap<String, Plugin> =
        [(name.to_string(), plugin), ("http-sink".to_string(), HTTP_SINK.load(runtime, &sink_grant))].into();
    let flow: FlowDefinition = serde_json::from_value(json!({
        "name": "languages",
        "steps": [{"type": "transform", "id": "tag", "plugin": name}],
        "sinks": [{"id": "out", "plugin": "http-sink"}]
    }))
    .unwrap();
    FlowRun::new(flow, plugins)
}

fn print(all: &[Figures]) {
    let rust = &all[0];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{:<11} {:>10} {:>11} {:>11} {:>10} {:>10} {:>11} {:>12} {:>10} {:>11} {:>10} {:>12}",
        "language",
        "size MB",
        "compile s",
        "cached ms",
        "inst. ms",
        "empty ms",
        "fuel/empty",
        "faults/empty",
        "call ms",
        "fuel/call",
        "memory MB",
        "records/s"
    );
    for f in all {
        println!(
            "{:<11} {:>10.2} {:>11.2} {:>11.2} {:>10.3} {:>10.3} {:>11.0} {:>12.1} {:>10.3} {:>11.0} {:>10.1} {:>12.0}",
            f.lang,
            f.size / 1e6,
            f.compile.as_secs_f64(),
            ms(f.cached_load),
            ms(f.instantiate),
            ms(f.empty_call),
            f.empty_fuel,
            f.empty_faults,
            ms(f.call),
            f.fuel,
            f.memory / (1 << 20) as f64,
            f.records_per_sec
        );
    }
    println!("ratios to Rust (records/s: ÷ Rust, the rest: × Rust):");
    for f in &all[1..] {
        println!(
            "{:<11} {:>9.0}× {:>10.0}× {:>10.1}× {:>9.1}× {:>10.1}× {:>9.1}× {:>10.1}× {:>9.1}× {:>11.3}",
            f.lang,
            f.size / rust.size,
            f.compile.as_secs_f64() / rust.compile.as_secs_f64(),
            f.cached_load.as_secs_f64() / rust.cached_load.as_secs_f64(),
            f.empty_call.as_secs_f64() / rust.empty_call.as_secs_f64(),
            f.empty_fuel / rust.empty_fuel,
            f.call.as_secs_f64() / rust.call.as_secs_f64(),
            f.fuel / rust.fuel,
            f.memory / rust.memory,
            f.records_per_sec / rust.records_per_sec
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing and should
    // stay quick (it still builds and compiles every language once).
    let full = std::env::args().any(|a| a == "--bench");
    let budget = if full { Duration::from_secs(5) } else { Duration::from_millis(50) };
    let work = tempfile::tempdir().unwrap();
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    tokio.block_on(async {
        let (sink_url, _received) = counting_sink().await;
        let mut all = Vec::new();
        for (lang, name) in [
            (Lang::Rust, "rust"),
            (Lang::Python, "python"),
            (Lang::JavaScript, "javascript"),
            (Lang::TypeScript, "typescript"),
        ] {
            all.push(measure(lang, name, work.path(), &sink_url, budget).await);
        }
        print(&all);
    });
}
