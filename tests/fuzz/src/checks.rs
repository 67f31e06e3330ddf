//! What each fuzz target does with one input, shared by the cargo-fuzz targets (`tests/fuzz`) and
//! the replay test (`tests/all/fuzz_replay.rs`, which includes this file with `#[path]`), so the
//! regression files run through exactly the code that found them.
//!
//! Every function takes raw bytes and must return without panicking: the library answers `Ok` or
//! a typed error. The `assert!`s are properties the library promises (a signed file verifies, a
//! projection selects what a full parse selects, ...); a failing one is a finding like a panic.

use plugboard_runtime::flow::{CronSchedule, FlowDefinition, RecordCondition, Step};
use plugboard_runtime::signing::{self, PublicKey, SecretKey, TrustStore, VerifyOptions, sections};
use plugboard_runtime::{Grant, Kind, Manifest, Runtime, RuntimeConfig};
use serde_json::Value;
use std::sync::OnceLock;

/// Fuzz-only publisher key (made with `plugboard keygen`; it signs nothing real): `0x81 ‖ secret ‖ public`.
const FUZZ_SECRET_KEY: &str = "817c2043f4f508994278514784f8643f0c1468019a7359493145de20bff17fd2d17e82ee2e67b1045626e7205cf41986982de3766525bd5cf29c96214cffa13c36";
/// Another fuzz-only key, revoked in the trust store so the revoked path is reachable.
const REVOKED_PUBLIC_KEY: &str = "011545224eac66b00f5f081619aba9d2ac4050b2342b5acd95a9d09ab3fb82f6e4";

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .filter_map(|i| text.get(i..i + 2).and_then(|byte| u8::from_str_radix(byte, 16).ok()))
        .collect()
}

/// The fuzz key pair.
pub fn fuzz_key() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(|| SecretKey::from_bytes(&unhex(FUZZ_SECRET_KEY)).expect("fuzz key parses"))
}

/// Trusts the fuzz key; knows a second key as revoked.
pub fn trust() -> &'static TrustStore {
    static TRUST: OnceLock<TrustStore> = OnceLock::new();
    TRUST.get_or_init(|| {
        let mut trust = TrustStore::new();
        trust.add("fuzz", fuzz_key().public()).expect("adds the fuzz key");
        let revoked = PublicKey::from_bytes(&unhex(REVOKED_PUBLIC_KEY)).expect("revoked key parses");
        let id = revoked.key_id();
        trust.add("revoked", revoked).expect("adds the revoked key");
        trust.revoke(&id).expect("revokes");
        trust
    })
}

/// One runtime for every input (building one costs milliseconds).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime builds"))
}

/// `signed_artifact`: the section framing, inspection, verification (signed only, and allowing
/// unsigned files), and for a file that is a Plugboard component, sign-then-verify round trips.
pub fn signed_artifact(data: &[u8]) {
    if let Ok((header, parsed)) = sections::parse(data) {
        // The sections tile the file after the header.
        assert_eq!(header, &data[..8]);
        let total: usize = parsed.iter().map(|s| s.raw.len()).sum();
        assert_eq!(total, data.len() - 8, "sections do not tile the file");
    }
    let inspection = signing::inspect(data);
    let strict = signing::verify(data, trust(), VerifyOptions { allow_unsigned: false });
    let lax = signing::verify(data, trust(), VerifyOptions { allow_unsigned: true });
    if let Ok(verified) = &strict {
        // A verified file names the key that signed it, and allowing unsigned files changes nothing.
        assert_eq!(verified.key_id.as_deref(), Some(fuzz_key().public().key_id().as_str()));
        assert_eq!(lax.as_ref().ok(), Some(verified));
        assert!(verified.manifest.validate().is_ok());
    }
    // Re-signing what verified (or at least inspected with a manifest) must verify.
    let manifest = match (&lax, &inspection) {
        (Ok(verified), _) => Some(verified.manifest.clone()),
        (_, Ok(inspection)) => inspection.manifest.clone().filter(|m| m.validate().is_ok()),
        _ => None,
    };
    if let Some(manifest) = manifest
        && let Ok(signed) = signing::sign(data, &manifest, fuzz_key())
    {
        let verified = signing::verify(&signed, trust(), VerifyOptions::default())
            .unwrap_or_else(|err| panic!("a file just signed does not verify: {err}"));
        assert_eq!(verified.manifest, manifest);
        // Signing again replaces the signature and manifest sections rather than stacking them.
        let again = signing::sign(&signed, &manifest, fuzz_key()).expect("re-signing a signed file");
        assert_eq!(again, signed, "signing is not idempotent");
    }
}

/// `manifest`: TOML parse and validation; a valid manifest survives the JSON form signing embeds.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(manifest) = Manifest::from_toml(text) else { return };
    assert!(manifest.validate().is_ok(), "from_toml returned a manifest that does not validate");
    let json = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let back: Manifest = serde_json::from_slice(&json).expect("a serialized manifest parses");
    assert_eq!(back, manifest, "manifest JSON round trip");
    assert!(back.validate().is_ok());
    let _ = manifest.world();
}

/// A plugin's kind as the fuzzer's plugin names choose it, so validation goes past plugin checks.
fn kind_of(name: &str) -> Option<Kind> {
    match name.len() % 4 {
        0 => None,
        1 => Some(Kind::Source),
        2 => Some(Kind::Transformer),
        _ => Some(Kind::Sink),
    }
}

