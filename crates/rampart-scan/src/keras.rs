//! Rules for Keras model configurations (`config.json` of a `.keras` archive, or the
//! `model_config` attribute of a legacy `.h5` file).
//!
//! The *whole* configuration tree is walked — nested `Sequential`/`Functional` models inside
//! layers, wrappers (`TimeDistributed`, `Bidirectional`), optimizers, losses — not only the
//! top-level `layers` list. Verdict policy:
//!
//! - **malicious** — a `Lambda` layer carrying marshalled Python bytecode (Keras 3
//!   `function.config.code`, Keras 2 `function_type: "lambda"`); a `module`, `class_name` or
//!   `registered_name` naming a dangerous module (os, subprocess, builtins, importlib, pickle,
//!   …; the CVE-2025-1550 class) or a function reference to a dangerous function (`system`,
//!   `eval`, `get_file`, …); any mention of `enable_unsafe_deserialization` or `safe_mode: false`
//!   (the CVE-2025-9906 class);
//! - **review** — a `Lambda` that references a function by name, custom objects from modules
//!   outside the Keras namespaces (`keras`, `keras_nlp`, `keras_hub`, `keras_cv`, `tf_keras`,
//!   `tensorflow.keras`), duplicate keys in one object;
//! - **error** — no configuration could be read (bad JSON, limits, an HDF5 file without a
//!   findable `model_config`).

use rampart_formats::json::Value;
use rampart_formats::keras::{HDF5_MAGIC, Limits, h5_configs, parse_config};
use rampart_formats::source::Source;

use crate::{Finding, Report, Severity, Verdict};

/// Top-level modules whose use in a configuration means code execution, file or network access.
const DANGEROUS_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "posixpath",
    "ntpath",
    "subprocess",
    "builtins",
    "__builtin__",
    "__builtins__",
    "sys",
    "shutil",
    "socket",
    "importlib",
    "runpy",
    "pickle",
    "cpickle",
    "_pickle",
    "dill",
    "joblib",
    "marshal",
    "code",
    "codeop",
    "pty",
    "ctypes",
    "multiprocessing",
    "webbrowser",
    "requests",
    "urllib",
    "urllib2",
    "urllib3",
    "http",
    "httplib",
    "ftplib",
    "commands",
    "platform",
    "pathlib",
    "tempfile",
    "io",
    "glob",
    "types",
    "operator",
    "functools",
    "inspect",
    "asyncio",
    "signal",
    "threading",
    "pydoc",
    "timeit",
];

/// Function names that are dangerous whatever module they are referenced from.
const DANGEROUS_FUNCTIONS: &[&str] = &[
    "system",
    "popen",
    "exec",
    "eval",
    "execfile",
    "compile",
    "__import__",
    "import_module",
    "getattr",
    "open",
    "get_file",
    "load_model",
    "write_file",
    "read_file",
    "py_function",
    "numpy_function",
    "enable_unsafe_deserialization",
    "run",
    "call",
    "check_output",
    "spawn",
];

/// Module prefixes of Keras and its official libraries.
const KERAS_NAMESPACES: &[&str] = &[
    "keras",
    "keras_nlp",
    "keras_hub",
    "keras_cv",
    "tf_keras",
    "tensorflow.keras",
    "tensorflow.python.keras",
];

/// True when `bytes` looks like a Keras `config.json`: a JSON object mentioning `class_name`.
#[must_use]
pub fn sniff_config_json(bytes: &[u8]) -> bool {
    let head = bytes.get(..bytes.len().min(4096)).unwrap_or_default();
    let trimmed = head.trim_ascii_start();
    trimmed.starts_with(b"{") && head.windows(12).any(|w| w == b"\"class_name\"")
}

/// True when `head` is an HDF5 file (signature at offset 0, 512, 1024 or 2048).
#[must_use]
pub fn sniff(head: &[u8], len: u64) -> bool {
    len >= 8
        && [0usize, 512, 1024, 2048]
            .iter()
            .any(|&o| head.get(o..o + 8) == Some(HDF5_MAGIC.as_slice()))
}

fn in_namespace(module: &str, namespaces: &[&str]) -> bool {
    namespaces
        .iter()
        .any(|n| module == *n || module.strip_prefix(n).is_some_and(|r| r.starts_with('.')))
}

