//! `rampart --help`, `--version` and `rampart sbom`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

use crate::{rampart, tool_available, workspace_root};

fn sbom() -> Value {
    let out = rampart(&["sbom"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("sbom is JSON")
}

#[test]
fn help_and_version() {
    let out = rampart(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("sbom"), "{help}");

    let out = rampart(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("rampart {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = rampart(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// `(name, version)` of every package `cargo tree` says is linked into the binary (normal edges, no
/// procedural macros), this crate excepted.
fn linked_per_cargo_tree() -> BTreeSet<(String, String)> {
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(["tree", "--locked", "--offline", "-p", "rampart-cli"])
        .args(["--edges", "normal,no-proc-macro", "--prefix", "none"])
        .args(["--target", target_triple(), "--format", "{p}"])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut w = l.split(' ');
            let name = w.next().unwrap().to_owned();
            let version = w.next().unwrap().trim_start_matches('v').to_owned();
            (name, version)
        })
        .filter(|(name, _)| name != "rampart-cli")
        .collect()
}

fn target_triple() -> &'static str {
    // The tests run on the build host; the SBOM records the triple it was built for.
    if cfg!(all(
        target_arch = "x86_64",
        target_os = "linux",
        target_env = "gnu"
    )) {
        "x86_64-unknown-linux-gnu"
    } else if cfg!(all(
        target_arch = "aarch64",
        target_os = "linux",
        target_env = "gnu"
    )) {
        "aarch64-unknown-linux-gnu"
    } else {
        panic!("add this host's target triple to the test")
    }
}

/// `(name, version) → checksum` (empty for path packages) from Cargo.lock.
fn lock_packages() -> BTreeMap<(String, String), String> {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap();
    let mut out = BTreeMap::new();
    let (mut name, mut version, mut checksum) = (None, None, String::new());
    for line in lock.lines().chain(std::iter::once("[[package]]")) {
        if line == "[[package]]" {
            if let (Some(n), Some(v)) = (name.take(), version.take()) {
                out.insert((n, v), std::mem::take(&mut checksum));
            }
        } else if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_owned());
        } else if let Some(v) = line.strip_prefix("version = ") {
            version = Some(v.trim_matches('"').to_owned());
        } else if let Some(v) = line.strip_prefix("checksum = ") {
            checksum = v.trim_matches('"').to_owned();
        }
    }
    out
}

#[test]
fn sbom_lists_exactly_the_linked_packages() {
    let bom = sbom();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(bom["metadata"]["component"]["name"], "rampart");
    assert_eq!(
        bom["metadata"]["component"]["version"],
        env!("CARGO_PKG_VERSION")
    );

    let components = bom["components"].as_array().unwrap();
    let listed: BTreeSet<(String, String)> = components
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(listed.len(), components.len(), "duplicate components");
    assert_eq!(listed, linked_per_cargo_tree());

    let lock = lock_packages();
    for c in components {
        let key = (
            c["name"].as_str().unwrap().to_owned(),
            c["version"].as_str().unwrap().to_owned(),
        );
        let checksum = lock
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} not in Cargo.lock"));
        assert_eq!(
            c["purl"].as_str().unwrap(),
            format!("pkg:cargo/{}@{}", key.0, key.1)
        );
        assert!(
            c["licenses"][0]["expression"].is_string(),
            "{key:?} has no licence"
        );
        if checksum.is_empty() {
            assert!(c.get("hashes").is_none(), "{key:?}: path crate with a hash");
        } else {
            assert_eq!(c["hashes"][0]["alg"], "SHA-256");
            assert_eq!(
                c["hashes"][0]["content"].as_str().unwrap(),
                checksum,
                "{key:?}"
            );
        }
    }
    // Compile-time-only crates are in Cargo.lock but must not be listed.
    for compile_time in [
        "clap_derive",
        "thiserror-impl",
        "serde_derive",
        "proc-macro2",
    ] {
        assert!(
            lock.keys().any(|(n, _)| n == compile_time),
            "{compile_time}"
        );
        assert!(
            !listed.iter().any(|(n, _)| n == compile_time),
            "{compile_time}"
        );
    }
    // Every dependency edge points at a listed component.
    let refs: BTreeSet<&str> = components
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap())
        .chain(["rampart"])
        .collect();
    for d in bom["dependencies"].as_array().unwrap() {
        assert!(refs.contains(d["ref"].as_str().unwrap()));
        for on in d["dependsOn"].as_array().unwrap() {
            assert!(refs.contains(on.as_str().unwrap()), "{on}");
        }
    }
}

#[test]
fn sbom_validates_against_the_cyclonedx_schema() {
    const VALIDATE: &str = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(sys.stdin.read())
if err is not None:
    print(err)
    sys.exit(1)
"#;
    if !tool_available(
        "python3 with cyclonedx-python-lib[json-validation]",
        "python3",
        &["-c", "import cyclonedx.validation.json"],
    ) {
        return;
    }
    let validate = |json: &str| {
        use std::io::Write;
        let mut child = Command::new("python3")
            .args(["-c", VALIDATE])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(json.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let bom = sbom();
    let out = validate(&bom.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The validator must be able to say no, or the check above proves nothing.
    let mut broken = bom;
    broken["components"][0]["type"] = Value::from("not-a-type");
    assert!(!validate(&broken.to_string()).status.success());
}

#[test]
fn sbom_survives_a_closed_pipe() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("sbom")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
}
