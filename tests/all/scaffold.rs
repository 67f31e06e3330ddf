//! `plugboard new`: every kind of generated project, in every language, builds with the command
//! its README shows and passes the `plugboard run` its README shows; bad requests are refused.
//!
//! Python and JavaScript projects build with the toolchains the test build installed (an author
//! installs them once, as the README says); every run shares the test compile cache.

use crate::support::cli::run_words;
use plugboard_host_api::scaffold::Lang;
use plugboard_tests::projects;
use serde_json::{Value, json};
use std::path::Path;

/// Creates, builds and runs a project of every kind in `lang`, as its README says.
async fn every_kind_builds_and_runs(lang: Lang, word: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let parent = dir.path().to_str().expect("utf-8 path");
    let cache = crate::support::common::shared_compile_cache();
    let cases: [(&str, Value); 3] = [
        (
            "transformer",
            json!([{"order": "A1", "tag": "new", "total": 12.5}, {"order": "A2", "tag": "new", "total": 40}]),
        ),
        (
            "source",
            json!({"records": [{"id": "0", "n": 0}, {"id": "1", "n": 1}, {"id": "2", "n": 2}], "next_cursor": "3"}),
        ),
        ("sink", json!({"accepted": 2, "failed": 0})),
    ];
    for (kind, expected) in cases {
        let name = format!("my-{word}-{kind}");
        let created = run_words(&["new", &name, "--kind", kind, "--lang", word, "--dir", parent]).await.ok();
        assert!(created.out.contains("plugin.toml"), "{}", created.out);
        let project = dir.path().join(&name);
        // A source reads; it takes no input file.
        assert_eq!(project.join("input.json").exists(), kind != "source", "{kind}");
        let component =
            projects::build(&project, &name, lang, &Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold"));
        // The README shows the build command and the run command; run exactly that.
        let readme = std::fs::read_to_string(project.join("README.md")).expect("readme");
        assert!(readme.contains(lang.build_command()), "{readme}");
        let run_line = readme
            .lines()
            .find(|line| line.starts_with("plugboard run "))
            .unwrap_or_else(|| panic!("no `plugboard run` in the README:\n{readme}"));
        let mut words: Vec<String> = run_line.split_whitespace().skip(1).map(str::to_string).collect();
        for word in &mut words {
            if word.ends_with(".wasm") {
                *word = component.display().to_string();
            } else if word.as_str() == "plugin.toml" || word.as_str() == "input.json" {
                *word = project.join(word.as_str()).display().to_string();
            }
        }
        words.extend(["--cache-dir".to_string(), cache.display().to_string()]);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let ran = run_words(&words).await.ok();
        let output: Value = serde_json::from_str(&ran.out).unwrap_or_else(|err| panic!("{kind}: {err}: {}", ran.out));
        assert_eq!(output, expected, "{word} {kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_new_rust_project_builds_and_runs() {
    every_kind_builds_and_runs(Lang::Rust, "rust").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_new_python_project_builds_and_runs() {
    every_kind_builds_and_runs(Lang::Python, "python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_new_javascript_project_builds_and_runs() {
    every_kind_builds_and_runs(Lang::JavaScript, "js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_new_typescript_project_builds_and_runs() {
    every_kind_builds_and_runs(Lang::TypeScript, "ts").await;
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parent = dir.path().to_str().expect("utf-8 path");
    std::fs::create_dir(dir.path().join("my-sink")).expect("mkdir");
    // Refused: a name that is no plugin name, a directory that exists, an SDK path without the SDK.
    let bad = run_words(&["new", "Bad_Name", "--kind", "sink", "--dir", parent]).await.failed();
    assert!(bad.err.contains("lower-case"), "{}", bad.err);
    let again = run_words(&["new", "my-sink", "--kind", "sink", "--dir", parent]).await.failed();
    assert!(again.err.contains("already exists"), "{}", again.err);
    let no_sdk = run_words(&["new", "other", "--kind", "sink", "--dir", parent, "--sdk", parent]).await.failed();
    assert!(no_sdk.err.contains("not the plugin SDK"), "{}", no_sdk.err);
    let rust_sdk_for_python = Lang::Rust.default_sdk().display().to_string();
    let wrong = run_words(&[
        "new",
        "other",
        "--kind",
        "sink",
        "--lang",
        "python",
        "--dir",
        parent,
        "--sdk",
        &rust_sdk_for_python,
    ])
    .await
    .failed();
    assert!(wrong.err.contains("not the plugin SDK for this language"), "{}", wrong.err);
}
