#![no_main]
//! See `plugboard_fuzz::checks_cluster`: one node over one `nats-server` for the whole run.
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static HARNESS: OnceLock<plugboard_fuzz::checks_cluster::Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| HARNESS.get_or_init(plugboard_fuzz::checks_cluster::Harness::start).check(data));
