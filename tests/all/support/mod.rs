//! What the test modules share: the server as a child of the test (`server`), runtimes, records
//! and local HTTP servers (`common`), `serve --demo` as a child (`demo`), cluster nodes (`cluster`), flows, sinks and webhook
//! deliveries (`flows`) and the CLI (`cli`). Test modules hold tests only; a helper two of them
//! need lives here.

pub mod cli;
pub mod cluster;
pub mod common;
pub mod demo;
pub mod flows;
pub mod server;
