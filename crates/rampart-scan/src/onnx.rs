//! Rules for ONNX models.
//!
//! Verdict policy:
//!
//! - **malicious** — an initializer's `external_data` `location` that is absolute (`/…`, `\…`),
//!   has a drive letter (`C:`), a URL scheme (`file://`, `http://`), a `..` component (either
//!   separator) or a NUL byte: loading it reads files outside the model directory; a declared
//!   tensor size whose dims product overflows 64 bits; an external-data `offset` or `length`
//!   above [`IMPLAUSIBLE_EXTERNAL`] (2^50 bytes: no real file is a petabyte) or overflowing 64 bits
//!   (rule `onnx/implausible-external-range`);
//! - **review** — operator domains (on nodes or in `opset_import`) other than the standard ones
//!   (`""`, `ai.onnx`, `ai.onnx.ml`, `ai.onnx.training`, `ai.onnx.preview.training`,
//!   `com.microsoft`) and not defined by a model-local function: custom operators load native
//!   code; declared tensor sizes or external `length`/`offset` over `max_tensor_bytes` but
//!   plausible;
//!   unparsable `length`/`offset`; `data_location = EXTERNAL` without a location;
//! - **error** — the protobuf could not be decoded, or a limit stopped the walk.
//!
//! Relative external-data files inside the model directory are reported as `info`.

use rampart_formats::onnx::{Limits, Model, elem_size, parse};
use rampart_formats::source::Source;

use crate::{Finding, Report, Severity, Verdict};

/// Operator domains that ship with ONNX / ONNX Runtime.
pub const STANDARD_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.training",
    "ai.onnx.preview.training",
    "com.microsoft",
];

fn varint(head: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let b = *head.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f).checked_shl(7 * i)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// True when `head` looks like an ONNX `ModelProto`: it starts with `ir_version` (field 1,
/// value 3–100) and every following top-level field visible in `head` is a `ModelProto` field
/// with the right wire type and a length that fits in the file.
#[must_use]
pub fn sniff(head: &[u8], len: u64) -> bool {
    let mut pos = 0usize;
    if head.first() != Some(&0x08) {
        return false;
    }
    pos += 1;
    if !varint(head, &mut pos).is_some_and(|v| (3..=100).contains(&v)) {
        return false;
    }
    let mut fields = 1;
    while pos < head.len() {
        let Some(tag) = varint(head, &mut pos) else {
            return fields > 1;
        };
        let ok = match (tag >> 3, tag & 7) {
            (1 | 5, 0) => {
                if varint(head, &mut pos).is_none() {
                    return fields > 1;
                }
                true
            }
            (2 | 3 | 4 | 6 | 7 | 8 | 14 | 20 | 25 | 26, 2) => {
                let Some(n) = varint(head, &mut pos) else {
                    return fields > 1;
                };
                if (pos as u64).saturating_add(n) > len {
                    return false;
                }
                pos = pos.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
                true
            }
            _ => false,
        };
        if !ok {
            return false;
        }
        fields += 1;
    }
    fields > 1
}

/// Why an external-data location escapes the model directory, if it does.
#[must_use]
pub fn location_escapes(loc: &str) -> Option<&'static str> {
    let bytes = loc.as_bytes();
    if loc.contains('\0') {
        return Some("contains a NUL byte");
    }
    if loc.starts_with('/') || loc.starts_with('\\') {
        return Some("is absolute");
    }
    if let [d, b':', ..] = bytes
        && d.is_ascii_alphabetic()
    {
        return Some("has a drive letter");
    }
    if let Some(i) = loc.find(':') {
        let scheme = loc.get(..i).unwrap_or_default();
        if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Some("has a URL scheme");
        }
    }
    if loc.split(['/', '\\']).any(|c| c == "..") {
        return Some("has a `..` component");
    }
    if loc.to_ascii_lowercase().contains("%2e%2e") {
        return Some("has a percent-encoded `..`");
    }
    None
}

fn finding(
    rule: &str,
    severity: Severity,
    message: String,
    offset: u64,
    evidence: Option<String>,
) -> Finding {
    Finding {
        rule: rule.to_owned(),
        severity,
        message,
        member: None,
        offset: Some(offset),
        evidence,
    }
}

