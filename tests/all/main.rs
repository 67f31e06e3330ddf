//! Plugboard's integration tests: one binary, a module per topic (as wasmtime does), so the sample
//! plugins are built and linked once.

mod access;
mod api;
mod at_rest;
mod audit;
mod cli;
mod client_cli;
mod cluster;
mod cluster_heartbeats;
mod cluster_keyvalue;
mod cluster_ordered;
mod cluster_replay;
mod cluster_security;
mod cluster_snapshots;
mod cluster_usage;

mod concurrency;
mod connections;
mod connectors;
mod contracts;
mod crash;
mod dashboard;
mod dashboard_api;
mod demo_commands;
mod dns_shares;
mod expressions;
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
mod openapi;
mod ownership;
mod partial_failures;
mod polyglot;
mod private_names;
mod python_samples;
mod queue;
mod samples;
mod scaffold;
mod scoped_tokens;
mod senders;

mod signing;
mod support;
mod tokens;
mod webhook_out;
mod webhooks;
