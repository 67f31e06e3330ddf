//! Replays the fuzz targets' committed inputs: every file under `tests/fuzz/regressions/<target>/`
//! (inputs that once found a bug) and `tests/fuzz/seeds/<target>/` (small seeds) goes through the
//! same per-input function the cargo-fuzz target calls (`tests/fuzz/src/checks.rs`, included
//! here), which must end without a panic: in `Ok` or a typed error. See `tests/fuzz/README.md`.

#[path = "../fuzz/src/checks.rs"]
mod checks;
#[path = "../fuzz/src/checks_cluster.rs"]
mod checks_cluster;
#[path = "../fuzz/src/checks_webhook.rs"]
mod checks_webhook;

use std::path::Path;

fn replay(target: &str, check: impl Fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for kind in ["regressions", "seeds"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) else { continue };
        let mut paths: Vec<_> = entries.map(|entry| entry.expect("directory entry").path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).expect("readable input");
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
            assert!(outcome.is_ok(), "{} panicked", path.display());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no inputs for {target}");
}

#[test]
fn signed_artifact() {
    replay("signed_artifact", checks::signed_artifact);
}

#[test]
fn manifest() {
    replay("manifest", checks::manifest);
}

#[test]
fn flow_definition() {
    replay("flow_definition", checks::flow_definition);
}

#[test]
fn webhook() {
    replay("webhook", checks_webhook::webhook);
}

#[test]
fn webhook_schemes() {
    replay("webhook_schemes", |data| {
        checks_webhook::webhook_schemes(data);
    });
    // The generic `hmac` seeds are signed with the check's secret: they reach the check that no
    // other secret authenticates them.
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/webhook_schemes");
    for name in ["hmac-timestamped", "hmac-sha512-base64", "hmac-sha1-flow"] {
        let data = std::fs::read(seeds.join(name)).expect("seed");
        assert!(checks_webhook::webhook_schemes(&data), "seed {name} does not authenticate");
    }
}

#[test]
fn cluster_change() {
    let harness = checks_cluster::Harness::start();
    replay("cluster_change", |data| harness.check(data));
}

#[test]
fn sdk_json() {
    replay("sdk_json", checks::sdk_json);
}

#[test]
fn components() {
    replay("components", checks::components);
}
