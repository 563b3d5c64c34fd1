//! Scan results as a user or a machine reads them: text, JSON (a stable interface) and SARIF 2.1.0.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::{Finding, Severity, Verdict};

/// The result for one scanned file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileResult {
    /// The path as the user named it (or as found under a named directory).
    pub path: String,
    /// The format recognised from the content (`pickle`, `pytorch-zip`, `safetensors`, …).
    pub format: String,
    /// The file's verdict: the worst implied by any finding.
    pub verdict: Verdict,
    /// Every finding, with `member` set for findings inside containers.
    pub findings: Vec<Finding>,
}

/// Counts of files per verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Files scanned.
    pub files: usize,
    /// Files judged `safe`.
    pub safe: usize,
    /// Files judged `review`.
    pub review: usize,
    /// Files judged `malicious`.
    pub malicious: usize,
    /// Files that could not be fully analysed.
    pub error: usize,
}

impl Summary {
    /// Counts `files`.
    pub fn of(files: &[FileResult]) -> Self {
        let mut s = Self {
            files: files.len(),
            ..Self::default()
        };
        for f in files {
            match f.verdict {
                Verdict::Safe => s.safe += 1,
                Verdict::Review => s.review += 1,
                Verdict::Malicious => s.malicious += 1,
                Verdict::Error => s.error += 1,
            }
        }
        s
    }
}

/// The JSON report, version 1:
/// `{"version":1,"files":[{"path","format","verdict","findings":[…]}],"summary":{…}}`.
pub fn json(files: &[FileResult]) -> Value {
    json!({
        "version": 1,
        "files": files,
        "summary": Summary::of(files),
    })
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium | Severity::Low => "warning",
        Severity::Info => "note",
    }
}

/// Percent-encodes a path into a relative URI reference (RFC 3986), keeping `/`.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The SARIF 2.1.0 log: one run, one rule per distinct rule id, one result per finding.
pub fn sarif(files: &[FileResult], tool_version: &str) -> Value {
    let mut rules: BTreeMap<&str, &Finding> = BTreeMap::new();
    for f in files.iter().flat_map(|f| &f.findings) {
        rules.entry(f.rule.as_str()).or_insert(f);
    }
    let rule_index: BTreeMap<&str, usize> =
        rules.keys().enumerate().map(|(i, r)| (*r, i)).collect();
    let rules_json: Vec<Value> = rules
        .values()
        .map(|f| {
            json!({
                "id": f.rule,
                "shortDescription": {"text": f.rule},
                "defaultConfiguration": {"level": sarif_level(f.severity)},
            })
        })
        .collect();
    let mut results = Vec::new();
    for file in files {
        for f in &file.findings {
            let mut location = json!({
                "physicalLocation": {"artifactLocation": {"uri": uri(&file.path)}},
            });
            if let (Some(offset), None) = (f.offset, &f.member) {
                location["physicalLocation"]["region"] = json!({"byteOffset": offset});
            }
            if let Some(member) = &f.member {
                location["logicalLocations"] = json!([{
                    "fullyQualifiedName": member,
                    "kind": "module",
                }]);
            }
            let mut message = f.message.clone();
            if let Some(member) = &f.member {
                let _ = write!(message, " (in {member}");
                if let Some(o) = f.offset {
                    let _ = write!(message, " at byte {o}");
                }
                message.push(')');
            }
            results.push(json!({
                "ruleId": f.rule,
                "ruleIndex": rule_index.get(f.rule.as_str()).copied().unwrap_or(0),
                "level": sarif_level(f.severity),
                "message": {"text": message},
                "locations": [location],
                "properties": {
                    "severity": f.severity,
                    "verdict": file.verdict,
                    "format": file.format,
                    "member": f.member,
                    "offset": f.offset,
                    "evidence": f.evidence,
                },
            }));
        }
    }
    json!({
        "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "rampart",
                "version": tool_version,
                "semanticVersion": tool_version,
                "rules": rules_json,
            }},
            "results": results,
            "properties": {"summary": Summary::of(files)},
        }],
    })
}

/// Human-readable text: one line per file, findings indented under it, a summary line last.
pub fn text(files: &[FileResult]) -> String {
    let mut out = String::new();
    for f in files {
        let _ = writeln!(out, "{:<9} {} [{}]", f.verdict.as_str(), f.path, f.format);
        for x in &f.findings {
            let mut at = String::new();
            if let Some(m) = &x.member {
                let _ = write!(at, " in {m}");
            }
            if let Some(o) = x.offset {
                let _ = write!(at, " at byte {o}");
            }
            let _ = writeln!(
                out,
                "  {:<8} {}: {}{at}",
                format!("{:?}", x.severity).to_lowercase(),
                x.rule,
                x.message
            );
            if let Some(e) = &x.evidence {
                let _ = writeln!(out, "           evidence: {e}");
            }
        }
    }
    let s = Summary::of(files);
    let _ = writeln!(
        out,
        "{} files: {} safe, {} review, {} malicious, {} error",
        s.files, s.safe, s.review, s.malicious, s.error
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<FileResult> {
        vec![
            FileResult {
                path: "models/a b.pkl".into(),
                format: "pickle".into(),
                verdict: Verdict::Malicious,
                findings: vec![Finding {
                    rule: "pickle/denied-call".into(),
                    severity: Severity::Critical,
                    message: "calls posix.system".into(),
                    member: None,
                    offset: Some(12),
                    evidence: Some("posix.system".into()),
                }],
            },
            FileResult {
                path: "ok.safetensors".into(),
                format: "safetensors".into(),
                verdict: Verdict::Safe,
                findings: vec![],
            },
        ]
    }

    #[test]
    fn json_shape_is_stable() {
        let v = json(&sample());
        assert_eq!(v["version"], 1);
        assert_eq!(v["files"][0]["path"], "models/a b.pkl");
        assert_eq!(v["files"][0]["verdict"], "malicious");
        assert_eq!(v["files"][0]["findings"][0]["severity"], "critical");
        assert_eq!(v["files"][0]["findings"][0]["member"], Value::Null);
        assert_eq!(v["files"][0]["findings"][0]["offset"], 12);
        assert_eq!(v["files"][0]["findings"][0]["evidence"], "posix.system");
        assert_eq!(
            v["summary"],
            json!({"files": 2, "safe": 1, "review": 0, "malicious": 1, "error": 0})
        );
    }

    #[test]
    fn sarif_encodes_paths_and_levels() {
        let v = sarif(&sample(), "0.1.0");
        let r = &v["runs"][0]["results"][0];
        assert_eq!(r["level"], "error");
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "models/a%20b.pkl"
        );
        assert_eq!(
            r["locations"][0]["physicalLocation"]["region"]["byteOffset"],
            12
        );
        assert_eq!(
            v["runs"][0]["tool"]["driver"]["rules"][0]["id"],
            "pickle/denied-call"
        );
    }

    #[test]
    fn text_lists_findings_and_summary() {
        let t = text(&sample());
        assert!(t.contains("malicious models/a b.pkl [pickle]"), "{t}");
        assert!(t.contains("evidence: posix.system"), "{t}");
        assert!(
            t.ends_with("2 files: 1 safe, 0 review, 1 malicious, 0 error\n"),
            "{t}"
        );
    }
}
