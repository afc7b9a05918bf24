//! The property checks behind the fuzz targets (`fuzz_targets/`), one
//! function per target, each panicking when its property fails. The
//! crates' `tests/fuzz_regressions.rs` include the same files (`#[path]`)
//! to replay `fuzz/seeds/<target>/` and `fuzz/regressions/<target>/` in a
//! normal `cargo test`.

pub mod alipay_checks;
pub mod checkout_checks;
pub mod lambda_checks;
pub mod sandbox_checks;
pub mod server_checks;
