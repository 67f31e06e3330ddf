//! Writes the `export_*!` macros with the absolute path of Plugboard's WIT directory baked in.
//!
//! A plugin's exports must be bound in the plugin's own crate (wit-bindgen merges every world it
//! finds into the component, so the SDK cannot carry all three worlds' exports). The bindings macro
//! resolves relative paths against the *calling* crate, so the SDK hands it an absolute path.

// A build script reports failure by panicking with a message cargo shows to the user.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // Published SDKs carry a copy of the WIT beside Cargo.toml; in this repository it lives one up.
    let wit = [manifest_dir.join("wit"), manifest_dir.join("../wit")]
        .into_iter()
        .find(|dir| dir.join("plugin.wit").is_file())
        .and_then(|dir| dir.canonicalize().ok())
        .unwrap_or_else(|| panic!("plugboard-plugin-sdk: no wit/plugin.wit beside {}", manifest_dir.display()));
    println!("cargo:rerun-if-changed={}", wit.display());
    let wit = wit.to_string_lossy().replace('\\', "\\\\").replace('"', "\\\"");

    let common = r#"
            "plugboard:plugin/types@0.2.0": ::plugboard_plugin_sdk::bindings::plugboard::plugin::types,
            "wasi:logging/logging@0.1.0-draft": ::plugboard_plugin_sdk::bindings::wasi::logging::logging,
            "wasi:config/store@0.2.0-rc.1": ::plugboard_plugin_sdk::bindings::wasi::config::store,
            "wasi:keyvalue/store@0.2.0-draft": ::plugboard_plugin_sdk::bindings::wasi::keyvalue::store,"#;
    let http = r#"
            "wasi:http/outgoing-handler@0.2.12": ::plugboard_plugin_sdk::bindings::wasi::http::outgoing_handler,
            "wasi:http/types@0.2.12": ::plugboard_plugin_sdk::bindings::wasi::http::types,
            "wasi:io/error@0.2.12": ::plugboard_plugin_sdk::bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": ::plugboard_plugin_sdk::bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": ::plugboard_plugin_sdk::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": ::plugboard_plugin_sdk::bindings::wasi::clocks::monotonic_clock,"#;

    let mut out = String::new();
    for (macro_name, world, interface, trait_name, func, with) in [
        (
            "export_transformer",
            "transformer",
            "transform",
            "Transformer",
            "fn transform(input: ::plugboard_plugin_sdk::Batch) -> ::core::result::Result<::plugboard_plugin_sdk::Batch, ::plugboard_plugin_sdk::PluginError> { <$ty as ::plugboard_plugin_sdk::Transformer>::transform(input) }",
            common.to_string(),
        ),
        (
            "export_source",
            "source",
            "reader",
            "Source",
            "fn read(cursor: ::core::option::Option<::std::string::String>, max_records: u32) -> ::core::result::Result<exports::plugboard::plugin::reader::ReadResult, ::plugboard_plugin_sdk::PluginError> { <$ty as ::plugboard_plugin_sdk::Source>::read(cursor, max_records).map(|page| exports::plugboard::plugin::reader::ReadResult { records: page.records, next_cursor: page.next_cursor }) }",
            format!("{common}{http}"),
        ),
        (
            "export_sink",
            "sink",
            "writer",
            "Sink",
            "fn write(input: ::plugboard_plugin_sdk::Batch) -> ::core::result::Result<exports::plugboard::plugin::writer::WriteReport, ::plugboard_plugin_sdk::PluginError> { <$ty as ::plugboard_plugin_sdk::Sink>::write(input).map(|report| exports::plugboard::plugin::writer::WriteReport { accepted: report.accepted, failed: report.failed }) }",
            format!("{common}{http}"),
        ),
    ] {
        let module = interface.replace('-', "_");
        out.push_str(&format!(
            r#"
/// Exports `$ty`, which implements [`{trait_name}`], as this component's `{world}` world.
#[macro_export]
macro_rules! {macro_name} {{
    ($ty:ty) => {{
        #[doc(hidden)]
        #[allow(unsafe_code, clippy::all)]
        mod __plugboard_{world}_export {{
            #[allow(unused_imports)]
            use super::*;
            ::plugboard_plugin_sdk::__private::wit_bindgen::generate!({{
                path: "{wit}",
                world: "plugboard:plugin/{world}@0.2.0",
                runtime_path: "::plugboard_plugin_sdk::__private::wit_bindgen::rt",
                with: {{{with}
                }},
            }});
            struct Bridge;
            impl exports::plugboard::plugin::{module}::Guest for Bridge {{
                {func}
            }}
            export!(Bridge);
        }}
    }};
}}
"#
        ));
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(err) = std::fs::write(out_dir.join("export_macros.rs"), out) {
        panic!("plugboard-plugin-sdk: cannot write export macros: {err}");
    }
}
