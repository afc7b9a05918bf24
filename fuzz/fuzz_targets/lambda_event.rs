#![no_main]
//! See `zhifu_fuzz::lambda_checks::lambda_event` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| zhifu_fuzz::lambda_checks::lambda_event(data));
