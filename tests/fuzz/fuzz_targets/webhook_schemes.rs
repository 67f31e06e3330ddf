#![no_main]
//! See `plugboard_fuzz::checks_webhook::webhook_schemes`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    plugboard_fuzz::checks_webhook::webhook_schemes(data);
});
