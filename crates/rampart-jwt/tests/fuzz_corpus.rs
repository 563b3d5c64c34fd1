//! Replays every committed input of the `jwt_verify` fuzz target (`fuzz/corpus/jwt_verify/`,
//! `fuzz/regressions/jwt_verify/`) under plain `cargo test`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn jwt_verify() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut seen = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join("jwt_verify")) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            rampart_jwt::fuzz_verify(&std::fs::read(&path).unwrap());
            seen += 1;
        }
    }
    assert!(seen > 0, "no committed inputs for fuzz target jwt_verify");
}
