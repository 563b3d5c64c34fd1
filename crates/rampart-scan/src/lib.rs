//! Rules over parsed model formats: findings, verdicts, and their rendering.
//!
//! The parsers in `rampart-formats` turn bytes into structured analyses without executing
//! anything; this crate judges those analyses. Each rule emits [`Finding`]s; the file's
//! [`Verdict`] is the worst verdict any finding implies (see [`Report`]).
//!
//! # Verdict policy
//!
//! Every rule module maps its findings to verdicts by this project-wide rule:
//!
//! - **malicious** — the file reaches code execution, file or network access (pickle sinks, Keras
//!   `Lambda` code, chat-template SSTI, ONNX external data escaping the model directory,
//!   TensorFlow file or Python ops), or holds a structure whose only purpose is to drive a parser
//!   outside the data: lengths, counts or offsets past the end, overflowing sizes, overlapping
//!   ranges, absurd declared sizes (2^62 counts, external ranges above 2^50 bytes), out-of-range
//!   type indices used as table indexes (GGUF tensor types), decompression bombs, memo/reference
//!   amplification bombs (`pickle/memo-amplification`).
//! - **error** — the file cannot be analysed: unsupported version, unknown enum values that are
//!   not table indexes (unknown dtype names, unknown GGUF metadata value types), invalid encodings
//!   (non-UTF-8, non-JSON, JSON of the wrong shape), missing fields, truncation without an
//!   out-of-bounds claim, a limit hit. Never reported as safe.
//! - **review** — inert but unusual: allow-listed reconstructors, unknown custom ops or domains,
//!   gaps or trailing bytes that hold nothing dangerous, duplicate keys.
//! - **safe** — nothing that can execute. Unrecognised binary data that is not a pickle and
//!   carries no embedded model configuration is `safe` with an `info` finding
//!   (`format/unrecognised-data`), so raw ONNX external-data blobs or sentencepiece
//!   `tokenizer.model` files are not false alarms; content that parses as a pickle with imports
//!   or calls is always judged as a pickle, and an embedded Keras configuration (e.g. in a
//!   `keras_metadata.pb`) is judged with the Keras rules (see [`engine`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod engine;
pub mod gguf;
pub mod keras;
pub mod limits;
pub mod onnx;
pub mod pickle;
pub mod render;
pub mod safetensors;
pub mod savedmodel;

pub use engine::{Scanned, Scanner};
pub use limits::ScanLimits;
use serde::{Deserialize, Serialize};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: does not change the verdict.
    Info,
    /// Worth a look; the file needs review.
    Low,
    /// Unknown or unusual construct; the file needs review.
    Medium,
    /// Very likely malicious.
    High,
    /// Reaches code execution, file or network access.
    Critical,
}

/// The verdict for one file (or container member). Ordered so that the worst wins:
/// `Safe < Review < Error < Malicious`, and `max()` combines verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing that can execute.
    Safe,
    /// Only allow-listed reconstructors, or unknown-but-inert constructs.
    Review,
    /// Could not be fully analysed; never to be treated as safe.
    Error,
    /// Can reach code execution, file or network access, or is built to evade parsers.
    Malicious,
}

impl Verdict {
    /// The lowercase name used in reports (`safe`, `review`, `error`, `malicious`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Safe => "safe",
            Self::Review => "review",
            Self::Error => "error",
            Self::Malicious => "malicious",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One observation by one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule identifier, e.g. `pickle/denied-call`.
    pub rule: String,
    /// How serious it is.
    pub severity: Severity,
    /// Human-readable explanation.
    pub message: String,
    /// Path of the member inside a container, if any.
    pub member: Option<String>,
    /// Byte offset of the evidence, relative to the scanned stream (or member).
    pub offset: Option<u64>,
    /// The evidence itself, e.g. `posix.system`.
    pub evidence: Option<String>,
}

/// Findings plus the verdict they imply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The worst verdict implied by any finding (`Safe` when there are none).
    pub verdict: Verdict,
    /// Every finding, in stream order per rule family.
    pub findings: Vec<Finding>,
}

impl Report {
    /// An empty, safe report.
    #[must_use]
    pub fn new() -> Self {
        Self {
            verdict: Verdict::Safe,
            findings: Vec::new(),
        }
    }

    /// Adds a finding and raises the verdict to at least `verdict`.
    pub fn add(&mut self, verdict: Verdict, finding: Finding) {
        self.verdict = self.verdict.max(verdict);
        self.findings.push(finding);
    }

    /// Sets `member` on every finding that has none (for a container walker scanning a member).
    #[must_use]
    pub fn in_member(mut self, member: &str) -> Self {
        for f in &mut self.findings {
            if f.member.is_none() {
                f.member = Some(member.to_owned());
            }
        }
        self
    }

    /// Merges another report into this one (worst verdict wins).
    pub fn merge(&mut self, other: Report) {
        self.verdict = self.verdict.max(other.verdict);
        self.findings.extend(other.findings);
    }
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_verdict_wins() {
        assert!(Verdict::Safe < Verdict::Review);
        assert!(Verdict::Review < Verdict::Error);
        assert!(Verdict::Error < Verdict::Malicious);
        let worst = [Verdict::Review, Verdict::Malicious, Verdict::Error]
            .into_iter()
            .max();
        assert_eq!(worst, Some(Verdict::Malicious));
        assert!(Severity::Info < Severity::Critical);
    }

    #[test]
    fn serde_names_are_lowercase() {
        assert_eq!(
            serde_json::to_string(&Verdict::Malicious).unwrap(),
            "\"malicious\""
        );
        assert_eq!(serde_json::to_string(&Severity::High).unwrap(), "\"high\"");
        let f = Finding {
            rule: "r".into(),
            severity: Severity::Low,
            message: "m".into(),
            member: None,
            offset: Some(3),
            evidence: None,
        };
        let v: serde_json::Value = serde_json::to_value(&f).unwrap();
        assert_eq!(v["member"], serde_json::Value::Null);
        assert_eq!(v["offset"], 3);
    }

    #[test]
    fn report_add_merge_and_member() {
        let mut r = Report::new();
        assert_eq!(r.verdict, Verdict::Safe);
        let f = Finding {
            rule: "r".into(),
            severity: Severity::Medium,
            message: "m".into(),
            member: None,
            offset: None,
            evidence: None,
        };
        r.add(Verdict::Review, f.clone());
        let mut other = Report::new();
        other.add(Verdict::Error, f);
        r.merge(other);
        assert_eq!(r.verdict, Verdict::Error);
        let r = r.in_member("archive/data.pkl");
        assert!(
            r.findings
                .iter()
                .all(|f| f.member.as_deref() == Some("archive/data.pkl"))
        );
    }
}
