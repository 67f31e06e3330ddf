//! `plugboard new`: every kind of generated project builds with plain `cargo build --target
//! wasm32-wasip2` and passes `plugboard run` as its README says, and bad requests are refused.

use crate::client_cli::run_words;
use serde_json::{Value, json};
use std::path::Path;

/// Builds the project in `dir` into the shared `target` (so the three kinds share one SDK build).
fn build(dir: &Path, target: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("run cargo");
    assert!(output.status.success(), "{} does not build: {}", dir.display(), String::from_utf8_lossy(&output.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_new_rust_project_builds_and_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parent = dir.path().to_str().expect("utf-8 path");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold");
    let cases: [(&str, &[&str], Value); 3] = [
        (
            "transformer",
            &["--config", "tag=new", "--input", "input.json"],
            json!([{"order": "A1", "tag": "new", "total": 12.5}, {"order": "A2", "tag": "new", "total": 40}]),
        ),
        (
            "source",
            &["--max-records", "3", "--cursor", "8"],
            json!({"records": [{"id": "8", "n": 8}, {"id": "9", "n": 9}], "next_cursor": "10"}),
        ),
        ("sink", &["--input", "input.json"], json!({"accepted": 2, "failed": 0})),
    ];
    for (kind, run_args, expected) in cases {
        let name = format!("my-{kind}");
        let created = run_words(&["new", &name, "--kind", kind, "--dir", parent]).await.ok();
        assert!(created.out.contains("plugin.toml"), "{}", created.out);
        let project = dir.path().join(&name);
        build(&project, &target);
        let component = target.join(format!("wasm32-wasip2/release/my_{kind}.wasm"));
        let manifest = project.join("plugin.toml");
        let mut words =
            vec!["run", component.to_str().expect("utf-8"), "--manifest", manifest.to_str().expect("utf-8")];
        let input = project.join("input.json");
        let input = input.to_str().expect("utf-8");
        words.extend(run_args.iter().map(|arg| if *arg == "input.json" { input } else { arg }));
        let ran = run_words(&words).await.ok();
        let output: Value = serde_json::from_str(&ran.out).unwrap_or_else(|err| panic!("{kind}: {err}: {}", ran.out));
        assert_eq!(output, expected, "{kind}");
        // The README shows the same command.
        let readme = std::fs::read_to_string(project.join("README.md")).expect("readme");
        assert!(readme.contains(&format!("plugboard run {}", plugboard_host_api::scaffold::component_path(&name))));
    }
    // Refused: a name that is no plugin name, a directory that exists, an SDK path without the SDK.
    let bad = run_words(&["new", "Bad_Name", "--kind", "sink", "--dir", parent]).await.failed();
    assert!(bad.err.contains("lower-case"), "{}", bad.err);
    let again = run_words(&["new", "my-sink", "--kind", "sink", "--dir", parent]).await.failed();
    assert!(again.err.contains("already exists"), "{}", again.err);
    let no_sdk = run_words(&["new", "other", "--kind", "sink", "--dir", parent, "--sdk", parent]).await.failed();
    assert!(no_sdk.err.contains("not the plugin SDK"), "{}", no_sdk.err);
}
