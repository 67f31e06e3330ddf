//! Does a component fit the world its manifest names? The one check behind `plugboard sign` and
//! every load, so a component built against the wrong world is refused before it is signed, and
//! again at upload, with the world it was built for and the one expected.
//!
//! It reads only the component's top-level import and export names (no compilation), so `sign`
//! answers at once even for a 20 MB Python or JavaScript component. A component fits `kind` when
//! it exports the kind's interface and imports nothing but what that world offers:
//!
//! - the WASI 0.2 base every toolchain pulls in (`wasi:cli`, `clocks`, `random`, `io`,
//!   `filesystem`, `sockets`; linked with no directories and no network granted);
//! - the world's own imports: logging, config, key-value, and `wasi:http` (the worlds of sources
//!   and sinks import it; a transformer may too, as jco's default build does, and is granted no
//!   host to reach);
//! - `plugboard:plugin/types` at the contract version of the interface it exports.
//!
//! A component built against an earlier contract this host still loads (see
//! [`Contract`]) fits the same way, at that contract's version.
//!
//! Extra exports are allowed (componentize-py adds an `exports` interface). WASI 0.2 packages
//! match any 0.2 patch version, as wasmtime's linker does; the draft packages must match exactly.

use crate::error::{Error, Result};
use crate::manifest::{Contract, Kind};

/// The base packages of WASI 0.2 that every world links.
const WASI_BASE: [&str; 6] = ["cli", "clocks", "random", "io", "filesystem", "sockets"];

/// The draft interfaces every world imports, at the exact versions this host provides.
const WORLD_IMPORTS: [&str; 3] =
    ["wasi:logging/logging@0.1.0-draft", "wasi:config/store@0.2.0-rc.1", "wasi:keyvalue/store@0.2.0-draft"];

/// Checks a component's top-level `imports` and `exports` against the world of `kind`.
///
/// Answers the contract the component was built against.
///
/// # Errors
/// [`Error::WorldMismatch`] naming the world the component was built for (or what it exports
/// when that is no Plugboard world) and what does not fit.
pub(crate) fn check(imports: &[String], exports: &[String], kind: Kind) -> Result<Contract> {
    let implemented = implemented(exports);
    let Some((_, contract)) = implemented.filter(|(found, _)| *found == kind) else {
        return Err(Error::WorldMismatch {
            manifest: kind,
            component: implemented.map(|(found, _)| found),
            found: describe(exports),
        });
    };
    if let Some(import) = imports.iter().find(|import| !offers(import, contract)) {
        return Err(Error::WorldMismatch {
            manifest: kind,
            component: Some(kind),
            found: format!(
                "imports `{}`, which the `{}` world does not offer (it offers WASI 0.2, `{}` and \
                 `wasi:http/outgoing-handler@0.2`)",
                shown(import),
                kind.as_str(),
                WORLD_IMPORTS.join("`, `")
            ),
        });
    }
    Ok(contract)
}

/// The Plugboard world whose interface the component exports, if any, and its contract.
pub(crate) fn implemented(exports: &[String]) -> Option<(Kind, Contract)> {
    Contract::ALL
        .into_iter()
        .flat_map(|contract| Kind::ALL.map(|kind| (kind, contract)))
        .find(|(kind, contract)| exports.contains(&kind.export_at(*contract)))
}

/// What the component's exports say it was built for.
fn describe(exports: &[String]) -> String {
    if let Some((kind, contract)) = implemented(exports) {
        return format!("implements the `{}` world (`{}`)", kind.as_str(), kind.world_at(contract));
    }
    let plugboard: Vec<&String> = exports.iter().filter(|e| e.starts_with("plugboard:plugin/")).collect();
    if !plugboard.is_empty() {
        return format!(
            "exports {}, from another version of the Plugboard contract (this host loads {})",
            quoted(&plugboard),
            Contract::ALL.map(Contract::as_str).join(" and ")
        );
    }
    if exports.is_empty() {
        return "exports nothing: it implements no Plugboard world".to_string();
    }
    format!("implements no Plugboard world (it exports {})", quoted(&exports.iter().collect::<Vec<_>>()))
}

/// Names as the message shows them: the component supplied them (a parser accepts any string), so
/// each is escaped and cut at [`MAX_NAME_CHARS`], and at most [`MAX_NAMES`] are listed.
fn quoted(names: &[&String]) -> String {
    let mut shown: Vec<String> = names.iter().take(MAX_NAMES).map(|name| format!("`{}`", shown(name))).collect();
    if names.len() > MAX_NAMES {
        shown.push(format!("and {} more", names.len() - MAX_NAMES));
    }
    shown.join(", ")
}

/// Most names one message lists.
const MAX_NAMES: usize = 5;
/// Most characters of one name a message shows.
const MAX_NAME_CHARS: usize = 120;

