//! `RAMPART_ALLOW_PLAINTEXT=false` must win over `allow_plaintext = true` in the file (flags > env >
//! file): an operator switching plaintext off through the environment must not be overruled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn print_with(env_value: &str, file: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["config", "print", "--config"])
        .arg(file)
        .env_remove("RAMPART_LISTEN")
        .env_remove("RAMPART_CONFIG")
        .env("RAMPART_ALLOW_PLAINTEXT", env_value)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn environment_turns_plaintext_off_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rampart.toml");
    std::fs::write(&file, "allow_plaintext = true\nlisten = \"0.0.0.0:5050\"\n").unwrap();
    for off in ["false", "0", "no"] {
        let printed = print_with(off, &file);
        assert!(
            printed.contains("allow_plaintext = false"),
            "RAMPART_ALLOW_PLAINTEXT={off}:\n{printed}"
        );
    }
    assert!(print_with("true", &file).contains("allow_plaintext = true"));
}