/// Judges an already decoded model.
#[must_use]
pub fn judge(model: &Model, limits: &Limits) -> Report {
    let mut report = Report::new();
    let local: Vec<&str> = model.functions.iter().map(|f| f.domain.as_str()).collect();
    let known = |d: &str| STANDARD_DOMAINS.contains(&d) || local.contains(&d);
    for (domain, version, at) in &model.opset_imports {
        if !known(domain) {
            report.add(
                Verdict::Review,
                finding(
                    "onnx/custom-domain",
                    Severity::Medium,
                    format!("opset_import of non-standard domain {domain:?} (version {version})"),
                    *at,
                    Some(domain.clone()),
                ),
            );
        }
    }
    for n in &model.nodes {
        if !known(&n.domain) {
            report.add(
                Verdict::Review,
                finding(
                    "onnx/custom-operator",
                    Severity::Medium,
                    format!(
                        "operator {:?} from non-standard domain {:?} (custom operators load native code)",
                        n.op_type, n.domain
                    ),
                    n.offset,
                    Some(format!("{}::{}", n.domain, n.op_type)),
                ),
            );
        }
    }
    for t in &model.tensors {
        let size = t
            .dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .and_then(|n| n.checked_mul(elem_size(t.data_type)));
        match size {
            None => report.add(
                Verdict::Malicious,
                finding(
                    "onnx/dims-overflow",
                    Severity::High,
                    format!("tensor {:?} dims {:?} overflow 64 bits", t.name, t.dims),
                    t.offset,
                    Some(t.name.clone()),
                ),
            ),
            Some(s) if s > limits.max_tensor_bytes => report.add(
                Verdict::Review,
                finding(
                    "onnx/tensor-too-large",
                    Severity::Medium,
                    format!(
                        "tensor {:?} declares {s} bytes (limit {})",
                        t.name, limits.max_tensor_bytes
                    ),
                    t.offset,
                    Some(t.name.clone()),
                ),
            ),
            Some(_) => {}
        }
        let location = t
            .external_data
            .iter()
            .find(|(k, _)| k == "location")
            .map(|(_, v)| v.as_str());
        if t.data_location == 1 && location.is_none() {
            report.add(
                Verdict::Review,
                finding(
                    "onnx/external-without-location",
                    Severity::Medium,
                    format!("tensor {:?} is EXTERNAL but names no location", t.name),
                    t.offset,
                    Some(t.name.clone()),
                ),
            );
        }
        for (k, v) in &t.external_data {
            match k.as_str() {
                "location" => match location_escapes(v) {
                    Some(why) => report.add(
                        Verdict::Malicious,
                        finding(
                            "onnx/external-data-escape",
                            Severity::Critical,
                            format!(
                                "tensor {:?} external data location {why}: it reads a file outside the model directory",
                                t.name
                            ),
                            t.offset,
                            Some(v.clone()),
                        ),
                    ),
                    None => report.add(
                        Verdict::Safe,
                        finding(
                            "onnx/external-data",
                            Severity::Info,
                            format!("tensor {:?} stores its data in {v:?}", t.name),
                            t.offset,
                            Some(v.clone()),
                        ),
                    ),
                },
                "length" | "offset" => match v.trim().parse::<u64>() {
                    Ok(n) if n <= limits.max_tensor_bytes => {}
                    Ok(n) if n > IMPLAUSIBLE_EXTERNAL => report.add(
                        Verdict::Malicious,
                        finding(
                            "onnx/implausible-external-range",
                            Severity::High,
                            format!(
                                "tensor {:?} external {k} {n} is above 2^50 bytes: no real data file is a petabyte; built to drive a loader's seek/read past any file",
                                t.name
                            ),
                            t.offset,
                            Some(v.clone()),
                        ),
                    ),
                    Err(_) if is_overflowing_number(v) => report.add(
                        Verdict::Malicious,
                        finding(
                            "onnx/implausible-external-range",
                            Severity::High,
                            format!(
                                "tensor {:?} external {k} {v:?} does not even fit in 64 bits",
                                t.name
                            ),
                            t.offset,
                            Some(v.clone()),
                        ),
                    ),
                    Ok(n) => report.add(
                        Verdict::Review,
                        finding(
                            "onnx/external-data-size",
                            Severity::Medium,
                            format!(
                                "tensor {:?} external {k} {n} exceeds {}",
                                t.name, limits.max_tensor_bytes
                            ),
                            t.offset,
                            Some(v.clone()),
                        ),
                    ),
                    Err(_) => report.add(
                        Verdict::Review,
                        finding(
                            "onnx/external-data-size",
                            Severity::Medium,
                            format!("tensor {:?} external {k} {v:?} is not a number", t.name),
                            t.offset,
                            Some(v.clone()),
                        ),
                    ),
                },
                _ => {}
            }
        }
    }
    report
}

/// External-data `offset`/`length` above this (2^50 bytes, a petabyte) are implausible.
pub const IMPLAUSIBLE_EXTERNAL: u64 = 1 << 50;

/// A decimal number (optional sign) too large for `u64`.
fn is_overflowing_number(v: &str) -> bool {
    let t = v.trim();
    let digits = t.strip_prefix('+').unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && digits.len() >= 20
}

/// Decodes `src` (size checked before reading) and judges it.
#[must_use]
pub fn scan(src: &dyn Source, limits: &Limits) -> Report {
    match parse(src, limits) {
        Ok(model) => judge(&model, limits),
        Err(e) => {
            let mut report = Report::new();
            report.add(
                Verdict::Error,
                finding(
                    if e.is_limit() {
                        "onnx/limit"
                    } else {
                        "onnx/malformed"
                    },
                    Severity::Medium,
                    format!("could not decode the model: {e}"),
                    e.offset(),
                    None,
                ),
            );
            report
        }
    }
}

/// Fuzz entry point: parse and judge `data` with default limits.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let report = scan(&data.to_vec(), &Limits::default());
    // INVARIANT: a safe verdict carries only informational findings.
    assert!(
        report.verdict != Verdict::Safe
            || report.findings.iter().all(|f| f.severity == Severity::Info)
    );
    let _ = sniff(data, data.len() as u64);
}
