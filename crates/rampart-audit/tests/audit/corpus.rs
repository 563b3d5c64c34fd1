//! Replays every committed fuzz input (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) through
//! the same entry points the fuzz targets call, so found crashes stay fixed under plain `cargo test`.

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
fn audit_checkpoint() {
    replay("audit_checkpoint", rampart_audit::fuzzing::checkpoint);
}

#[test]
fn audit_tlog_proof() {
    replay("audit_tlog_proof", rampart_audit::fuzzing::tlog_proof);
}

#[test]
fn audit_record() {
    replay("audit_record", rampart_audit::fuzzing::record_line);
}
