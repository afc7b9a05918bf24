#![no_main]
//! See `zhifu_fuzz::sandbox_checks::sandbox_intake` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| zhifu_fuzz::sandbox_checks::sandbox_intake(data));
