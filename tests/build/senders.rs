//! The webhook senders' own signing libraries, which the webhook tests sign deliveries with
//! (`tests/all/senders.rs`): the test build installs them pinned, as it installs the plugin
//! toolchains — Python's from `tests/senders/requirements.txt` into a venv under `target/`,
//! Node's from `tests/senders/package-lock.json` by `npm ci`. A protocol is proven against the
//! other side's code, never against a copy of it written here.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::languages::{hash_bytes, run};

/// Installs both when missing or their pins changed; answers the venv's `python` and the
/// directory holding `sign.mjs` and its `node_modules`.
pub fn install(repo: &Path, target_dir: &Path) -> (PathBuf, PathBuf) {
    let senders = repo.join("tests/senders");
    let pins = senders.join("requirements.txt");
    let venv = target_dir.join("lang-toolchains/senders-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("pins.stamp");
    let wanted = std::fs::read_to_string(&pins).unwrap_or_else(|err| panic!("{}: {err}", pins.display()));
    if !(python.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted)) {
        let system = std::env::var("PLUGBOARD_PYTHON").unwrap_or_else(|_| "python3".into());
        run(Command::new(&system).args(["-m", "venv", "--clear"]).arg(&venv), "creating the senders' Python venv");
        run(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--disable-pip-version-check", "--quiet", "-r"])
                .arg(&pins),
            "installing the senders' Python libraries (tests/senders/requirements.txt)",
        );
        std::fs::write(&stamp, &wanted).unwrap_or_else(|err| panic!("{}: {err}", stamp.display()));
    }
    let lock = std::fs::read(senders.join("package-lock.json")).unwrap_or_default();
    let stamp = target_dir.join("lang-toolchains/senders-npm.stamp");
    let wanted = format!("{:016x}", hash_bytes(&lock));
    let installed = senders.join("node_modules/stripe/package.json").is_file();
    if !(installed && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted)) {
        run(
            Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&senders),
            "installing the senders' npm libraries (npm ci in tests/senders)",
        );
        if let Some(parent) = stamp.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::write(&stamp, wanted).unwrap_or_else(|err| panic!("{}: {err}", stamp.display()));
    }
    (python, senders)
}
