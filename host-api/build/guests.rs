//! Shared by the build scripts of `host-api` (which embeds the sample plugins) and `tests` (which
//! also builds the hostile test guests): builds a workspace of guests for `wasm32-wasip2`.
//!
//! As wasmtime's test-programs do: a nested `cargo build` with the outer build's flags removed
//! (they are meant for the host). All nested builds share one target directory beside the outer
//! one, so the sample plugins are compiled once however many build scripts ask for them.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// A built guest: crate name (with underscores), component path, manifest path.
pub type Built = (String, PathBuf, PathBuf);

/// `<outer target dir>/wasm-guests`, derived from `OUT_DIR` (`<target>/<profile>/build/<pkg>/out`).
pub fn guests_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env("OUT_DIR"));
    out_dir.ancestors().nth(4).map_or_else(|| out_dir.join("wasm-guests"), |target| target.join("wasm-guests"))
}

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// Builds every crate of the workspace at `dir` for wasm32-wasip2; returns (crate name, component,
/// manifest) for each member that has a `plugin.toml`, sorted by name.
pub fn build_workspace(cargo: &str, dir: &Path, target_dir: &Path) -> Vec<Built> {
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
    for var in
        ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_MAKEFLAGS", "RUSTC_WORKSPACE_WRAPPER"]
    {
        build.env_remove(var);
    }
    let status = build.status().unwrap_or_else(|err| panic!("cannot run {cargo}: {err}"));
    assert!(status.success(), "building {} for {TARGET} failed (see the errors above)", dir.display());

    let mut built: Vec<Built> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|member| member.join("plugin.toml").is_file())
        .map(|member| {
            let crate_name = member.file_name().map(|n| n.to_string_lossy().replace('-', "_")).unwrap_or_default();
            let wasm = target_dir.join(TARGET).join("release").join(format!("{crate_name}.wasm"));
            assert!(wasm.is_file(), "{} was not built", wasm.display());
            (crate_name, wasm, member.join("plugin.toml"))
        })
        .collect();
    built.sort();
    built
}

/// Installs the wasm32-wasip2 target through rustup when it is missing, or explains how.
pub fn ensure_target(cargo: &str) {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let installed = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .is_some_and(|dir| {
            dir.join("libstd.rlib").exists() || std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some())
        });
    if installed {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (needed to build the sample plugins)");
    let added = Command::new("rustup").args(["target", "add", TARGET]).status().is_ok_and(|s| s.success());
    assert!(
        added,
        "the {TARGET} target is missing and `rustup target add {TARGET}` failed; install it and run again ({cargo} test)"
    );
}

/// Every source file under `dir`, skipping what builds and package managers write there
/// (`target/`, `node_modules/`, `__pycache__/`, dot directories).
pub fn source_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // `file_type` does not follow symbolic links: a linked directory (a loop, a linked
        // node_modules) is not walked.
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            if !(name.starts_with('.') || matches!(name.as_ref(), "target" | "node_modules" | "__pycache__")) {
                source_files(&path, files);
            }
        } else {
            files.push(path);
        }
    }
}

/// Tells cargo to rerun the build script when a source file under one of `dirs` changes. File by
/// file, not the directories: cargo scans a watched directory whole, and `sample-plugins/js`
/// holds a `node_modules` of hundreds of megabytes that `npm ci` rewrites.
pub fn watch(repo: &Path, dirs: &[&str]) {
    let mut files = Vec::new();
    for dir in dirs {
        source_files(&repo.join(dir), &mut files);
    }
    files.sort();
    for file in files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}
