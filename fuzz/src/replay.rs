//! The replay of seeds and regressions that each crate's
//! `tests/fuzz_regressions.rs` runs (included there with `#[path]`): the
//! same files the fuzzer starts from, through the same checks.

use std::path::Path;

/// Runs `check` on every file of `fuzz/seeds/<target>/` and
/// `fuzz/regressions/<target>/`.
pub fn replay(target: &str, check: fn(&[u8])) {
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
