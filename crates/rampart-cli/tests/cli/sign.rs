//! `rampart sign` / `rampart verify` against the reference OpenSSF Model Signing CLI (`model_signing`,
//! PyPI `model-signing` + `pyopenssl`), in both directions, on freshly generated models.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{rampart, shared, tool_available};

fn keys() -> PathBuf {
    shared().join("fixtures/oms/keys")
}

fn have_model_signing() -> bool {
    tool_available(
        "model_signing (pip install model-signing pyopenssl)",
        "model_signing",
        &["--version"],
    )
}

/// A model with nested directories, an empty file, hidden files, non-ASCII names, a root `.gitignore`
/// (ignored by default) next to a nested one (signed), and hundreds of small files.
fn make_model(root: &Path) {
    let w = |rel: &str, bytes: &[u8]| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    };
    w(
        "config.json",
        br#"{"architectures":["Tiny"],"hidden_size":8}"#,
    );
    w(
        "weights/model-00001-of-00002.bin",
        &pseudo_random(1, 70_000),
    );
    w("weights/model-00002-of-00002.bin", &pseudo_random(2, 5_000));
    w("empty.txt", b"");
    w(".hidden", b"dot file");
    w("tokenizer/vocab.txt", "hello\nwörld\n".as_bytes());
    w("tokenizer/spécial/ünïcode-名前.txt", "名前".as_bytes());
    w(".gitignore", b"*.tmp\n");
    w("tokenizer/.gitignore", b"cache/\n");
    w(".gitattributes", b"*.bin filter=lfs\n");
    for i in 0..300 {
        w(
            &format!("shards/s{:03}/part-{i}.txt", i % 17),
            format!("{i}").as_bytes(),
        );
    }
}

fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

fn run(program: &str, args: &[&Path]) -> Output {
    Command::new(program).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[derive(Clone, Copy, Debug)]
enum Tool {
    Rampart,
    Reference,
}

fn sign(tool: Tool, model: &Path, key: &Path, sig: &Path) {
    let out = match tool {
        Tool::Rampart => Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("sign")
            .arg(model)
            .arg("--key")
            .arg(key)
            .arg("--signature")
            .arg(sig)
            .output()
            .unwrap(),
        Tool::Reference => run(
            "model_signing",
            &[
                "sign".as_ref(),
                "key".as_ref(),
                model,
                "--private_key".as_ref(),
                key,
                "--signature".as_ref(),
                sig,
            ],
        ),
    };
    assert!(out.status.success(), "{tool:?} sign failed: {}", text(&out));
    assert!(sig.is_file());
}

fn verify(tool: Tool, model: &Path, public: &Path, sig: &Path) -> Output {
    match tool {
        Tool::Rampart => Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg("verify")
            .arg(model)
            .arg("--key")
            .arg(public)
            .arg("--signature")
            .arg(sig)
            .output()
            .unwrap(),
        Tool::Reference => run(
            "model_signing",
            &[
                "verify".as_ref(),
                "key".as_ref(),
                model,
                "--signature".as_ref(),
                sig,
                "--public_key".as_ref(),
                public,
            ],
        ),
    }
}

fn assert_verifies(tool: Tool, model: &Path, public: &Path, sig: &Path) {
    let out = verify(tool, model, public, sig);
    assert!(out.status.success(), "{tool:?} verify: {}", text(&out));
}

/// Signs with `signer`, verifies with the other tool, for one curve.
fn cross(signer: Tool, verifier: Tool, curve: &str) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    make_model(&model);
    let sig = dir.path().join("model.sig");
    let key = keys().join(format!("signer-{curve}.key.pem"));
    let public = keys().join(format!("signer-{curve}.pub.pem"));
    sign(signer, &model, &key, &sig);
    assert_verifies(verifier, &model, &public, &sig);
    assert_verifies(signer, &model, &public, &sig);
    // The root .gitignore is not signed by either tool: changing it changes nothing.
    fs::write(model.join(".gitignore"), b"changed\n").unwrap();
    assert_verifies(verifier, &model, &public, &sig);
}

#[test]
fn rampart_signs_model_signing_verifies() {
    if !have_model_signing() {
        return;
    }
    cross(Tool::Rampart, Tool::Reference, "p256");
    cross(Tool::Rampart, Tool::Reference, "p384");
}

