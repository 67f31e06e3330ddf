//! Builds the Python and JavaScript/TypeScript sample plugins from source, with toolchains this
//! build installs itself, pinned: componentize-py (from `plugin-sdk/python/requirements-build.txt`,
//! into a virtual environment under `<target>/lang-toolchains`) and jco with componentize-js (from
//! `sample-plugins/js/package-lock.json`, by `npm ci`). Needs `python3` (with `venv`) and `npm`.
//!
//! A component takes seconds to build (it embeds an interpreter), so each is rebuilt only when
//! its inputs change: a stamp beside the output hashes the sample, the SDK, the WIT and the
//! toolchain's pins.

use crate::guests::Built;
use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A language the samples are written in.
#[derive(Clone, Copy)]
pub enum Language {
    Python,
    JavaScript,
}

/// Builds every plugin of `language` under `<root>/<python|js>/` (`root`: `sample-plugins` or
/// `tests/guests`, relative to the repository); returns them as (constant name, component,
/// manifest), sorted.
pub fn build_samples(language: Language, root: &str, repo: &Path, target_dir: &Path) -> Vec<Built> {
    let samples_dir = repo.join(root).join(language.dir());
    let out_dir = target_dir.join("lang").join(root.replace('/', "-")).join(language.dir());
    std::fs::create_dir_all(&out_dir).unwrap_or_else(|err| panic!("{}: {err}", out_dir.display()));
    let mut samples: Vec<PathBuf> = std::fs::read_dir(&samples_dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|dir| dir.join("plugin.toml").is_file())
        .collect();
    samples.sort();
    if samples.is_empty() {
        return Vec::new();
    }
    let tool = language.install(repo, target_dir);
    let mut built = Vec::new();
    for sample in samples {
        let dir_name = sample.file_name().map(|n| n.to_string_lossy().replace('-', "_")).unwrap_or_default();
        let app = language.app(&sample);
        let prefix = match (language, app.extension().and_then(|e| e.to_str())) {
            (Language::Python, _) => "py",
            (Language::JavaScript, Some("ts")) => "ts",
            (Language::JavaScript, _) => "js",
        };
        let name = format!("{prefix}_{dir_name}");
        let manifest = sample.join("plugin.toml");
        let world = world_of(&manifest);
        let wasm = out_dir.join(format!("{name}.wasm"));
        let stamp = wasm.with_extension("stamp");
        let mut command = language.build_command(&tool, repo, &sample, &app, &world, &wasm);
        // The command line is an input too: changed flags rebuild.
        let inputs =
            format!("{:016x}", inputs_hash(repo, &sample, language) ^ hash_bytes(format!("{command:?}").as_bytes()));
        let fresh = wasm.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == inputs);
        if !fresh {
            let _ = std::fs::remove_file(&stamp);
            let output = command.output().unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
            assert!(
                output.status.success() && wasm.is_file(),
                "building {} failed:\n{}\n{}",
                sample.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            std::fs::write(&stamp, &inputs).unwrap_or_else(|err| panic!("{}: {err}", stamp.display()));
        }
        built.push((name, wasm, manifest));
    }
    built
}

/// Where the installed toolchains are: (componentize-py, the `node_modules` holding jco and the
/// SDK). Installs them when missing, so the scaffolding tests can build projects too.
pub fn toolchains(repo: &Path, target_dir: &Path) -> (PathBuf, PathBuf) {
    let python = Language::Python.install(repo, target_dir);
    let jco = Language::JavaScript.install(repo, target_dir);
    let node_modules = jco.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    (python, node_modules)
}

