//! Plugboard's integration tests: one binary, a module per topic (as wasmtime does), so the sample
//! plugins are built and linked once.

mod api;
mod at_rest;
mod audit;
mod cli;
mod client_cli;
mod cluster;
mod common;
mod concurrency;
mod connectors;
mod crash;
mod dashboard;
mod dashboard_api;
mod failures;
mod floods;
mod flow_cli;
mod flows;
mod fuzz_replay;
mod hostile;
mod jetstream;
mod js_samples;
mod kv_state;
mod language_errors;
mod load;
mod loading;
mod manifests;
mod ownership;
mod polyglot;
mod python_samples;
mod queue;
mod samples;
mod scaffold;
mod server;
mod signing;
mod webhooks;
