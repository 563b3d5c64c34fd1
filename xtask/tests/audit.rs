//! The dependency audit must catch a known-vulnerable crate and refuse a stale advisory snapshot.

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture_manifest() -> PathBuf {
    root().join("xtask/tests/fixtures/vulnerable/Cargo.toml")
}

fn cargo_deny_available() -> bool {
    let ok = Command::new(env!("CARGO"))
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("RAMPART_REQUIRE_INTEROP").is_none_or(|v| v != "1"),
            "cargo-deny is required: cargo install --locked cargo-deny"
        );
        #[allow(clippy::disallowed_macros)]
        {
            eprintln!("SKIPPED: cargo-deny is not installed");
        }
    }
    ok
}

fn audit(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("audit")
        .args(args)
        .output()
        .expect("run xtask")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-xtask-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn vulnerable_lock_fails_naming_the_advisory() {
    if !cargo_deny_available() {
        return;
    }
    let out = audit(&[
        "--manifest-path".as_ref(),
        fixture_manifest().as_os_str(),
        "--config".as_ref(),
        root().join("deny.toml").as_os_str(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("RUSTSEC-2017-0004"), "{t}");
    assert!(t.contains("advisories FAILED"), "{t}");
}

#[test]
fn an_ignore_with_a_reason_is_honoured() {
    if !cargo_deny_available() {
        return;
    }
    // The project's policy plus one ignore: removing that ignore is the test above.
    let policy = std::fs::read_to_string(root().join("deny.toml")).unwrap();
    assert!(
        policy.contains("\nignore = []\n"),
        "deny.toml layout changed"
    );
    let ignored = policy.replace(
        "\nignore = []\n",
        "\nignore = [{ id = \"RUSTSEC-2017-0004\", reason = \"fixture\" }]\n",
    );
    let dir = scratch("ignore");
    let config = dir.join("deny.toml");
    std::fs::write(&config, ignored).unwrap();
    let out = audit(&[
        "--manifest-path".as_ref(),
        fixture_manifest().as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn stale_snapshot_is_refused_before_anything_runs() {
    let db = scratch("stale");
    std::fs::write(db.join("SNAPSHOT.txt"), "date: 2020-01-01\ncommit: x\n").unwrap();
    let out = audit(&["--advisory-db".as_ref(), db.as_os_str()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("over the 180-day limit"), "{t}");
    let _ = std::fs::remove_dir_all(db);
}

#[test]
fn snapshot_without_a_date_is_refused() {
    let db = scratch("nodate");
    std::fs::write(db.join("SNAPSHOT.txt"), "commit: x\n").unwrap();
    let out = audit(&["--advisory-db".as_ref(), db.as_os_str()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("no `date:` line"), "{t}");
    let _ = std::fs::remove_dir_all(db);
}
