//! The one place the CLI writes to stdout and stderr.
//!
//! `println!` and friends are banned elsewhere (clippy `disallowed_macros`), so every byte a user sees
//! goes through here, and a closed pipe (`rampart sbom | head`) ends the program quietly instead of
//! panicking.

use std::io::{self, Write};

/// Writes `bytes` to stdout and flushes. A broken pipe counts as success: the reader has what it wanted.
pub(crate) fn stdout(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes an error report to stderr, prefixed with `error: `.
pub(crate) fn error(err: &anyhow::Error) {
    // Errors writing an error have nowhere left to go.
    let _ = writeln!(io::stderr().lock(), "error: {err:#}");
}

/// Writes a line of human-readable progress or outcome to stderr (stdout is for data).
pub(crate) fn info(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}
