//! `plugboard new --lang rust|python|js|ts --kind transformer|source|sink NAME`: a plugin project
//! that builds and runs as it is, so an author starts from working code, a manifest with budgets
//! that fit the language, a test input and the build command, instead of a blank page.
//!
//! Every language's template does the same thing per kind (a transformer tags records from
//! config, a source numbers records from its cursor, a sink logs what it gets), so the generated
//! projects are also the benchmark's same-work plugins across languages. The project names the
//! SDK (and, for Python and JavaScript, the WIT) by path: by default those of the checkout this
//! binary was built from; `--sdk` points at another copy of the language's SDK.

mod interpreted;
mod rust;

pub use interpreted::JCO_DISABLE;

use crate::commands::CommandError;
use plugboard_runtime::Kind;
use std::path::{Path, PathBuf};

/// A language `plugboard new` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust with `plugboard-plugin-sdk`.
    Rust,
    /// Python with `plugboard_sdk`, built by componentize-py.
    Python,
    /// JavaScript with `@plugboard/sdk`, built by jco.
    JavaScript,
    /// TypeScript with `@plugboard/sdk`, built by jco.
    TypeScript,
}

impl Lang {
    /// The SDK of the checkout this binary was built from.
    pub fn default_sdk(self) -> PathBuf {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
        match self {
            Lang::Rust => sdk,
            Lang::Python => sdk.join("python"),
            Lang::JavaScript | Lang::TypeScript => sdk.join("js"),
        }
    }

    /// The file the plugin's code is in.
    fn app_file(self) -> &'static str {
        match self {
            Lang::Rust => "src/lib.rs",
            Lang::Python => "app.py",
            Lang::JavaScript => "app.js",
            Lang::TypeScript => "app.ts",
        }
    }

    /// The command that builds the component, run in the project.
    pub fn build_command(self) -> &'static str {
        match self {
            Lang::Rust => "cargo build --release --target wasm32-wasip2",
            Lang::Python => "./build.sh",
            Lang::JavaScript | Lang::TypeScript => "npm install --no-audit --no-fund && npm run build",
        }
    }

    /// What the build command needs once.
    fn setup(self) -> &'static str {
        match self {
            Lang::Rust => "rustup target add wasm32-wasip2",
            Lang::Python => "python3 -m venv venv && venv/bin/pip install componentize-py==0.25.1",
            Lang::JavaScript | Lang::TypeScript => "node 20 or later with npm (npm install fetches jco)",
        }
    }

    /// What the build leaves in the project that is not source.
    fn ignored(self) -> &'static str {
        match self {
            Lang::Rust => "target/\n*.key\n",
            Lang::Python => "*.wasm\n*.key\nvenv/\n__pycache__/\n",
            Lang::JavaScript | Lang::TypeScript => "*.wasm\n*.key\nnode_modules/\n",
        }
    }

    /// The budget a plugin in this language needs: an interpreter costs 150–260 thousand fuel units
    /// per JSON record, 6–20 times Rust (JavaScript another 5 million per call) and about 13 MiB
    /// of memory before it reads a record, so the Rust budget would stop it after a few thousand
    /// records.
    fn budget(self) -> &'static str {
        match self {
            Lang::Rust => "fuel = 1_000_000_000\ntimeout_ms = 2_000\n",
            Lang::Python | Lang::JavaScript | Lang::TypeScript => {
                "fuel = 4_000_000_000\nmemory_bytes = 268_435_456\ntimeout_ms = 5_000\n"
            }
        }
    }
}

/// What `plugboard new` wrote.
#[derive(Debug)]
pub struct Created {
    /// The project directory.
    pub dir: PathBuf,
    /// The files, relative to it.
    pub files: Vec<&'static str>,
}

