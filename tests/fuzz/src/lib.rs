//! Plugboard's fuzz targets share their per-input checks here (see `checks.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod checks;
#[cfg(feature = "cluster")]
pub mod checks_cluster;
#[cfg(feature = "webhook")]
pub mod checks_webhook;
