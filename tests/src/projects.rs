//! Builds `plugboard new` projects the way their README says, with the toolchains the test build
//! installed: shared by the scaffolding tests (does every template build and run?) and the
//! languages benchmark (the same transformer in every language, measured side by side).

use plugboard_host_api::scaffold::{self, Lang};
use plugboard_runtime::Kind;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Creates project `name` of `kind` in `lang` under `parent` and builds it; answers the project
/// directory and its component. Rust projects build into `rust_target`, so several share one SDK
/// build.
pub fn create_and_build(parent: &Path, name: &str, kind: Kind, lang: Lang, rust_target: &Path) -> (PathBuf, PathBuf) {
    let created = scaffold::create(parent, name, kind, lang, &lang.default_sdk())
        .unwrap_or_else(|err| panic!("plugboard new {name}: {err}"));
    let component = build(&created.dir, name, lang, rust_target);
    (created.dir, component)
}

/// Builds the project in `dir` with its README's build command; answers the component.
pub fn build(dir: &Path, name: &str, lang: Lang, rust_target: &Path) -> PathBuf {
    match lang {
        Lang::Rust => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut command = Command::new(cargo);
            command
                .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
                .env("CARGO_TARGET_DIR", rust_target);
            succeeds(command.current_dir(dir), dir);
            return rust_target.join(format!("wasm32-wasip2/release/{}.wasm", name.replace('-', "_")));
        }
        // The build script finds componentize-py through `COMPONENTIZE_PY`, as in an author's venv.
        Lang::Python => {
            succeeds(Command::new("./build.sh").env("COMPONENTIZE_PY", crate::COMPONENTIZE_PY).current_dir(dir), dir);
        }
        // `npm install` would fetch jco into every project: link the installed one instead.
        Lang::JavaScript | Lang::TypeScript => {
            let link = dir.join("node_modules");
            if !link.exists() {
                std::os::unix::fs::symlink(crate::JS_NODE_MODULES, &link).expect("link node_modules");
            }
            succeeds(Command::new("npm").args(["run", "build", "--silent"]).current_dir(dir), dir);
        }
    }
    dir.join(scaffold::component_path(name, lang))
}

/// Runs `command`, panicking with its output when it fails.
fn succeeds(command: &mut Command, dir: &Path) {
    let output = command.output().expect("run the build");
    assert!(
        output.status.success(),
        "{} does not build:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
