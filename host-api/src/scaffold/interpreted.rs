//! The Python, JavaScript and TypeScript templates: an `app` file over the language's SDK, and
//! the build command as a file of the project (`build.sh` for componentize-py, `package.json`'s
//! `build` script for jco). Both name the Plugboard checkout's WIT and SDK by absolute path, as
//! the Rust template's `Cargo.toml` names its SDK.

use super::Lang;
use plugboard_runtime::Kind;
use std::path::Path;

/// The engine features jco leaves out of every JavaScript or TypeScript plugin (`package.json`
/// adds `--bundle`, one module with the SDK in it): none of the engine's own WASI features (its
/// `fetch`, stdio, clocks, random), since the SDK's HTTP client speaks `wasi:http` itself and the
/// component then imports exactly its world.
pub const JCO_DISABLE: &str = "-d all";

/// The files of a project in `lang` besides the shared ones.
pub(super) fn files(name: &str, kind: Kind, lang: Lang, sdk: &Path, wit: &Path) -> Vec<(&'static str, String)> {
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{world}}", kind.as_str())
            .replace("{{wit}}", &wit.display().to_string())
            .replace("{{sdk}}", &sdk.display().to_string())
            .replace("{{app}}", lang.app_file())
            .replace("{{disable}}", JCO_DISABLE)
    };
    let app = match (lang, kind) {
        (Lang::Python, Kind::Transformer) => include_str!("python/transformer.py"),
        (Lang::Python, Kind::Source) => include_str!("python/source.py"),
        (Lang::Python, Kind::Sink) => include_str!("python/sink.py"),
        (Lang::JavaScript, Kind::Transformer) => include_str!("js/transformer.js"),
        (Lang::JavaScript, Kind::Source) => include_str!("js/source.js"),
        (Lang::JavaScript, Kind::Sink) => include_str!("js/sink.js"),
        (Lang::TypeScript, Kind::Transformer) => include_str!("ts/transformer.ts"),
        (Lang::TypeScript, Kind::Source) => include_str!("ts/source.ts"),
        (Lang::TypeScript, Kind::Sink) => include_str!("ts/sink.ts"),
        (Lang::Rust, _) => unreachable!("Rust projects are not interpreted"),
    };
    let build = match lang {
        Lang::Python => ("build.sh", fill(include_str!("python/build.sh"))),
        _ => ("package.json", fill(include_str!("js/package.json"))),
    };
    vec![(lang.app_file(), app.to_string()), build]
}

/// Whether `sdk` is the SDK for `lang`.
pub(super) fn is_sdk(lang: Lang, sdk: &Path) -> bool {
    match lang {
        Lang::Python => sdk.join("plugboard_sdk/__init__.py").is_file(),
        _ => std::fs::read_to_string(sdk.join("package.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .is_some_and(|package| package["name"] == "@plugboard/sdk"),
    }
}