#[test]
fn model_signing_signs_rampart_verifies() {
    if !have_model_signing() {
        return;
    }
    cross(Tool::Reference, Tool::Rampart, "p256");
    cross(Tool::Reference, Tool::Rampart, "p384");
}

#[test]
fn both_tools_reject_the_same_damage() {
    if !have_model_signing() {
        return;
    }
    type Damage = (&'static str, fn(&Path), Option<&'static str>);
    let damages: [Damage; 5] = [
        (
            "tampered byte",
            |m| {
                let p = m.join("weights/model-00002-of-00002.bin");
                let mut b = fs::read(&p).unwrap();
                b[100] ^= 1;
                fs::write(p, b).unwrap();
            },
            Some("hash mismatch for 'weights/model-00002-of-00002.bin'"),
        ),
        (
            "extra file",
            |m| fs::write(m.join("tokenizer/extra.txt"), b"x").unwrap(),
            Some("extra files in model: tokenizer/extra.txt"),
        ),
        (
            "missing file",
            |m| fs::remove_file(m.join("tokenizer/vocab.txt")).unwrap(),
            Some("missing files in model: tokenizer/vocab.txt"),
        ),
        (
            "nested .gitignore changed",
            |m| fs::write(m.join("tokenizer/.gitignore"), b"other\n").unwrap(),
            Some("hash mismatch for 'tokenizer/.gitignore'"),
        ),
        ("wrong key", |_| {}, Some("key mismatch")),
    ];
    for signer in [Tool::Rampart, Tool::Reference] {
        let dir = tempfile::tempdir().unwrap();
        let pristine = dir.path().join("pristine");
        make_model(&pristine);
        let sig = dir.path().join("model.sig");
        sign(signer, &pristine, &keys().join("signer-p256.key.pem"), &sig);
        for (i, (what, damage, message)) in damages.iter().enumerate() {
            let model = dir.path().join(format!("case{i}"));
            copy_tree(&pristine, &model);
            damage(&model);
            let public = if *what == "wrong key" {
                keys().join("other-p256.pub.pem")
            } else {
                keys().join("signer-p256.pub.pem")
            };
            for verifier in [Tool::Rampart, Tool::Reference] {
                let out = verify(verifier, &model, &public, &sig);
                assert!(
                    !out.status.success(),
                    "{verifier:?} accepted a model with a {what} signed by {signer:?}"
                );
                if let (Tool::Rampart, Some(m)) = (verifier, message) {
                    assert_eq!(out.status.code(), Some(1));
                    assert!(text(&out).contains(m), "{what}: {}", text(&out));
                }
            }
        }
    }
}

#[test]
fn reference_fixtures_verify_with_translated_commands() {
    // Every `model_signing verify` row of ../shared/fixtures/oms/expected.json, run through `rampart
    // verify` with the flags translated one to one (the reference's underscore spellings are accepted).
    let oms = shared().join("fixtures/oms");
    let expected: serde_json::Value =
        serde_json::from_slice(&fs::read(oms.join("expected.json")).unwrap()).unwrap();
    let mut ran = 0;
    for row in expected.as_array().unwrap() {
        let cmd = row["verify_command"].as_str().unwrap();
        let Some(rest) = cmd.strip_prefix("model_signing verify ") else {
            continue; // the Python-API rows of case 10
        };
        let mut words = rest.split_whitespace();
        let method = words.next().unwrap();
        assert!(matches!(method, "key" | "certificate"), "{cmd}");
        let mut args: Vec<String> = vec!["verify".into()];
        args.extend(words.map(str::to_owned));
        let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(&args)
            .current_dir(oms.join(row["case"].as_str().unwrap()))
            .output()
            .unwrap();
        let want_ok = row["expect"] == "success";
        assert_eq!(
            out.status.success(),
            want_ok,
            "{} `{cmd}`: {}",
            row["case"],
            text(&out)
        );
        if !want_ok {
            assert_eq!(out.status.code(), Some(1), "{cmd}");
        }
        ran += 1;
    }
    assert_eq!(ran, 15, "expected.json rows run");
}