fn shown(name: &str) -> String {
    crate::host::logs::escape_and_cap(name, MAX_NAME_CHARS)
}

/// Whether the worlds of `contract` offer `import`.
fn offers(import: &str, contract: Contract) -> bool {
    if WORLD_IMPORTS.contains(&import) || import == format!("plugboard:plugin/types@{}", contract.as_str()) {
        return true;
    }
    let Some((package, version)) = wasi_package(import) else { return false };
    if !version.starts_with("0.2.") {
        return false;
    }
    WASI_BASE.contains(&package)
        || import.starts_with("wasi:http/types@")
        || import.starts_with("wasi:http/outgoing-handler@")
}

/// `wasi:PACKAGE/interface@VERSION` → (`PACKAGE`, `VERSION`).
fn wasi_package(import: &str) -> Option<(&str, &str)> {
    let rest = import.strip_prefix("wasi:")?;
    let (path, version) = rest.split_once('@')?;
    let (package, _interface) = path.split_once('/')?;
    Some((package, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const RUST_STD: [&str; 4] = [
        "wasi:cli/environment@0.2.6",
        "wasi:io/streams@0.2.12",
        "wasi:filesystem/types@0.2.9",
        "wasi:sockets/tcp@0.2.9",
    ];

    #[test]
    fn a_transformer_with_the_wasi_base_fits() {
        let mut imports = names(&RUST_STD);
        imports.extend(names(&WORLD_IMPORTS));
        imports.push("plugboard:plugin/types@0.1.0".into());
        let exports = names(&["exports", "plugboard:plugin/transform@0.1.0"]);
        assert!(check(&imports, &exports, Kind::Transformer).is_ok());
    }

    #[test]
    fn each_contract_fits_with_its_own_types() {
        for contract in Contract::ALL {
            let version = contract.as_str();
            let imports = names(&[&format!("plugboard:plugin/types@{version}")]);
            let exports = names(&[&format!("plugboard:plugin/writer@{version}")]);
            assert_eq!(check(&imports, &exports, Kind::Sink).expect("fits"), contract);
        }
        let mixed = names(&["plugboard:plugin/types@0.2.0"]);
        assert!(check(&mixed, &names(&["plugboard:plugin/writer@0.1.0"]), Kind::Sink).is_err());
    }

    #[test]
    fn outgoing_http_fits_and_serving_http_does_not() {
        let imports = names(&["wasi:http/outgoing-handler@0.2.10", "wasi:http/types@0.2.10"]);
        assert!(check(&imports, &names(&["plugboard:plugin/reader@0.1.0"]), Kind::Source).is_ok());
        let serving = names(&["wasi:http/incoming-handler@0.2.0"]);
        let err = check(&serving, &names(&["plugboard:plugin/writer@0.1.0"]), Kind::Sink).expect_err("incoming");
        assert!(matches!(&err, Error::WorldMismatch { component: Some(Kind::Sink), found, .. }
            if found.contains("`wasi:http/incoming-handler@0.2.0`, which the `sink` world does not offer")));
    }

    #[test]
    fn the_found_world_is_named() {
        let err = check(&[], &names(&["plugboard:plugin/reader@0.2.0"]), Kind::Sink).expect_err("mismatch");
        assert_eq!(
            err.to_string(),
            "the manifest says `sink` (world `plugboard:plugin/sink@0.2.0`) but the component implements the \
             `source` world (`plugboard:plugin/source@0.2.0`)"
        );
        let other = check(&[], &names(&["plugboard:plugin/transform@0.9.0"]), Kind::Transformer).expect_err("version");
        assert!(other.to_string().contains("another version of the Plugboard contract"), "{other}");
        let proxy = check(&[], &names(&["wasi:http/incoming-handler@0.2.0"]), Kind::Sink).expect_err("proxy");
        assert!(proxy.to_string().contains("`wasi:http/incoming-handler@0.2.0`"), "{proxy}");
    }

    #[test]
    fn names_from_the_component_are_escaped_cut_and_few() {
        let hostile: Vec<String> = (0..9).map(|i| format!("\u{1b}[31m{}{i}", "x".repeat(500))).collect();
        let err = check(&[], &hostile, Kind::Transformer).expect_err("no world");
        let message = err.to_string();
        assert!(!message.contains('\u{1b}') && message.contains("and 4 more"), "{message}");
        assert!(message.len() < 1_000, "{}", message.len());
    }

    #[test]
    fn unknown_and_wrong_version_imports_are_refused() {
        let exports = names(&["plugboard:plugin/transform@0.1.0"]);
        for import in ["acme:secrets/vault@1.0.0", "wasi:cli/environment@0.3.0", "wasi:keyvalue/store@0.2.0-draft2"] {
            assert!(check(&names(&[import]), &exports, Kind::Transformer).is_err(), "{import}");
        }
    }
}