fn dangerous_module(module: &str) -> bool {
    let first = module
        .split(['.', '>', ':'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    DANGEROUS_MODULES.contains(&first.as_str())
        || (first == "tensorflow"
            && !in_namespace(module, KERAS_NAMESPACES)
            && (module.contains(".io") || module.contains("raw_ops") || module.contains("io_ops")))
}

struct Walker<'r> {
    report: &'r mut Report,
}

impl Walker<'_> {
    fn add(&mut self, verdict: Verdict, rule: &str, message: String, path: &str, evidence: String) {
        let severity = match verdict {
            Verdict::Malicious => Severity::Critical,
            Verdict::Review => Severity::Medium,
            _ => Severity::Low,
        };
        self.report.add(
            verdict,
            Finding {
                rule: rule.to_owned(),
                severity,
                message: format!("{message} (at {path})"),
                member: None,
                offset: None,
                evidence: Some(evidence),
            },
        );
    }

    fn module_ref(&mut self, key: &str, module: &str, path: &str) {
        if in_namespace(module, KERAS_NAMESPACES) {
            return;
        }
        if dangerous_module(module) {
            self.add(
                Verdict::Malicious,
                "keras/dangerous-module",
                format!("{key} refers to dangerous module {module:?}"),
                path,
                module.to_owned(),
            );
        } else {
            self.add(
                Verdict::Review,
                "keras/custom-object",
                format!("{key} refers to custom code in {module:?}"),
                path,
                module.to_owned(),
            );
        }
    }

    fn lambda(&mut self, obj: &Value, path: &str) {
        let config = obj.get("config");
        let name = config
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        let function = config.and_then(|c| c.get("function"));
        let keras3_code = function
            .and_then(|f| f.get("config"))
            .and_then(|c| c.get("code"))
            .is_some()
            || function
                .and_then(|f| f.get("class_name"))
                .and_then(Value::as_str)
                == Some("__lambda__");
        let keras2_code = config
            .and_then(|c| c.get("function_type"))
            .and_then(Value::as_str)
            == Some("lambda")
            || matches!(function, Some(Value::Array(_)));
        if keras3_code || keras2_code {
            self.add(
                Verdict::Malicious,
                "keras/lambda-code",
                format!("Lambda layer {name:?} carries marshalled Python bytecode, run on load"),
                path,
                format!("Lambda {name}"),
            );
        } else {
            self.add(
                Verdict::Review,
                "keras/lambda",
                format!("Lambda layer {name:?} calls a Python function by name"),
                path,
                format!("Lambda {name}"),
            );
        }
    }

    fn walk(&mut self, v: &Value, path: &str) {
        match v {
            Value::Object(members) => self.object(v, members, path),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.walk(item, &format!("{path}[{i}]"));
                }
            }
            Value::String(s) if s.contains("enable_unsafe_deserialization") => {
                self.add(
                    Verdict::Malicious,
                    "keras/unsafe-deserialization",
                    "configuration turns off safe mode (enable_unsafe_deserialization)".to_owned(),
                    path,
                    s.chars().take(200).collect(),
                );
            }
            _ => {}
        }
    }

    fn object(&mut self, v: &Value, members: &[(String, Value)], path: &str) {
        let mut seen = std::collections::HashSet::new();
        for (k, _) in members {
            if !seen.insert(k.as_str()) {
                self.add(
                    Verdict::Review,
                    "keras/duplicate-key",
                    format!("key {k:?} appears twice (loaders keep the last)"),
                    path,
                    k.clone(),
                );
            }
        }
        let class_name = v.get("class_name").and_then(Value::as_str);
        if class_name == Some("Lambda") {
            self.lambda(v, path);
        } else if class_name == Some("__lambda__") {
            // Marshalled bytecode outside a Lambda layer (an activation, initializer, ...).
            self.add(
                Verdict::Malicious,
                "keras/marshalled-code",
                "serialized Python lambda (marshalled bytecode) outside a Lambda layer".to_owned(),
                path,
                "__lambda__".to_owned(),
            );
        }
        for key in ["module", "registered_name"] {
            if let Some(m) = v.get(key).and_then(Value::as_str) {
                // `registered_name` is `package>Name` for custom objects, plain `Name` otherwise.
                let m = if key == "registered_name" {
                    match m.split_once('>') {
                        Some((pkg, _)) => pkg,
                        None if m.contains('.') => m,
                        None => continue,
                    }
                } else {
                    m
                };
                self.module_ref(key, m, path);
            }
        }
        if let Some(c) = class_name {
            if c.contains('.') && !c.starts_with("__") {
                self.module_ref("class_name", c, path);
            }
            if (c == "function" || c == "__function__")
                && let Some(f) = v.get("config").and_then(Value::as_str)
                && DANGEROUS_FUNCTIONS.contains(&f.rsplit('.').next().unwrap_or(f))
            {
                self.add(
                    Verdict::Malicious,
                    "keras/dangerous-function",
                    format!("function reference to {f:?}"),
                    path,
                    f.to_owned(),
                );
            }
        }
        for (k, child) in members {
            if k.eq_ignore_ascii_case("safe_mode") && child == &Value::Bool(false) {
                self.add(
                    Verdict::Malicious,
                    "keras/unsafe-deserialization",
                    "configuration sets safe_mode to false".to_owned(),
                    path,
                    "safe_mode=false".to_owned(),
                );
            }
            if k.contains("enable_unsafe_deserialization") {
                self.add(
                    Verdict::Malicious,
                    "keras/unsafe-deserialization",
                    "configuration mentions enable_unsafe_deserialization".to_owned(),
                    path,
                    k.clone(),
                );
            }
            self.walk(child, &format!("{path}.{k}"));
        }
    }
}

