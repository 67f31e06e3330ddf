//! The dashboard reads the API's answers through the API's own schemas (issue 28, point 1): its
//! pages annotate every answer with a JSDoc type from `host-api/ui/js/types.js`, which names the
//! schemas of `/openapi.json`; this test generates those types from the served document with
//! `openapi-typescript` and runs TypeScript's checker (`tsc --checkJs`, both pinned in
//! `tests/senders/package.json`) over the dashboard's modules. A field the server renames or drops
//! is then a type error here, not an `undefined` on a page — and to prove the check has teeth,
//! the same modules checked against a document with one field renamed must fail.

use crate::support::server::Api;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(name: &str) -> PathBuf {
    Path::new(plugboard_tests::SENDERS_DIR).join("node_modules/.bin").join(name)
}

/// Copies the dashboard's modules to `into`, generates `api-schema.d.ts` there from `document`,
/// and answers what `tsc` said (empty when the modules type-check).
fn check(document: &str, into: &Path) -> String {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host-api/ui/js");
    copy_dir(&modules, into);
    let spec = into.join("openapi.json");
    std::fs::write(&spec, document).expect("write the document");
    let generated = Command::new(tool("openapi-typescript"))
        .arg(&spec)
        .arg("-o")
        .arg(into.join("api-schema.d.ts"))
        .output()
        .expect("run openapi-typescript");
    assert!(generated.status.success(), "openapi-typescript: {}", String::from_utf8_lossy(&generated.stderr));
    let mut pages: Vec<PathBuf> = std::fs::read_dir(into.join("pages"))
        .expect("pages")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "js"))
        .collect();
    pages.sort();
    let checked = Command::new(tool("tsc"))
        .args(["--allowJs", "--checkJs", "--noEmit", "--pretty", "false", "--target", "es2022", "--module", "es2022"])
        .args(["--moduleResolution", "bundler", "--lib", "es2022,dom,dom.iterable"])
        .arg(into.join("app.js"))
        .args(&pages)
        .current_dir(into)
        .output()
        .expect("run tsc");
    let said = String::from_utf8_lossy(&checked.stdout).into_owned();
    assert_eq!(
        checked.status.success(),
        said.trim().is_empty(),
        "tsc: {said}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    said
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("a name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_type_checks_against_the_served_schemas_and_a_renamed_field_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Api::start(&dir.path().join("data")).await;
    let (_, document) = api.call(reqwest::Method::GET, "/openapi.json", None, None).await;
    api.stop().await;
    let document = document.to_string();

    let said = check(&document, &dir.path().join("served"));
    assert!(said.trim().is_empty(), "the dashboard does not type-check against the served schemas:\n{said}");

    // `PluginSummary.active_version` renamed, as a server change might: the plugins page reads it.
    let renamed = document.replace("\"active_version\"", "\"current_version\"");
    assert_ne!(renamed, document);
    let said = check(&renamed, &dir.path().join("renamed"));
    assert!(said.contains("active_version"), "a renamed field the dashboard reads went unnoticed:\n{said}");
}
