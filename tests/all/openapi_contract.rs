//! The API document as a contract, proven by a tool no one here wrote (issue 28, point 1):
//! schemathesis (pinned in `tests/senders/requirements.txt`, configured by
//! `tests/senders/schemathesis.toml`) drives the real `plugboard serve --demo` binary over every
//! operation of its own `/openapi.json` with the admin token — generated valid and invalid
//! parameters and bodies from the documented schemas, then stateful sequences — and fails on any
//! 5xx, any status the document does not list, any content type it does not name, and any body
//! its schema does not describe. A handler whose answer drifts from its type's schema, or a
//! route whose body is not the one documented, fails here. And a client generated from the same
//! document drives a whole scenario.

use crate::support::demo::Demo;
use crate::support::flows::sender_script;
use plugboard_runtime::signing::{self, SecretKey};
use plugboard_tests::JSON_MAPPER;
use serde_json::json;
use std::path::Path;
use std::process::Command;

const TOKEN: &str = "contract-admin-token-0123456789abcdef0123456789";

/// The senders' venv's `bin`, where the pinned Python tools are.
fn tools() -> &'static Path {
    Path::new(plugboard_tests::SENDERS_PYTHON).parent().expect("the venv's bin")
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = Demo::start(&dir.path().join("data"), Some(TOKEN));
    let senders = Path::new(plugboard_tests::SENDERS_DIR);
    let work = dir.path().join("schemathesis");
    std::fs::create_dir_all(&work).expect("work dir");
    let output = Command::new(tools().join("schemathesis"))
        .arg("--config-file")
        .arg(senders.join("schemathesis.toml"))
        .args(["--no-color", "run"])
        .arg(format!("{}/openapi.json", demo.base))
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(work.join("junit.xml"))
        .current_dir(&work)
        .env("SCHEMATHESIS_HOOKS", senders.join("schemathesis_hooks.py"))
        .env("HYPOTHESIS_STORAGE_DIRECTORY", work.join("hypothesis"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run schemathesis");
    drop(demo);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "schemathesis failed:\n{report}\n{}", String::from_utf8_lossy(&output.stderr));
    // It really ran: every operation but the document itself, and requests answered.
    assert!(report.contains("passed"), "{report}");
}

/// A client generated from the served document by `openapi-python-client` (pinned) drives a
/// scenario with its own functions and models only (`tests/senders/generated_client_scenario.py`):
/// trust a key, push a plugin it signed, activate, configure and invoke it, define a flow with it,
/// run the flow and read the execution back. A route whose body the document describes wrongly,
/// an enum the generator cannot read, or an answer its model cannot parse fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_generated_from_the_document_drives_a_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = Demo::start(&dir.path().join("data"), Some(TOKEN));
    // A json-mapper build under a name of its own, signed by a key the server does not trust yet.
    let key = SecretKey::generate().expect("key");
    let public = key.write_files(&dir.path().join("gen")).expect("key files");
    let mut manifest = JSON_MAPPER.manifest();
    manifest.name = "gen-mapper".into();
    let plugin = dir.path().join("gen-mapper.wasm");
    std::fs::write(&plugin, signing::sign(&JSON_MAPPER.bytes(), &manifest, &key).expect("sign")).expect("write");

    let document = reqwest::get(format!("{}/openapi.json", demo.base)).await.expect("GET").text().await.expect("body");
    let spec = dir.path().join("openapi.json");
    std::fs::write(&spec, document).expect("write the document");
    let client_dir = dir.path().join("client");
    let path = format!("{}:{}", tools().display(), std::env::var("PATH").unwrap_or_default());
    let generated = Command::new(tools().join("openapi-python-client"))
        .args(["generate", "--meta", "none", "--path"])
        .arg(&spec)
        .arg("--output-path")
        .arg(client_dir.join("plugboard_client"))
        .env("PATH", path)
        .output()
        .expect("run openapi-python-client");
    let said = format!("{}{}", String::from_utf8_lossy(&generated.stdout), String::from_utf8_lossy(&generated.stderr));
    assert!(generated.status.success(), "generation failed:\n{said}");
    // What it cannot generate it says; the only media types it skips are the ones it has no
    // model for (a flow as YAML, a plugin as `application/wasm`, each also offered in a form it
    // reads).
    for line in said.lines().filter(|line| line.contains("Unsupported") || line.contains("Unable")) {
        assert!(line.contains("application/yaml") || line.contains("application/wasm"), "{said}");
    }

    let input = json!({
        "base": demo.base,
        "token": TOKEN,
        "client_dir": client_dir,
        "plugin": plugin,
        "public_key": public,
        "config": {"mapping": {"id": "$.orderId", "total": "$.orderTotal", "customer": {"id": "$.customerId"}}},
        "expect_records": [{"id": "A1", "total": 1250, "customer": {"id": 7}}],
    });
    let ran = sender_script("generated_client_scenario.py", &input);
    drop(demo);
    assert_eq!(ran["execution"]["status"], "succeeded", "{ran:#}");
    assert_eq!(ran["steps"].as_array().map(Vec::len), Some(8), "{ran:#}");
}
