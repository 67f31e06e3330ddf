//! Plugboard's host: the control plane (`api`, `registry`, `store`, `server`) and the pieces behind
//! the `plugboard` command, as a library so the integration tests drive them directly.

pub mod api;
pub mod cli;
pub mod client;
pub mod demo;
pub mod flow_commands;
pub mod flows;
pub mod registry;
pub mod run;
pub mod samples;
pub mod server;
pub mod sign;
pub mod store;
pub mod webhook;
