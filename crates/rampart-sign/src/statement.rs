//! The in-toto Statement v1 that OMS signs (the DSSE payload).
//!
//! Writing reproduces the reference's bytes (protobuf `MessageToJson`: Python `json.dumps` with a
//! 2-space indent, `ensure_ascii`, no trailing newline). Reading accepts any key order and ignores
//! unknown fields, as the reference does.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::hashing::{Manifest, Method, Resource, root_digest};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// OMS v1.0 predicate type.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// Predicate type of the legacy format written by `model_signing` v0.2: the subjects are the
/// files themselves and the predicate carries nothing.
pub const PREDICATE_TYPE_V0_2: &str = "https://model_signing/Digests/v0.1";
/// Model name the reference gives a v0.2 statement, which has none.
const V0_2_MODEL_NAME: &str = "compat-undefined-not-present";
/// DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A minimal JSON tree that keeps key order, for byte-exact output.
enum J<'a> {
    Str(&'a str),
    Bool(bool),
    Arr(Vec<J<'a>>),
    Obj(Vec<(&'a str, J<'a>)>),
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(ch),
            _ => {
                let mut units = [0u16; 2];
                for u in ch.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

fn write_json(out: &mut String, v: &J<'_>, depth: usize) {
    let pad = |out: &mut String, d: usize| {
        out.push('\n');
        for _ in 0..d {
            out.push_str("  ");
        }
    };
    match v {
        J::Str(s) => write_str(out, s),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Arr(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                write_json(out, item, depth + 1);
            }
            pad(out, depth);
            out.push(']');
        }
        J::Obj(fields) => {
            if fields.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                write_str(out, k);
                out.push_str(": ");
                write_json(out, item, depth + 1);
            }
            pad(out, depth);
            out.push('}');
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// Serializes a files-mode manifest as the statement bytes the reference writes.
///
/// Only [`Method::Files`] manifests can be written; Rampart never produces shards.
pub fn statement_json(manifest: &Manifest) -> Result<String> {
    if manifest.method != Method::Files {
        return Err(Error::Unsupported(
            "only the files serialization can be signed".to_owned(),
        ));
    }
    let root = hex(&manifest.root_digest());
    let digests: Vec<String> = manifest.resources.iter().map(|r| hex(&r.digest)).collect();
    let resources = manifest
        .resources
        .iter()
        .zip(&digests)
        .map(|(r, d)| {
            J::Obj(vec![
                ("name", J::Str(&r.name)),
                ("algorithm", J::Str(&r.algorithm)),
                ("digest", J::Str(d)),
            ])
        })
        .collect();
    let mut serialization = vec![
        ("allow_symlinks", J::Bool(false)),
        ("hash_type", J::Str(&manifest.hash_type)),
        ("method", J::Str("files")),
    ];
    if !manifest.ignore_paths.is_empty() {
        serialization.push((
            "ignore_paths",
            J::Arr(manifest.ignore_paths.iter().map(|p| J::Str(p)).collect()),
        ));
    }
    let doc = J::Obj(vec![
        ("_type", J::Str(STATEMENT_TYPE)),
        (
            "subject",
            J::Arr(vec![J::Obj(vec![
                ("name", J::Str(&manifest.model_name)),
                ("digest", J::Obj(vec![("sha256", J::Str(&root))])),
            ])]),
        ),
        ("predicateType", J::Str(PREDICATE_TYPE)),
        (
            "predicate",
            J::Obj(vec![
                ("serialization", J::Obj(serialization)),
                ("resources", J::Arr(resources)),
            ]),
        ),
    ]);
    let mut out = String::new();
    write_json(&mut out, &doc, 0);
    Ok(out)
}

#[derive(Deserialize)]
struct RawStatement {
    #[serde(rename = "_type")]
    type_: String,
    subject: Vec<RawSubject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: serde_json::Value,
}

#[derive(Deserialize)]
struct RawSubject {
    #[serde(default)]
    name: Option<String>,
    digest: RawSubjectDigest,
}

#[derive(Deserialize)]
struct RawSubjectDigest {
    sha256: String,
}

#[derive(Deserialize)]
struct RawPredicate {
    serialization: RawSerialization,
    resources: Vec<RawResource>,
}

#[derive(Deserialize)]
struct RawSerialization {
    method: String,
    hash_type: String,
    allow_symlinks: bool,
    #[serde(default)]
    ignore_paths: Vec<String>,
    #[serde(default)]
    shard_size: Option<f64>,
}

#[derive(Deserialize)]
struct RawResource {
    name: String,
    algorithm: String,
    digest: String,
}

/// A parsed, self-consistent OMS statement (root digest checked, names unique).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The manifest the statement records (`model_name` is the subject name).
    pub manifest: Manifest,
}

impl Statement {
    /// Parses signed payload bytes. Checks the statement and predicate types, that there is
    /// exactly one subject, that digests are hex, names unique, and that the subject digest
    /// matches the resources in listed order.
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let raw: RawStatement = serde_json::from_slice(payload)
            .map_err(|e| Error::MalformedStatement(e.to_string()))?;
        if raw.type_ != STATEMENT_TYPE {
            return Err(Error::MalformedStatement(format!(
                "statement type '{}' is not '{STATEMENT_TYPE}'",
                raw.type_
            )));
        }
        if raw.predicate_type == PREDICATE_TYPE_V0_2 {
            return Self::from_v0_2_subjects(&raw.subject);
        }
        if raw.predicate_type != PREDICATE_TYPE {
            return Err(Error::MalformedStatement(format!(
                "predicate type '{}' is not '{PREDICATE_TYPE}'",
                raw.predicate_type
            )));
        }
        let [subject] = raw.subject.as_slice() else {
            return Err(Error::MalformedStatement(format!(
                "expected exactly one subject, found {}",
                raw.subject.len()
            )));
        };
        let predicate: RawPredicate = serde_json::from_value(raw.predicate)
            .map_err(|e| Error::MalformedStatement(format!("predicate: {e}")))?;
        let ser = predicate.serialization;
        let method = match ser.method.as_str() {
            "files" => Method::Files,
            "shards" => {
                let size = ser.shard_size.ok_or_else(|| {
                    Error::MalformedStatement("shards serialization without shard_size".into())
                })?;
                if !(size >= 1.0 && size.fract() == 0.0 && size <= 9.0e15) {
                    return Err(Error::MalformedStatement(format!(
                        "invalid shard_size {size}"
                    )));
                }
                // Exact: `size` was checked to be an integer in 1..=9e15 above.
                let shard_size = size as u64;
                Method::Shards { shard_size }
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "serialization method '{other}'"
                )));
            }
        };
        if ser.hash_type != "sha256" {
            return Err(Error::Unsupported(format!(
                "hash type '{}' (only sha256 is supported)",
                ser.hash_type
            )));
        }
        let _ = ser.allow_symlinks;
        let mut names = BTreeSet::new();
        let mut resources = Vec::with_capacity(predicate.resources.len());
        for r in predicate.resources {
            let digest = unhex(&r.digest).ok_or_else(|| {
                Error::MalformedStatement(format!("digest of '{}' is not hex", r.name))
            })?;
            if !names.insert(r.name.clone()) {
                return Err(Error::MalformedStatement(format!(
                    "resource '{}' is listed twice",
                    r.name
                )));
            }
            resources.push(Resource {
                name: r.name,
                algorithm: r.algorithm,
                digest,
            });
        }
        let want = unhex(&subject.digest.sha256)
            .ok_or_else(|| Error::MalformedStatement("subject digest is not hex".to_owned()))?;
        if want != root_digest(&resources) {
            return Err(Error::RootDigestMismatch);
        }
        Ok(Self {
            manifest: Manifest {
                model_name: subject.name.clone().unwrap_or_default(),
                method,
                hash_type: ser.hash_type,
                ignore_paths: ser.ignore_paths,
                resources,
            },
        })
    }

    /// The v0.2 statement, read as the reference does: every subject is a file with its SHA-256,
    /// the serialization is files/SHA-256, and there is no root digest to check. Names must
    /// still be unique and digests 32-byte hex.
    fn from_v0_2_subjects(subjects: &[RawSubject]) -> Result<Self> {
        if subjects.is_empty() {
            return Err(Error::MalformedStatement(
                "v0.2 statement without subjects".to_owned(),
            ));
        }
        let mut names = BTreeSet::new();
        let mut resources = Vec::with_capacity(subjects.len());
        for sub in subjects {
            let name = sub.name.clone().ok_or_else(|| {
                Error::MalformedStatement("v0.2 subject without a name".to_owned())
            })?;
            let digest = unhex(&sub.digest.sha256)
                .filter(|d| d.len() == 32)
                .ok_or_else(|| {
                    Error::MalformedStatement(format!("digest of '{name}' is not SHA-256 hex"))
                })?;
            if !names.insert(name.clone()) {
                return Err(Error::MalformedStatement(format!(
                    "resource '{name}' is listed twice"
                )));
            }
            resources.push(Resource {
                name,
                algorithm: "sha256".to_owned(),
                digest,
            });
        }
        Ok(Self {
            manifest: Manifest {
                model_name: V0_2_MODEL_NAME.to_owned(),
                method: Method::Files,
                hash_type: "sha256".to_owned(),
                ignore_paths: Vec::new(),
                resources,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_style_escapes() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\é😀\u{7f}\n");
        assert_eq!(s, r#""a\"b\\\u00e9\ud83d\ude00\u007f\n""#);
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(
            unhex(&hex(&[0, 1, 0xab, 0xff])),
            Some(vec![0, 1, 0xab, 0xff])
        );
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