/// Creates project `name` of `kind` in `lang` in `parent/name`, over the SDK at `sdk`.
///
/// # Errors
/// [`CommandError::Input`] for a name that is not a plugin name, an existing directory, or an SDK
/// path without the language's SDK (or, for Python and JavaScript, without the WIT beside it);
/// I/O errors writing the files.
pub fn create(parent: &Path, name: &str, kind: Kind, lang: Lang, sdk: &Path) -> Result<Created, CommandError> {
    let probe = plugboard_runtime::Manifest {
        name: name.to_string(),
        version: semver::Version::new(0, 1, 0),
        kind,
        world: None,
        description: String::new(),
        author: String::new(),
        capabilities: Default::default(),
        budget: Default::default(),
    };
    probe.validate().map_err(|err| CommandError::input(name, err.message()))?;
    let sdk = sdk.canonicalize().map_err(|err| CommandError::input(sdk.display(), err.to_string()))?;
    let is_sdk = match lang {
        Lang::Rust => rust::is_sdk(&sdk),
        _ => interpreted::is_sdk(lang, &sdk),
    };
    if !is_sdk {
        let hint = lang.default_sdk();
        return Err(CommandError::input(
            sdk.display(),
            format!("not the plugin SDK for this language; pass --sdk PATH (like {})", hint.display()),
        ));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(CommandError::input(dir.display(), "already exists"));
    }
    let mut files = match lang {
        Lang::Rust => rust::files(name, kind, &sdk),
        _ => {
            // The checkout's `wit/`, two levels above `plugin-sdk/<language>`.
            let wit = sdk.join("../../wit").canonicalize().ok().filter(|wit| wit.join("plugin.wit").is_file());
            let Some(wit) = wit else {
                return Err(CommandError::input(sdk.display(), "no `wit/plugin.wit` two levels above this SDK"));
            };
            // The build command names both paths inside double quotes (`build.sh`, the npm script
            // in JSON): refuse what those quotes cannot hold rather than write a broken command.
            for path in [&sdk, &wit] {
                let text = path.to_string_lossy();
                if let Some(c) = text.chars().find(|c| matches!(c, '"' | '\\' | '$' | '`' | '\'' | '\n')) {
                    return Err(CommandError::input(
                        path.display(),
                        format!("holds {c:?}, which the build command cannot quote; use a checkout path without it"),
                    ));
                }
            }
            interpreted::files(name, kind, lang, &sdk, &wit)
        }
    };
    files.push(("plugin.toml", plugin_toml(name, kind, lang)));
    if kind != Kind::Source {
        files.push(("input.json", INPUT_JSON.to_string()));
    }
    files.push(("README.md", readme(name, kind, lang)));
    files.push((".gitignore", lang.ignored().to_string()));
    for (file, text) in &files {
        let path = dir.join(file);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text))
            .and_then(|()| executable_if_script(&path));
        written.map_err(|err| CommandError::input(path.display(), err.to_string()))?;
    }
    Ok(Created { dir, files: files.iter().map(|(file, _)| *file).collect() })
}

fn executable_if_script(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if path.extension().is_some_and(|ext| ext == "sh") {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    let _ = path;
    Ok(())
}

/// The component the build command writes, relative to the project.
pub fn component_path(name: &str, lang: Lang) -> String {
    match lang {
        Lang::Rust => format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_")),
        _ => format!("{name}.wasm"),
    }
}

fn plugin_toml(name: &str, kind: Kind, lang: Lang) -> String {
    let (description, capabilities) = match kind {
        Kind::Transformer => ("Tags each JSON record with a field set in config.", "config_keys = [\"tag\"]"),
        Kind::Source => {
            ("Reads numbered records, a page at a time, resuming from its cursor.", "config_keys = [\"prefix\"]")
        }
        Kind::Sink => ("Accepts JSON records and logs each one (replace with a real delivery).", "outbound_hosts = []"),
    };
    format!(
        r#"# The manifest: what the plugin is and what it asks for (see docs/MANIFEST.md in Plugboard).
name = "{name}"
version = "0.1.0"
kind = "{kind}"
description = "{description}"
author = ""

[capabilities]
{capabilities}

[budget]
{budget}"#,
        kind = kind.as_str(),
        budget = lang.budget(),
    )
}

/// A test input for `plugboard run` of a transformer or a sink (a source reads, it takes none).
const INPUT_JSON: &str = "[{\"order\": \"A1\", \"total\": 12.5}, {\"order\": \"A2\", \"total\": 40}]\n";

/// The `plugboard run` arguments that try the generated project as it is.
pub fn run_arguments(kind: Kind) -> &'static str {
    match kind {
        Kind::Transformer => "--config tag=new --input input.json",
        Kind::Source => "--max-records 3 --cursor 0",
        Kind::Sink => "--input input.json",
    }
}

fn readme(name: &str, kind: Kind, lang: Lang) -> String {
    let component = component_path(name, lang);
    format!(
        "# {name}\n\nA Plugboard {kind} plugin.\n\n```sh\n# once: {setup}\n{build}\nplugboard run {component} --manifest plugin.toml {run}\n```\n\nThen sign and publish it: `plugboard sign --key KEY --manifest plugin.toml {component} -o {name}.signed.wasm` and\n`plugboard push {name}.signed.wasm --activate`.\n",
        kind = kind.as_str(),
        setup = lang.setup(),
        build = lang.build_command(),
        run = run_arguments(kind),
    )
}
