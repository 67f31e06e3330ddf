#![no_main]
//! See `plugboard_fuzz::checks::sdk_json`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| plugboard_fuzz::checks::sdk_json(data));
