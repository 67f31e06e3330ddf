//! The `plugboard keygen | sign | verify` commands on real files, including the mistakes people
//! make: a missing file, the wrong key file, a file that is not WebAssembly.

use plugboard_host_api::sign;
use plugboard_runtime::signing::{self, PublicKey, SecretKey};
use plugboard_runtime::{Kind, Manifest};
use plugboard_tests::*;
use std::path::Path;

fn write_manifest(dir: &Path, manifest: &Manifest) -> std::path::PathBuf {
    let path = dir.join("plugin.toml");
    std::fs::write(&path, toml_of(manifest)).expect("write manifest");
    path
}

fn toml_of(manifest: &Manifest) -> String {
    format!(
        "name = {:?}\nversion = \"{}\"\nkind = \"{}\"\ndescription = {:?}\n",
        manifest.name,
        manifest.version,
        manifest.kind.as_str(),
        manifest.description
    )
}

#[test]
fn keygen_sign_verify_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("publisher");
    sign::keygen(&key, &mut std::io::sink()).expect("keygen");
    let public = dir.path().join("publisher.pub");
    assert_eq!(std::fs::read(&public).expect("public key").len(), 33);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("secret key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the secret key must be private");
    }
    assert!(sign::keygen(&key, &mut std::io::sink()).is_err(), "keygen never overwrites a key");
    let key_id = PublicKey::from_file(&public).expect("public key").key_id();
    assert_eq!(SecretKey::from_file(&key).expect("secret key").public().key_id(), key_id);

    let component = dir.path().join("filter.wasm");
    std::fs::write(&component, FILTER.bytes()).expect("component");
    let manifest = write_manifest(dir.path(), &FILTER.manifest());
    let signed = dir.path().join("filter.signed.wasm");
    sign::sign(&key, &manifest, &component, &signed, &mut std::io::sink()).expect("sign");
    assert_eq!(sign::verify(&public, &signed, &mut std::io::sink()).expect("usable inputs"), Ok(()));
    let inspection = signing::inspect(&std::fs::read(&signed).expect("signed")).expect("inspect");
    assert_eq!(inspection.key_id.as_deref(), Some(key_id.as_str()));
    assert_eq!(inspection.kind, Some(Kind::Transformer));
    assert_eq!(inspection.manifest.map(|m| m.name), Some("filter".to_string()));
    assert!(inspection.exports.contains(&"plugboard:plugin/transform@0.2.0".to_string()));
    assert_eq!(inspection.world.as_deref(), Some("plugboard:plugin/transformer@0.2.0"));
    assert!(inspection.imports.iter().any(|i| i.starts_with("wasi:config/store")));

    // Another publisher's key: a verdict, not a crash.
    sign::keygen(&dir.path().join("other"), &mut std::io::sink()).expect("keygen");
    let verdict = sign::verify(&dir.path().join("other.pub"), &signed, &mut std::io::sink()).expect("usable inputs");
    assert!(verdict.as_ref().is_err_and(|why| why.contains("unknown-key")), "{verdict:?}");
    // A tampered file: a verdict naming the reason.
    let mut bytes = std::fs::read(&signed).expect("signed");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&signed, bytes).expect("tamper");
    let verdict = sign::verify(&public, &signed, &mut std::io::sink()).expect("usable inputs");
    assert!(verdict.as_ref().is_err_and(|why| why.contains("digest-mismatch")), "{verdict:?}");
}

#[test]
fn mistakes_get_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("k");
    sign::keygen(&key, &mut std::io::sink()).expect("keygen");
    let public = dir.path().join("k.pub");
    let component = dir.path().join("c.wasm");
    std::fs::write(&component, JSON_MAPPER.bytes()).expect("component");
    let manifest = write_manifest(dir.path(), &JSON_MAPPER.manifest());
    let out = dir.path().join("out.wasm");
    let error = |result: anyhow::Result<()>| format!("{:#}", result.expect_err("should fail"));

    let missing = error(sign::sign(&key, &manifest, &dir.path().join("nope.wasm"), &out, &mut std::io::sink()));
    assert!(missing.contains("cannot read") && missing.contains("nope.wasm"), "{missing}");
    let swapped = error(sign::sign(&public, &manifest, &component, &out, &mut std::io::sink()));
    assert!(swapped.contains("this is a public key file"), "{swapped}");
    let not_wasm = dir.path().join("notes.txt");
    std::fs::write(&not_wasm, "hello").expect("write");
    let text = error(sign::sign(&key, &manifest, &not_wasm, &out, &mut std::io::sink()));
    assert!(text.contains("invalid component"), "{text}");
    let sink = write_manifest(dir.path(), &Manifest { kind: Kind::Sink, ..JSON_MAPPER.manifest() });
    let mismatch = error(sign::sign(&key, &sink, &component, &out, &mut std::io::sink()));
    assert!(mismatch.contains("the manifest says `sink`"), "{mismatch}");
    assert!(!out.exists(), "nothing is written when signing fails");

    let secret_as_public =
        format!("{:#}", sign::verify(&key, &component, &mut std::io::sink()).expect_err("wrong key file"));
    assert!(secret_as_public.contains("this is a secret key file"), "{secret_as_public}");
    let missing_key = format!(
        "{:#}",
        sign::verify(&dir.path().join("none.pub"), &component, &mut std::io::sink()).expect_err("missing key")
    );
    assert!(missing_key.contains("none.pub"), "{missing_key}");
    let unsigned = sign::verify(&public, &component, &mut std::io::sink()).expect("usable inputs");
    assert!(unsigned.as_ref().is_err_and(|why| why.contains("unsigned")), "{unsigned:?}");
    let inspect_text = format!("{:#}", sign::inspect(&not_wasm, false, &mut std::io::sink()).expect_err("not wasm"));
    assert!(inspect_text.contains("invalid component"), "{inspect_text}");
}

