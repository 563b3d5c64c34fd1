//! `rampart sandbox check` and the sandboxed `rampart scan`: `--no-sandbox`, and a worker that
//! times out turning into an `error` verdict while the scan goes on.

use std::fs;
use std::process::Command;

use serde_json::Value;

use crate::workspace_root;

fn rampart(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn sandbox_check_reports_every_layer_from_a_real_worker() {
    let out = rampart(&["sandbox", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for layer in [
        "namespaces: ",
        "rlimits: ",
        "no_new_privs: enforced",
        "uid_drop: ",
        "landlock: ",
        "seccomp: enforced",
        "cgroup: ",
    ] {
        assert!(text.contains(layer), "{layer} missing in:\n{text}");
    }
    // Proved from outside the worker, not just claimed by it.
    assert!(text.contains("Seccomp 2, NoNewPrivs 1"), "{text}");
    assert!(text.contains("network namespace: separate"), "{text}");
    assert!(text.contains("worker answers requests: yes"), "{text}");
}

#[test]
fn sandbox_check_strict_fails_exactly_when_a_layer_is_missing() {
    let out = rampart(&["sandbox", "check", "--strict"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = if text.contains("all layers in force") {
        0
    } else {
        assert!(text.contains("missing: "), "{text}");
        1
    };
    assert_eq!(out.status.code(), Some(expected), "{text}");
}

#[test]
fn sandboxed_and_in_process_scans_agree_and_opting_out_warns() {
    let dir = workspace_root().join("testdata/scan-corpus");
    let dir = dir.to_str().unwrap();
    let boxed = rampart(&["scan", "--format", "json", dir]);
    let plain = rampart(&["scan", "--no-sandbox", "--format", "json", dir]);
    assert_eq!(boxed.status.code(), plain.status.code());
    assert_eq!(
        String::from_utf8_lossy(&boxed.stdout),
        String::from_utf8_lossy(&plain.stdout)
    );
    assert!(
        boxed.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&boxed.stderr)
    );
    let warning = String::from_utf8_lossy(&plain.stderr);
    assert!(warning.contains("warning: --no-sandbox"), "{warning}");
}

#[test]
fn a_file_that_times_out_the_worker_is_an_error_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.txt", "b.txt", "c.txt"] {
        fs::write(dir.path().join(name), "hello\n").unwrap();
    }
    // A deadline no scan can meet: every file times out its worker, which is killed and replaced.
    let out = rampart(&[
        "scan",
        "--format",
        "json",
        "--sandbox-timeout",
        "0.000001",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "{json:#}");
    for f in files {
        assert_eq!(f["verdict"], "error", "{f:#}");
        assert_eq!(f["findings"][0]["rule"], "sandbox/timeout", "{f:#}");
    }
    // With a sane deadline the same files are scanned normally.
    let out = rampart(&["scan", "--format", "json", dir.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