impl Language {
    fn dir(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "js",
        }
    }

    /// The sample's entry point: `app.py`, or `app.ts` / `app.js`.
    fn app(self, sample: &Path) -> PathBuf {
        let candidates: &[&str] = match self {
            Language::Python => &["app.py"],
            Language::JavaScript => &["app.ts", "app.js"],
        };
        candidates
            .iter()
            .map(|file| sample.join(file))
            .find(|path| path.is_file())
            .unwrap_or_else(|| panic!("{} has none of {candidates:?}", sample.display()))
    }

    /// Installs the pinned toolchain when it is missing or its pins changed; returns the tool.
    fn install(self, repo: &Path, target_dir: &Path) -> PathBuf {
        match self {
            Language::Python => {
                let pins = repo.join("plugin-sdk/python/requirements-build.txt");
                let venv = target_dir.join("lang-toolchains/venv");
                let tool = venv.join("bin/componentize-py");
                let stamp = venv.join("pins.stamp");
                let wanted = std::fs::read_to_string(&pins).unwrap_or_else(|err| panic!("{}: {err}", pins.display()));
                if tool.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
                    return tool;
                }
                let python = std::env::var("PLUGBOARD_PYTHON").unwrap_or_else(|_| "python3".into());
                run(
                    Command::new(&python).args(["-m", "venv", "--clear"]).arg(&venv),
                    "creating a Python venv (needs python3 with venv)",
                );
                run(
                    Command::new(venv.join("bin/pip"))
                        .args(["install", "--disable-pip-version-check", "--quiet", "-r"])
                        .arg(&pins),
                    "installing componentize-py",
                );
                std::fs::write(&stamp, wanted).unwrap_or_else(|err| panic!("{}: {err}", stamp.display()));
                tool
            }
            Language::JavaScript => {
                let project = repo.join("sample-plugins/js");
                let tool = project.join("node_modules/.bin/jco");
                let lock = std::fs::read(project.join("package-lock.json")).unwrap_or_default();
                let stamp = target_dir.join("lang-toolchains/npm-lock.stamp");
                let wanted = format!("{:016x}", hash_bytes(&lock));
                if tool.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
                    return tool;
                }
                run(
                    Command::new("npm")
                        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                        .current_dir(&project),
                    "installing jco (npm ci in sample-plugins/js; needs node and npm)",
                );
                if let Some(parent) = stamp.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                std::fs::write(&stamp, wanted).unwrap_or_else(|err| panic!("{}: {err}", stamp.display()));
                tool
            }
        }
    }

    fn build_command(self, tool: &Path, repo: &Path, sample: &Path, app: &Path, world: &str, wasm: &Path) -> Command {
        let mut command = Command::new(tool);
        match self {
            Language::Python => {
                command
                    .arg("-d")
                    .arg(repo.join("wit"))
                    .args(["-w", world, "componentize", "-p"])
                    .arg(repo.join("plugin-sdk/python"))
                    .arg("-p")
                    .arg(sample)
                    .args(["app", "-o"])
                    .arg(wasm);
            }
            Language::JavaScript => {
                command
                    .arg("componentize")
                    .arg(app)
                    .arg("--wit")
                    .arg(repo.join("wit"))
                    .args(["--world-name", world])
                    .args(JCO_FLAGS)
                    .arg("-o")
                    .arg(wasm)
                    .current_dir(sample);
            }
        }
        command
    }
}

/// jco's flags for every world, as `plugboard new` writes them (`JCO_DISABLE` in the scaffold):
/// one bundled module, none of the engine's own WASI features (the SDK speaks `wasi:http`
/// itself), so the component imports exactly what its world offers.
const JCO_FLAGS: [&str; 3] = ["--bundle", "-d", "all"];

/// The `kind` of a `plugin.toml`.
fn world_of(manifest: &Path) -> String {
    let text = std::fs::read_to_string(manifest).unwrap_or_else(|err| panic!("{}: {err}", manifest.display()));
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("kind"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .map(|value| value.trim().trim_matches('"').to_string())
        .next()
        .unwrap_or_else(|| panic!("{} has no kind", manifest.display()))
}

/// Runs `command`, failing the build with `what` when it fails.
pub fn run(command: &mut Command, what: &str) {
    let status = command.status().unwrap_or_else(|err| panic!("{what}: cannot run {command:?}: {err}"));
    assert!(status.success(), "{what} failed: {command:?} exited with {status}");
}

/// Hashes everything a sample's component is built from.
fn inputs_hash(repo: &Path, sample: &Path, language: Language) -> u64 {
    let sdk = repo.join("plugin-sdk").join(language.dir());
    let pins = match language {
        Language::Python => repo.join("plugin-sdk/python/requirements-build.txt"),
        Language::JavaScript => repo.join("sample-plugins/js/package-lock.json"),
    };
    let mut files = Vec::new();
    for dir in [sample.to_path_buf(), sdk, repo.join("wit")] {
        crate::guests::source_files(&dir, &mut files);
    }
    files.push(pins);
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        hasher.write(file.to_string_lossy().as_bytes());
        hasher.write(&std::fs::read(&file).unwrap_or_default());
    }
    hasher.finish()
}

/// A stamp of `bytes` (a lock file), to see when pins changed.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}
