#![no_main]
//! See `plugboard_fuzz::checks::flow_definition`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| plugboard_fuzz::checks::flow_definition(data));
