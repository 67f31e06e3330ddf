//! Plugboard's host: the control plane and the pieces behind the `plugboard` command, as a
//! library so the integration tests drive them directly.
//!
//! Layers, outermost first (see `ARCHITECTURE.md`): `api` (HTTP: routes, roles, status codes),
//! `domain` (plugin lifecycle, trust and tokens, flows and the work queue; typed errors, no HTTP),
//! `store` (the `plugboard-store` crate: the storage trait, the embedded sled and the NATS
//! backends). `server` wires them together.
//! The `plugboard` command line is `cli` (clap types) and `commands` (running them), with one
//! module per area of commands (`plugin_commands`, `admin_commands`, `flow_commands`, …).

pub mod admin_commands;
pub mod api;
pub mod cli;
/// The HTTP client, its own crate (`host-api/client`): it cannot reach the domain or storage.
pub use plugboard_client as client;
pub mod commands;
pub mod connection_commands;
pub mod demo;
pub mod domain;
pub mod execution_report;
pub mod flow_commands;
pub mod plugin_commands;
pub mod render;
pub mod run;
pub mod samples;
pub mod scaffold;
pub mod server;
pub mod sign;
/// The storage layer, its own crate (`host-api/store`): it cannot reach the domain or HTTP.
pub use plugboard_store as store;