#[test]
fn verify_needs_a_trust_anchor_and_reports_unreadable_inputs() {
    let out = rampart(&["verify", "model"]);
    assert_eq!(out.status.code(), Some(2), "usage error");
    let out = rampart(&["verify", "/nonexistent-model", "--key", "/nonexistent.pem"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("/nonexistent.pem"), "{}", text(&out));
}

/// The folders and reference command of each row of `oms-upstream/README.md`, with `DIR` still
/// in place: "same, plus X" appends to the previous row's command; "any `*-sigstore`" stands
/// for every keyless folder, each with its own success command.
fn upstream_rows(readme: &str) -> Vec<(String, String, bool)> {
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut rows = Vec::new();
    let mut previous = String::new();
    let mut by_folder: Vec<(String, String)> = Vec::new();
    for line in readme.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let [folders, how, expected] = cells.as_slice() else {
            continue;
        };
        if *folders == "folder" {
            continue;
        }
        let succeed = *expected == "success";
        assert!(succeed || expected.starts_with("failure"), "{line}");
        if let Some(rest) = how.strip_prefix("same with ") {
            // Another `--identity`, for every keyless folder's own command.
            let change = ticked(rest).concat();
            let (flag, value) = change.split_once(' ').unwrap();
            assert!(folders.starts_with("any "), "{line}");
            let pattern = ticked(folders).concat();
            let suffix = pattern.trim_start_matches('*');
            for (folder, cmd) in by_folder.iter().filter(|(f, _)| f.ends_with(suffix)) {
                let mut words: Vec<&str> = cmd.split(' ').collect();
                let at = words.iter().position(|w| *w == flag).unwrap();
                words[at + 1] = value;
                rows.push((folder.clone(), words.join(" "), succeed));
            }
            continue;
        }
        let cmd = match how.strip_prefix("same, plus ") {
            Some(extra) => format!("{previous} {}", ticked(extra).concat()),
            None => ticked(how).concat(),
        };
        previous = cmd.clone();
        for folder in ticked(folders) {
            by_folder.push((folder.clone(), cmd.clone()));
            rows.push((folder, cmd.clone(), succeed));
        }
    }
    rows
}

#[test]
fn upstream_vectors_verify_with_translated_commands() {
    // Every row of ../shared/fixtures/oms-upstream/README.md (model_signing v0.2.0 … v1.1.0;
    // certificate, key and keyless), run through `rampart verify` from that folder.
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/oms-upstream"
    ));
    let readme = fs::read_to_string(dir.join("README.md")).unwrap();
    let rows = upstream_rows(&readme);
    let (mut ok, mut failing) = (0, 0);
    for (folder, cmd, succeed) in &rows {
        let cmd = cmd.replace("DIR", folder);
        let mut words = cmd.split_whitespace();
        assert_eq!(words.next(), Some("verify"), "{cmd}");
        let mut args: Vec<String> = vec!["verify".into()];
        match words.next().unwrap() {
            "key" | "certificate" => {}
            "sigstore" => args.push("--sigstore".into()),
            other => panic!("unknown method {other} in `{cmd}`"),
        }
        args.extend(words.map(str::to_owned));
        let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(&args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert_eq!(
            out.status.success(),
            *succeed,
            "{folder}: rampart {}: {}",
            args.join(" "),
            text(&out)
        );
        if *succeed {
            ok += 1;
        } else {
            assert_eq!(out.status.code(), Some(1), "{cmd}");
            let msg = text(&out);
            assert!(
                msg.contains("identity mismatch") && msg.contains("someone@else.com"),
                "{folder}: {msg}"
            );
            failing += 1;
        }
    }
    assert_eq!((ok, failing), (13, 4), "README rows run: {rows:?}");
}

#[test]
fn keyless_flags_go_together() {
    let dir = shared().join("fixtures/oms-upstream");
    let cfg = dir.join("sigstore-trust-config.json");
    let cfg = cfg.to_str().unwrap();
    // --sigstore without its identity, issuer and trust configuration is a usage error.
    let out = rampart(&["verify", "m", "--sigstore", "--identity", "a@b.c"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // Keyless options without --sigstore are a usage error.
    let out = rampart(&["verify", "m", "--key", "k.pem", "--identity", "a@b.c"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // A keyless bundle with the wrong issuer names both issuers.
    let model = dir.join("v1.0.0-sigstore");
    let sig = model.join("model.sig");
    let out = rampart(&[
        "verify",
        model.to_str().unwrap(),
        "--sigstore",
        "--trust-config",
        cfg,
        "--identity",
        "stefanb@us.ibm.com",
        "--issuer",
        "https://accounts.google.com",
        "--signature",
        sig.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("issuer mismatch")
            && msg.contains("https://accounts.google.com")
            && msg.contains("https://sigstore.verify.ibm.com/oauth2"),
        "{msg}"
    );
}
