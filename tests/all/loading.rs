//! Loading: bad bytes and mismatched manifests are typed errors; compiled artifacts are cached,
//! integrity-checked, and never trusted when tampered with.

use crate::support::common::{config, records, runtime, runtime_with, values};
use plugboard_runtime::{CompileSource, Error, ErrorCode, Grant, Kind, Manifest};
use plugboard_tests::*;
use serde_json::json;

fn invalid_reason(bytes: &[u8], manifest: Manifest) -> String {
    match runtime().load(bytes, manifest, &Grant::default()) {
        Err(err @ Error::InvalidComponent { .. }) => {
            assert_eq!(err.code(), ErrorCode::InvalidComponent);
            err.to_string()
        }
        other => panic!("expected invalid-component, got {other:?}"),
    }
}

#[test]
fn rejects_what_is_not_a_plugboard_component() {
    let manifest = JSON_MAPPER.manifest();
    let good = JSON_MAPPER.bytes();
    assert!(invalid_reason(&[], manifest.clone()).contains("empty"));
    assert!(invalid_reason(b"hello, world", manifest.clone()).contains("not a WebAssembly binary"));
    let core = wat::parse_str("(module (func (export \"transform\")))").expect("wat");
    assert!(invalid_reason(&core, manifest.clone()).contains("core WebAssembly module"));
    let truncated = &good[..good.len() / 2];
    assert!(!invalid_reason(truncated, manifest.clone()).is_empty());
    let empty_component = wat::parse_str("(component)").expect("wat");
    assert!(matches!(
        runtime().load(&empty_component, manifest.clone(), &Grant::default()),
        Err(Error::WorldMismatch { component: None, .. })
    ));
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    // A flipped byte either fails validation or changes the code; either way it is not loaded as-is
    // silently: the digest differs.
    if let Ok(plugin) = runtime().load(&flipped, manifest.clone(), &Grant::default()) {
        assert_ne!(plugin.digest(), plugboard_runtime::digest(&good));
    }
}

#[test]
fn rejects_a_manifest_for_another_world() {
    let mut manifest = JSON_MAPPER.manifest();
    manifest.kind = Kind::Sink;
    match runtime().load(&JSON_MAPPER.bytes(), manifest, &Grant::default()) {
        Err(err @ Error::WorldMismatch { manifest: Kind::Sink, component: Some(Kind::Transformer), .. }) => {
            assert_eq!(err.code(), ErrorCode::WorldMismatch);
            assert_eq!(
                err.to_string(),
                "the manifest says `sink` (world `plugboard:plugin/sink@0.2.0`) but the component implements \
                 the `transformer` world (`plugboard:plugin/transformer@0.2.0`)"
            );
        }
        other => panic!("expected world-mismatch, got {other:?}"),
    }
}

#[test]
fn rejects_imports_plugboard_does_not_provide() {
    // A real transformer that also imports an interface no Plugboard host offers.
    let wat = crate::hostile::multi_memory_wat(1).replacen(
        "(component",
        "(component\n  (import \"evil:backdoor/shell@1.0.0\" (instance (export \"run\" (func))))",
        1,
    );
    let bytes = wat::parse_str(wat).expect("wat");
    let manifest =
        Manifest::from_toml("name = \"evil\"\nversion = \"0.1.0\"\nkind = \"transformer\"").expect("manifest");
    // Refused before compiling, at load and at sign alike, naming the import and the world.
    let refused = |result: Result<(), Error>| match result {
        Err(err @ Error::WorldMismatch { component: Some(Kind::Transformer), .. }) => {
            assert_eq!(err.code(), ErrorCode::WorldMismatch);
            let reason = err.to_string();
            assert!(
                reason.contains("imports `evil:backdoor/shell@1.0.0`, which the `transformer` world does not offer"),
                "{reason}"
            );
        }
        other => panic!("expected world-mismatch, got {other:?}"),
    };
    refused(runtime().load(&bytes, manifest.clone(), &Grant::default()).map(drop));
    refused(plugboard_runtime::signing::sign(&bytes, &manifest, test_key()).map(drop));

    // An interface of a WASI package the worlds offer, but one the host does not define: past the
    // world check, the linker still refuses it.
    let wat = crate::hostile::multi_memory_wat(1).replacen(
        "(component",
        "(component\n  (import \"wasi:cli/backdoor@0.2.0\" (instance (export \"run\" (func))))",
        1,
    );
    let reason = invalid_reason(&wat::parse_str(wat).expect("wat"), manifest);
    assert!(reason.contains("cannot link") && reason.contains("wasi:cli/backdoor@0.2.0"), "{reason}");
}