fn sample_records(json: &Value) -> Vec<plugboard_runtime::Record> {
    let mut with_headers = plugboard_runtime::Record::json(json);
    with_headers.headers.push(plugboard_runtime::Header { name: "type".into(), value: b"order".to_vec() });
    with_headers.headers.push(plugboard_runtime::Header { name: "bin".into(), value: vec![0xff, 0xfe] });
    vec![plugboard_runtime::Record::json(json), with_headers]
}

/// `flow_definition`: a flow document (parse, validate, its cron schedules and route conditions),
/// or else `[condition, record]` or `schedule\ntimezone` read directly.
pub fn flow_definition(data: &[u8]) {
    if let Ok(flow) = serde_json::from_slice::<FlowDefinition>(data) {
        let _ = flow.validate(kind_of);
        let _ = flow.validate(|_| Some(Kind::Transformer));
        let _ = flow.webhook().map(|w| (w.spec(), w.allowed_sources()));
        let _ = flow.plugins();
        let after = chrono_fixed();
        for schedule in flow.cron_schedules() {
            let _ = schedule.next_after(after);
        }
        let samples = [serde_json::json!({"total": 1500, "name": "a", "items": [1, 2]}), Value::Null];
        for pipeline in std::iter::once(&flow.main).chain(flow.branches.values()) {
            for step in &pipeline.steps {
                if let Step::Route { routes, .. } = step {
                    for rule in routes {
                        let _ = rule.when.check();
                        for json in &samples {
                            for record in sample_records(json) {
                                let _ = rule.when.matches(&record, json);
                            }
                        }
                    }
                }
            }
        }
        // What the store writes back reads back the same.
        let text = serde_json::to_vec(&flow).expect("a flow serializes");
        let back: FlowDefinition = serde_json::from_slice(&text).unwrap_or_else(|err| {
            panic!("a serialized flow does not parse: {err}: {}", String::from_utf8_lossy(&text))
        });
        assert_eq!(back, flow, "flow JSON round trip");
        return;
    }
    if let Ok((condition, json)) = serde_json::from_slice::<(plugboard_runtime::flow::Condition, Value)>(data) {
        let _ = condition.check();
        for record in sample_records(&json) {
            let _ = condition.matches(&record, &json);
        }
        return;
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let (schedule, timezone) = text.split_once('\n').unwrap_or((text, "UTC"));
        if let Ok(parsed) = CronSchedule::parse(schedule, timezone, false) {
            let _ = parsed.next_after(chrono_fixed());
        }
    }
}

fn chrono_fixed() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_780_000_000, 0).expect("a fixed time")
}

/// `sdk_json`: `paths separated by | \n json`. Path parsing and selection, the JSON check, and the
/// projection's promise: it parses whatever a full parse does and every path selects the same.
pub fn sdk_json(data: &[u8]) {
    use plugboard_plugin_sdk::json::{check, parse_value};
    use plugboard_plugin_sdk::path::Path;
    use plugboard_plugin_sdk::projection::Projection;
    let (head, json) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"$"[..], data),
    };
    let head = String::from_utf8_lossy(head);
    let paths: Vec<Path> = head.split('|').filter_map(|text| Path::parse(text).ok()).collect();
    for path in &paths {
        assert_eq!(Path::parse(path.as_str()).as_ref(), Ok(path), "a path does not re-parse the same");
    }

    let checked = check(json);
    let full = parse_value::<Value>(json, 0);
    if full.is_ok() {
        assert!(checked.is_ok(), "check refused JSON a full parse accepts");
    }
    let projection = Projection::of(paths.iter());
    let projected = projection.parse(json);
    if projected.is_ok() {
        assert!(checked.is_ok(), "a projection accepted JSON check refuses");
    }
    let record = plugboard_plugin_sdk::Record { key: None, value: json.to_vec(), headers: Vec::new() };
    let batch = projection.parse_batch(&vec![record]);
    assert_eq!(batch.is_ok(), projected.is_ok());
    if let Ok(full) = &full {
        let projected = projected.unwrap_or_else(|err| panic!("projection refused JSON a full parse accepts: {err}"));
        for path in &paths {
            assert_eq!(path.select(&projected), path.select(full), "`{}` selects differently", path.as_str());
            assert_eq!(path.get(&projected), path.get(full));
            assert_eq!(path.find(&projected), path.find(full));
            let mut copy = full.clone();
            let _ = path.get_mut(&mut copy);
        }
    }
}

/// `components` (the part that needs no generator): the bytes as a plugin, through inspection and
/// [`Runtime::load`] / [`Runtime::load_signed`]; each must answer `Ok` or a typed error.
pub fn component_bytes(data: &[u8]) {
    let _ = signing::inspect(data);
    let manifest = Manifest::from_toml("name = \"fuzz\"\nversion = \"0.1.0\"\nkind = \"transformer\"")
        .expect("the fuzz manifest is valid");
    let _ = runtime().load(data, manifest, &Grant::default());
    let _ = runtime().load_signed(data, trust(), &Grant::default(), VerifyOptions { allow_unsigned: true });
}

/// `components` for inputs that need no generator: a first byte `≡ 0 (mod 4)` means the rest is
/// a plugin file (what the target does; the other modes feed wasm-smith, which the replay lacks:
/// a finding there is kept as the generated bytes behind a `0` byte).
pub fn components(data: &[u8]) {
    if let Some((&mode, rest)) = data.split_first()
        && mode % 4 == 0
    {
        component_bytes(rest);
    }
}
