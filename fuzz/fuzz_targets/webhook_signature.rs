#![no_main]
//! See `zhifu_fuzz::server_checks::webhook_signature` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| zhifu_fuzz::server_checks::webhook_signature(data));
