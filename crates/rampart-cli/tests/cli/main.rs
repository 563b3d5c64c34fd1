//! End-to-end tests of the `rampart` binary, including interop with third-party tools.

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod ops;
mod registry;
mod sandbox;
mod sbom;
mod scan;
mod sign;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn rampart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .output()
        .expect("run rampart")
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn shared() -> PathBuf {
    workspace_root().join("../shared")
}

/// Whether a third-party tool runs (`program args` exits 0). When it does not, the calling test
/// skips, unless `RAMPART_REQUIRE_INTEROP=1`, where it fails: CI installs every such tool.
pub(crate) fn tool_available(what: &str, program: &str, args: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let required = std::env::var_os("RAMPART_REQUIRE_INTEROP").is_some_and(|v| v == "1");
        assert!(
            !required,
            "{what} is required (RAMPART_REQUIRE_INTEROP=1) but does not run"
        );
        #[allow(clippy::disallowed_macros)]
        {
            eprintln!("SKIPPED: {what} is not installed");
        }
    }
    ok
}
