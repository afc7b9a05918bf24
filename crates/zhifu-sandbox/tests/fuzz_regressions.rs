//! The fuzz targets of this crate's parsers (`sandbox_intake`) as plain tests:
//! every seed (`fuzz/seeds/<target>/`) and every minimised crash the
//! fuzzer found (`fuzz/regressions/<target>/`) goes through the same
//! property check the fuzzer runs (`fuzz/src/sandbox_checks.rs`, included here).
//! docs/fuzzing.md says how to fuzz and how a crash becomes a file here.

#![allow(clippy::unwrap_used)]

#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use replay::replay;

#[allow(dead_code)]
#[path = "../../../fuzz/src/sandbox_checks.rs"]
mod checks;

#[test]
fn sandbox_intake() {
    replay("sandbox_intake", checks::sandbox_intake);
}