/// `plugboard run` with a granted key-value bucket: the bucket lives in memory for the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_grants_buckets_and_fails_when_the_plugin_fails() {
    use crate::support::cli::run_words;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("one.json");
    std::fs::write(&input, "[{}]").expect("write");
    let input = input.to_str().expect("utf-8");
    let hostile = [GUEST_HOSTILE.component, "--manifest", GUEST_HOSTILE.manifest, "--config", "mode=kv-count"];
    let words = |extra: &[&'static str]| {
        let mut words = vec!["run"];
        words.extend_from_slice(&hostile);
        words.extend_from_slice(&["--input", input]);
        words.extend_from_slice(extra);
        words
    };
    // A single JSON object is one record, as a webhook `event` body arrives.
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"action": "opened", "number": 7}"#).expect("write");
    let echo = [GUEST_HOSTILE.component, "--manifest", GUEST_HOSTILE.manifest, "--config", "mode=echo"];
    let echoed =
        run_words(&[&["run"], echo.as_slice(), &["--input", event.to_str().expect("utf-8")]].concat()).await.ok();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&echoed.out).expect("json"),
        serde_json::json!([{"action": "opened", "number": 7}])
    );
    let counted = run_words(&words(&["--allow-bucket", "counters"])).await.ok();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&counted.out).expect("json"), serde_json::json!([1]));
    assert!(counted.err.contains("usage: "), "{}", counted.err);
    let denied = run_words(&words(&[])).await.failed();
    assert!(denied.err.contains("error: capability-denied: "), "{}", denied.err);
    assert!(denied.err.contains("hint: `plugboard run` grants only what its flags say"), "{}", denied.err);
    assert!(denied.out.is_empty(), "{}", denied.out);
    // A panic: its message, then a demangled backtrace of the plugin's own functions.
    let panics = [GUEST_HOSTILE.component, "--manifest", GUEST_HOSTILE.manifest, "--config", "mode=panic"];
    let panicked = run_words(&[&["run"], panics.as_slice(), &["--input", input]].concat()).await.failed();
    assert!(
        panicked.err.contains("error: guest-trap: plugin trapped (unreachable): panicked at hostile/src/lib.rs:"),
        "{}",
        panicked.err
    );
    assert!(
        panicked.err.contains("backtrace:\n    0: <hostile::Hostile as plugboard_plugin_sdk::Transformer>::transform"),
        "{}",
        panicked.err
    );
}

/// `plugboard run` on a source with `--cursor` and `--max-records`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reads_a_source_from_a_cursor() {
    use crate::support::cli::run_words;
    let pages = crate::support::common::TestServer::start(|seen| {
        let reply = if seen.path.contains("page=2") {
            serde_json::json!({"data": [{"id": 3}]})
        } else {
            serde_json::json!({"data": [{"id": 1}, {"id": 2}], "next": "/orders?page=2"})
        };
        (200, reply.to_string())
    })
    .await;
    let url = format!("url={}", pages.url("/orders"));
    let cursor = pages.url("/orders?page=2");
    let source = [HTTP_SOURCE.component, "--manifest", HTTP_SOURCE.manifest, "--allow-host", "127.0.0.1"];
    let mut words = vec!["run"];
    words.extend_from_slice(&source);
    words.extend_from_slice(&["--config", &url, "--config", "records_path=$.data", "--config", "next_path=$.next"]);
    let first = run_words(&[words.as_slice(), &["--max-records", "1"]].concat()).await.ok();
    let page: serde_json::Value = serde_json::from_str(&first.out).expect("json");
    assert_eq!(page["records"], serde_json::json!([{"id": 1}, {"id": 2}]), "{page}");
    assert_eq!(page["next_cursor"], cursor.as_str());
    let second = run_words(&[words.as_slice(), &["--cursor", &cursor]].concat()).await.ok();
    let page: serde_json::Value = serde_json::from_str(&second.out).expect("json");
    assert_eq!(page["records"], serde_json::json!([{"id": 3}]), "{page}");
}
