//! The fuzz targets of this crate's parsers (`checkout_body`) as plain tests:
//! every seed (`fuzz/seeds/<target>/`) and every minimised crash the
//! fuzzer found (`fuzz/regressions/<target>/`) goes through the same
//! property check the fuzzer runs (`fuzz/src/checkout_checks.rs`, included here).
//! docs/fuzzing.md says how to fuzz and how a crash becomes a file here.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../../../fuzz/src/checkout_checks.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every file of `fuzz/seeds/<target>/` and
/// `fuzz/regressions/<target>/`.
fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for kind in ["seeds", "regressions"] {
        let dir = fuzz.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            eprintln!("replaying {}", file.display());
            check(&data);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no seeds for {target}");
}

#[test]
fn checkout_body() {
    replay("checkout_body", checks::checkout_body);
}