#[test]
fn rejects_an_invalid_manifest() {
    let mut manifest = JSON_MAPPER.manifest();
    manifest.name = "Not Valid".into();
    match runtime().load(&JSON_MAPPER.bytes(), manifest, &Grant::default()) {
        Err(err @ Error::ManifestInvalid { .. }) => assert_eq!(err.code(), ErrorCode::ManifestInvalid),
        other => panic!("expected manifest-invalid, got {other:?}"),
    }
}

#[test]
fn concurrent_loads_of_one_component_compile_it_once() {
    // Four runtimes over one fresh cache (as four servers sharing it) load the same component at
    // once: the cache entry's lock lets one compile while the others wait and read its artifact.
    let dir = tempfile::tempdir().expect("tempdir");
    let start = std::sync::Barrier::new(4);
    let sources: Vec<CompileSource> = std::thread::scope(|scope| {
        let loads: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let runtime = runtime_with(|c| c.cache_dir = Some(dir.path().to_path_buf()));
                    start.wait();
                    runtime.load(&JSON_MAPPER.bytes(), JSON_MAPPER.manifest(), &Grant::default()).expect("load")
                })
            })
            .collect();
        loads.into_iter().map(|load| load.join().expect("thread").compile_source()).collect()
    });
    let compiled = sources.iter().filter(|source| **source == CompileSource::Compiled).count();
    assert_eq!(compiled, 1, "{sources:?}");
}

#[tokio::test]
async fn compiled_artifacts_are_cached_and_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cached_runtime = || runtime_with(|c| c.cache_dir = Some(dir.path().to_path_buf()));
    let grant = config(&[("mapping", r#"{"v": "$.a"}"#)]);
    let bytes = JSON_MAPPER.bytes();

    let first = cached_runtime().load(&bytes, JSON_MAPPER.manifest(), &grant).expect("load");
    assert_eq!(first.compile_source(), CompileSource::Compiled);
    let second = cached_runtime().load(&bytes, JSON_MAPPER.manifest(), &grant).expect("load");
    assert_eq!(second.compile_source(), CompileSource::Cached);
    let out = second.transform(records(&[json!({"a": 5})])).await.into_result().expect("cached plugin runs");
    assert_eq!(values(&out), vec![json!({"v": 5})]);

    // Tamper with the artifact: it is discarded and recompiled, never deserialized.
    let artifact = std::fs::read_dir(dir.path())
        .expect("cache dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("an artifact");
    let mut compiled = std::fs::read(&artifact).expect("artifact");
    let last = compiled.len() - 1;
    compiled[last] ^= 0x01;
    std::fs::write(&artifact, &compiled).expect("tamper");
    let third = cached_runtime().load(&bytes, JSON_MAPPER.manifest(), &grant).expect("load");
    assert_eq!(third.compile_source(), CompileSource::Compiled);

    // An artifact written with another key (someone else's cache) is not trusted either.
    let other_dir = tempfile::tempdir().expect("tempdir");
    runtime_with(|c| c.cache_dir = Some(other_dir.path().to_path_buf()))
        .load(&bytes, JSON_MAPPER.manifest(), &grant)
        .expect("load");
    let foreign = std::fs::read_dir(other_dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("artifact");
    std::fs::copy(&foreign, &artifact).expect("plant");
    let fourth = cached_runtime().load(&bytes, JSON_MAPPER.manifest(), &grant).expect("load");
    assert_eq!(fourth.compile_source(), CompileSource::Compiled);
    let out = fourth.transform(records(&[json!({"a": 6})])).await.into_result().expect("runs");
    assert_eq!(values(&out), vec![json!({"v": 6})]);
}

#[test]
fn every_sample_manifest_matches_its_component() {
    let runtime = runtime();
    for plugin in ALL_PLUGINS {
        let loaded = plugin.load(&runtime, &Grant::default());
        assert_eq!(loaded.manifest().name, plugin.name);
    }
}