/// Judges one parsed configuration tree.
#[must_use]
pub fn judge(config: &Value) -> Report {
    let mut report = Report::new();
    Walker {
        report: &mut report,
    }
    .walk(config, "$");
    report
}

fn error(rule: &str, message: String, offset: Option<u64>) -> Report {
    let mut report = Report::new();
    report.add(
        Verdict::Error,
        Finding {
            rule: rule.to_owned(),
            severity: Severity::Medium,
            message,
            member: None,
            offset,
            evidence: None,
        },
    );
    report
}

/// Parses and judges a `.keras` archive's `config.json` member.
#[must_use]
pub fn scan_config_json(bytes: &[u8], limits: &Limits) -> Report {
    match parse_config(bytes, limits) {
        Ok(v) => judge(&v),
        Err(e) => error(
            "keras/bad-config",
            format!("config.json could not be read: {e}"),
            Some(e.offset()),
        ),
    }
}

/// Judges a legacy HDF5 `.h5` file (its `model_config` attribute) or, when `src` is a bare
/// JSON document, that configuration.
#[must_use]
pub fn scan(src: &dyn Source, limits: &Limits) -> Report {
    let mut head = vec![0u8; usize::try_from(src.len().min(4096)).unwrap_or(0)];
    if src.read_exact_at(0, &mut head).is_err() {
        return error("keras/io", "could not read the file".to_owned(), Some(0));
    }
    if !sniff(&head, src.len()) {
        if sniff_config_json(&head) {
            return match src.read_vec(0, src.len(), limits.max_config_len) {
                Ok(bytes) => scan_config_json(&bytes, limits),
                Err(e) => error("keras/limit", format!("config too large: {e}"), Some(0)),
            };
        }
        return error(
            "keras/not-keras",
            "neither HDF5 nor a Keras configuration".to_owned(),
            Some(0),
        );
    }
    let found = h5_configs(src, limits);
    if found.configs.is_empty() {
        let why = if found.names.is_empty() {
            "no model_config attribute found".to_owned()
        } else {
            format!(
                "model_config found but its JSON could not be read ({} errors)",
                found.errors.len()
            )
        };
        return error("keras/no-config", why, found.names.first().copied());
    }
    let mut report = Report::new();
    for (at, config) in &found.configs {
        let mut r = judge(config);
        for f in &mut r.findings {
            f.offset = f.offset.or(Some(*at));
        }
        report.merge(r);
    }
    report
}

/// Judges an HDF5 member of a Keras 3 `.keras` archive (`model.weights.h5`): weights only, so an
/// HDF5 file with no `model_config` attribute at all is `safe` here — unlike a stand-alone HDF5
/// file, which [`scan`] reports as `error` because other loaders (pandas/PyTables object atoms)
/// unpickle data from HDF5. A `model_config` found inside is judged as usual.
#[must_use]
pub fn scan_archive_weights(src: &dyn Source, limits: &Limits) -> Report {
    let mut head = vec![0u8; usize::try_from(src.len().min(4096)).unwrap_or(0)];
    if src.read_exact_at(0, &mut head).is_ok()
        && sniff(&head, src.len())
        && h5_configs(src, limits).names.is_empty()
    {
        let mut report = Report::new();
        report.add(
            Verdict::Safe,
            Finding {
                rule: "keras/weights-only".to_owned(),
                severity: Severity::Info,
                message: "Keras weights file: HDF5 without a model_config attribute".to_owned(),
                member: None,
                offset: None,
                evidence: None,
            },
        );
        return report;
    }
    scan(src, limits)
}

/// Fuzz entry point: parse and judge `data` with default limits, as a config and as a file.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let limits = Limits::default();
    for report in [
        scan_config_json(data, &limits),
        scan(&data.to_vec(), &limits),
    ] {
        // INVARIANT: a safe verdict carries no finding.
        assert!(report.verdict != Verdict::Safe || report.findings.is_empty());
    }
}
