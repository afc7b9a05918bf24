#![no_main]
//! See `zhifu_fuzz::alipay_checks::amount` for what this target asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| zhifu_fuzz::alipay_checks::amount(data));
