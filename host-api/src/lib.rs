//! Plugboard's host: the control plane and the pieces behind the `plugboard` command, as a
//! library so the integration tests drive them directly.
//!
//! Layers, outermost first (see `ARCHITECTURE.md`): `api` (HTTP: routes, roles, status codes),
//! `domain` (plugin lifecycle, trust and tokens, flows and the work queue; typed errors, no HTTP),
//! `store` (the storage trait and its embedded sled backend). `server` wires them together.

pub mod api;
pub mod cli;
pub mod client;
pub mod demo;
pub mod domain;
pub mod flow_commands;
pub mod run;
pub mod samples;
pub mod server;
pub mod sign;
pub mod store;
