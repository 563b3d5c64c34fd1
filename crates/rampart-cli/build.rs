//! Embeds the CycloneDX SBOM of the `rampart` binary at build time.
//!
//! The package set is what `cargo tree -p rampart-cli --edges normal,no-proc-macro --target <target>`
//! resolves: the crates linked into the binary as `cargo build -p rampart-cli` or `cargo install` builds
//! it (build-dependencies, dev-dependencies and procedural macros run at compile time and are not
//! linked). Licences come from the manifests, checksums from `Cargo.lock`. The output is
//! deterministic (no timestamp, no random serial number, no paths), so two builds of the same tree embed
//! the same bytes.

// A build script talks to cargo through stdout.
#![allow(clippy::disallowed_macros)]

use std::collections::{BTreeMap, BTreeSet};
use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error>;

/// One package as `cargo tree` printed it.
struct Package {
    name: String,
    version: String,
    license: String,
    workspace: bool,
    deps: BTreeSet<String>,
}

fn main() -> Result<(), BoxError> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let target = env::var("TARGET")?;
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = PathBuf::from(env::var("OUT_DIR")?).join("sbom.cdx.json");
    let root = manifest_dir
        .parent()
        .and_then(|p| p.parent())
        .ok_or("rampart-cli is expected at <workspace>/crates/rampart-cli")?;
    let lock_path = root.join("Cargo.lock");
    println!("cargo::rerun-if-changed={}", lock_path.display());
    println!(
        "cargo::rerun-if-changed={}",
        root.join("Cargo.toml").display()
    );
    for entry in fs::read_dir(root.join("crates"))? {
        let manifest = entry?.path().join("Cargo.toml");
        if manifest.exists() {
            println!("cargo::rerun-if-changed={}", manifest.display());
        }
    }

    let output = Command::new(cargo)
        .current_dir(root)
        .args(["tree", "--locked", "--offline", "-p", "rampart-cli"])
        .args(["--edges", "normal,no-proc-macro", "--target", &target])
        .args([
            "--prefix",
            "depth",
            "--charset",
            "ascii",
            "--color",
            "never",
        ])
        .args(["--format", "{p}|{l}"])
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let packages = parse_tree(std::str::from_utf8(&output.stdout)?)?;
    let checksums = lock_checksums(&fs::read_to_string(&lock_path)?)?;

    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    let mut main = None;
    for (key, pkg) in &packages {
        let depends_on: Vec<&String> = pkg.deps.iter().collect();
        if pkg.name == "rampart-cli" && pkg.workspace {
            main = Some(pkg);
            dependencies.push(json!({"ref": "rampart", "dependsOn": depends_on}));
            continue;
        }
        let mut c = json!({
            "type": "library",
            "bom-ref": key,
            "name": pkg.name,
            "version": pkg.version,
            "scope": "required",
            "purl": key,
        });
        if let Some(l) = licenses(&pkg.license) {
            c["licenses"] = l;
        }
        if pkg.workspace {
            c["properties"] = json!([{"name": "cargo:source", "value": "workspace"}]);
        } else {
            let sum = checksums
                .get(&(pkg.name.clone(), pkg.version.clone()))
                .ok_or_else(|| format!("no checksum in Cargo.lock for {key}"))?;
            c["hashes"] = json!([{"alg": "SHA-256", "content": sum}]);
            c["properties"] = json!([{"name": "cargo:source", "value": "registry"}]);
        }
        components.push(c);
        dependencies.push(json!({"ref": key, "dependsOn": depends_on}));
    }
    let main = main.ok_or("rampart-cli missing from cargo tree output")?;
    let mut component = json!({
        "type": "application",
        "bom-ref": "rampart",
        "name": "rampart",
        "version": main.version,
        "description": "Secure platform for ML models: registry, signing, scanning, sandboxed serving, audit",
        "purl": purl("rampart-cli", &main.version),
    });
    if let Some(l) = licenses(&main.license) {
        component["licenses"] = l;
    }
    let bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "tools": {"components": [{
                "type": "application",
                "name": "rampart-cli build script",
                "description": "cargo tree (normal edges, no proc-macros) + Cargo.lock checksums",
            }]},
            "component": component,
            "properties": [{"name": "rampart:target", "value": target}],
        },
        "components": components,
        "dependencies": dependencies,
    });
    fs::write(&out, serde_json::to_vec_pretty(&bom)?)?;
    Ok(())
}

/// Parses `--prefix depth --format '{p}|{l}'` output into packages keyed by purl, with their edges.
fn parse_tree(text: &str) -> Result<BTreeMap<String, Package>, BoxError> {
    let mut packages: BTreeMap<String, Package> = BTreeMap::new();
    let mut stack: Vec<String> = Vec::new(); // purls of the current path, by depth
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let (depth, rest) = line.split_at(digits);
        let depth: usize = depth.parse()?;
        let rest = rest.strip_suffix(" (*)").unwrap_or(rest);
        let (p, license) = rest.split_once('|').ok_or("unexpected cargo tree line")?;
        let mut words = p.split(' ');
        let name = words.next().ok_or("missing package name")?.to_owned();
        let version = words
            .next()
            .and_then(|v| v.strip_prefix('v'))
            .ok_or("missing package version")?
            .to_owned();
        let workspace = p.contains(" (/");
        let key = purl(&name, &version);
        stack.truncate(depth);
        if let Some(parent) = stack.last().and_then(|k| packages.get_mut(k)) {
            parent.deps.insert(key.clone());
        }
        stack.push(key.clone());
        packages.entry(key).or_insert(Package {
            name,
            version,
            license: license.trim().to_owned(),
            workspace,
            deps: BTreeSet::new(),
        });
    }
    Ok(packages)
}

fn purl(name: &str, version: &str) -> String {
    format!("pkg:cargo/{name}@{version}")
}

fn licenses(license: &str) -> Option<Value> {
    // Old crates write `MIT/Apache-2.0`; SPDX spells that `MIT OR Apache-2.0`.
    (!license.is_empty()).then(|| json!([{"expression": license.replace('/', " OR ")}]))
}

/// `(name, version) → checksum` for every registry package in `Cargo.lock`.
fn lock_checksums(lock: &str) -> Result<BTreeMap<(String, String), String>, BoxError> {
    let doc: toml::Table = lock.parse()?;
    let mut out = BTreeMap::new();
    if let Some(pkgs) = doc.get("package").and_then(|p| p.as_array()) {
        for p in pkgs {
            if let (Some(n), Some(v), Some(c)) = (
                p.get("name").and_then(|x| x.as_str()),
                p.get("version").and_then(|x| x.as_str()),
                p.get("checksum").and_then(|x| x.as_str()),
            ) {
                out.insert((n.to_owned(), v.to_owned()), c.to_owned());
            }
        }
    }
    Ok(out)
}
