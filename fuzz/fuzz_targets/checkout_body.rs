#![no_main]
//! See `zhifu_fuzz::checkout_checks::checkout_body` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| zhifu_fuzz::checkout_checks::checkout_body(data));
