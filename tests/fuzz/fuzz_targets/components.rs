#![no_main]
//! Components, by the first byte: (1) raw bytes as a plugin file
//! (`plugboard_fuzz::checks::component_bytes`); (1b) a wasm-smith component, likewise; (2) a wasm-smith core module wrapped in a component that instantiates it, with a manifest
//! section, loaded through `Runtime::load` / `load_signed` (parse, validate, compile, world check);
//! (3) the same core module instantiated with bare wasmtime under fuel and a memory cap, every
//! exported function called with default arguments.
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use plugboard_fuzz::checks;
use plugboard_runtime::signing::{MANIFEST_SECTION, sections};
use std::sync::OnceLock;
use wasm_encoder::{ComponentSectionId, RawSection};
use wasmtime::{Config, Engine, Instance, Module, Store, StoreLimits, StoreLimitsBuilder};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 4 == 0 {
        checks::components(data);
        return;
    }
    if mode % 4 == 1 {
        let _ = smith_component(&mut Unstructured::new(rest));
        return;
    }
    let _ = generated(&mut Unstructured::new(rest));
});

fn smith_config() -> wasm_smith::Config {
    let mut config = wasm_smith::Config::default();
    config.max_imports = 0;
    config.max_funcs = 8;
    config.max_instructions = 200;
    config.max_memories = 1;
    config.max_memory32_bytes = 1 << 20;
    config.max_tables = 2;
    config.max_table_elements = 100;
    config.max_data_segments = 4;
    config.max_element_segments = 4;
    config.export_everything = true;
    config.gc_enabled = false;
    config.threads_enabled = false;
    config.shared_everything_threads_enabled = false;
    config.exceptions_enabled = false;
    config.memory64_enabled = false;
    config.custom_page_sizes_enabled = false;
    config.wide_arithmetic_enabled = false;
    config
}

/// wasm-smith's own (partial) component generator, loaded as a plugin.
fn smith_component(u: &mut Unstructured<'_>) -> Result<()> {
    let mut config = smith_config();
    config.max_components = 2;
    config.max_modules = 2;
    config.max_instances = 4;
    config.max_types = 20;
    let component = wasm_smith::Component::new(config, u)?;
    checks::component_bytes(&component.to_bytes());
    Ok(())
}

fn generated(u: &mut Unstructured<'_>) -> Result<()> {
    let module = wasm_smith::Module::new(smith_config(), u)?;
    let core = module.to_bytes();

    // A component holding the module and one instance of it; the manifest section as `plugboard sign` adds it.
    let mut component = wasm_encoder::Component::new();
    component.section(&RawSection { id: ComponentSectionId::CoreModule as u8, data: &core });
    let mut instances = wasm_encoder::InstanceSection::new();
    instances.instantiate(0, Vec::<(&str, wasm_encoder::ModuleArg)>::new());
    component.section(&instances);
    let mut file = component.finish();
    let manifest = br#"{"name":"fuzz","version":"0.1.0","kind":"transformer"}"#;
    file.extend(sections::custom_section(MANIFEST_SECTION, manifest));
    checks::component_bytes(&file);

    instantiate(&core);
    Ok(())
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.consume_fuel(true);
        config.max_wasm_stack(256 * 1024);
        Engine::new(&config).expect("engine")
    })
}

fn instantiate(core: &[u8]) {
    let Ok(module) = Module::new(engine(), core) else { return };
    let limits = StoreLimitsBuilder::new().memory_size(16 << 20).table_elements(10_000).instances(10).build();
    let mut store: Store<StoreLimits> = Store::new(engine(), limits);
    store.limiter(|limits| limits);
    let _ = store.set_fuel(100_000);
    let Ok(instance) = Instance::new(&mut store, &module, &[]) else { return };
    let funcs: Vec<_> = instance
        .exports(&mut store)
        .filter_map(|export| export.into_func())
        .collect();
    for func in funcs {
        let ty = func.ty(&store);
        let Some(params) = ty.params().map(|t| t.default_value()).collect::<Option<Vec<_>>>() else { continue };
        let mut results: Vec<_> = ty.results().map(|t| t.default_value().unwrap_or(wasmtime::Val::I32(0))).collect();
        let _ = store.set_fuel(100_000);
        let _ = func.call(&mut store, &params, &mut results);
    }
}
