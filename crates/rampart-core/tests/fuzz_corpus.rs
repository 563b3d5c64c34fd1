//! Replays every committed fuzz input (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) through the
//! same entry points the fuzz targets call, so found crashes stay fixed under plain `cargo test`.

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut seen = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            check(&std::fs::read(&path).unwrap());
            seen += 1;
        }
    }
    assert!(seen > 0, "no committed inputs for fuzz target {target}");
}

#[test]
fn core_reference() {
    replay("core_reference", rampart_core::fuzzing::reference);
}

#[test]
fn core_names() {
    replay("core_names", rampart_core::fuzzing::names);
}

#[test]
fn core_forwarded_for() {
    replay("core_forwarded_for", rampart_core::fuzzing::forwarded_for);
}
