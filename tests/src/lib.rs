//! Shared pieces of Plugboard's integration tests and benchmarks: the sample plugins built from
//! source by `build.rs`, helpers to load them, and a one-line local HTTP server.

// Test support: a missing or broken guest should stop the test with its message.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use plugboard_runtime::signing::{self, SecretKey, TrustStore, VerifyOptions};
use plugboard_runtime::{Grant, Manifest, Plugin, Runtime};
use std::sync::OnceLock;

pub mod bench;
pub mod browser;
pub mod nats;
pub mod projects;

/// Serves `router` on a real listener at 127.0.0.1:0 for the rest of the process (or until the
/// runtime stops); answers its base URL, `http://127.0.0.1:PORT`.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// The publisher key the test suite signs every guest with, generated once per test process.
pub fn test_key() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(|| SecretKey::generate().expect("randomness"))
}

/// A trust store that trusts [`test_key`].
pub fn test_trust() -> TrustStore {
    let mut trust = TrustStore::new();
    trust.add("test publisher", test_key().public()).expect("fresh store");
    trust
}

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

    /// The component with its manifest embedded, signed by [`test_key`].
    pub fn signed(&self) -> Vec<u8> {
        signing::sign(&self.bytes(), &self.manifest(), test_key())
            .unwrap_or_else(|err| panic!("signing {}: {err}", self.name))
    }

    /// Signs it with [`test_key`] and loads it into `runtime` with `grant`, verifying the signature
    /// as a host does.
    pub fn load(&self, runtime: &Runtime, grant: &Grant) -> Plugin {
        runtime
            .load_signed(&self.signed(), &test_trust(), grant, VerifyOptions::default())
            .unwrap_or_else(|err| panic!("loading {}: {err}", self.name))
    }
}

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
