//! Shared pieces of Plugboard's integration tests and benchmarks: the sample plugins built from
//! source by `build.rs`, and helpers to load them.

// Test support: a missing or broken guest should stop the test with its message.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use plugboard_runtime::{Grant, Manifest, Plugin, Runtime};

/// A sample plugin built by `build.rs`.
#[derive(Debug, Clone, Copy)]
pub struct SamplePlugin {
    /// Its manifest name, e.g. `json-mapper`.
    pub name: &'static str,
    /// Path of the built component.
    pub component: &'static str,
    /// Path of its `plugin.toml`.
    pub manifest: &'static str,
}

impl SamplePlugin {
    /// The component bytes.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.component).unwrap_or_else(|err| panic!("{}: {err}", self.component))
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> Manifest {
        let text = std::fs::read_to_string(self.manifest).unwrap_or_else(|err| panic!("{}: {err}", self.manifest));
        Manifest::from_toml(&text).unwrap_or_else(|err| panic!("{}: {err}", self.manifest))
    }

    /// Loads it into `runtime` with `grant`.
    pub fn load(&self, runtime: &Runtime, grant: &Grant) -> Plugin {
        runtime.load(&self.bytes(), self.manifest(), grant).unwrap_or_else(|err| panic!("loading {}: {err}", self.name))
    }
}

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
