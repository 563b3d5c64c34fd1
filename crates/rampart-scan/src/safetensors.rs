//! Rules for safetensors headers.
//!
//! Verdict policy (every problem the parser reports becomes one finding):
//!
//! - **malicious** — structures built to exploit loaders: a header length running past the end of
//!   the file (or overflowing), JSON nested deeper than the limit (stack exhaustion), duplicate
//!   tensor names (loaders keep the last one), shape products that overflow, `shape × dtype`
//!   differing from the data span, reversed, out-of-bounds or overlapping data ranges;
//! - **review** — inert irregularities: gaps between tensors, trailing bytes after the last
//!   tensor (unless they hold a malicious pickle: a polyglot, **malicious**), oversized
//!   `__metadata__`;
//! - **error** — the header could not be analysed: too short, not UTF-8, not JSON (or not a JSON
//!   object), over a size limit, entries missing required fields, unknown dtypes, non-string
//!   metadata, I/O failure.
//!
//! Trailing bytes after the data section are read (at most [`MAX_TRAILING_SCAN`]) and scanned as
//! a pickle, since `pickle.load` on a file handle positioned there would run them.
//!
//! Tensor data is never read.

use rampart_formats::safetensors::{Kind, Limits, parse};
use rampart_formats::source::Source;

use crate::{Finding, Report, Severity, Verdict};

/// True when `head` looks like a safetensors file: an 8-byte little-endian length followed by a
/// JSON object (`{"`, `{}`, ...; the length is *not* checked against `len`, so malformed lengths
/// still reach [`scan`]), or — to route malformed headers (`hlen = 0`, a JSON array, a non-JSON
/// header) to [`scan`] — a declared length that fits inside the file followed by printable ASCII
/// (up to 8 bytes of it, as many as the length covers). Random binary is not claimed: its first
/// 8 bytes almost never form a length that fits, and its next bytes are rarely all printable.
#[must_use]
pub fn sniff(head: &[u8], len: u64) -> bool {
    let Some(prefix) = head.get(..8).and_then(|p| <[u8; 8]>::try_from(p).ok()) else {
        return false;
    };
    let n = u64::from_le_bytes(prefix);
    if len > 9
        && n >= 2
        && head.get(8) == Some(&b'{')
        && matches!(head.get(9), Some(b'"' | b'}' | b' ' | b'\n'))
    {
        return true;
    }
    let printable = |b: &u8| matches!(b, 0x20..=0x7e | b'\t' | b'\n' | b'\r');
    let check = usize::try_from(n.clamp(1, 8)).unwrap_or(8);
    let start = head.get(8..).unwrap_or_default();
    len > 8
        && n <= len - 8
        && start.len() >= check.min(usize::try_from(len - 8).unwrap_or(usize::MAX))
        && !start.is_empty()
        && start.iter().take(check).all(printable)
}

fn classify(kind: Kind) -> (Verdict, Severity) {
    match kind {
        Kind::HeaderLenPastEnd
        | Kind::JsonTooDeep
        | Kind::DuplicateName
        | Kind::ShapeOverflow
        | Kind::SizeMismatch
        | Kind::ReversedOffsets
        | Kind::OutOfBounds
        | Kind::Overlap => (Verdict::Malicious, Severity::High),
        Kind::Gap | Kind::TrailingBytes | Kind::MetadataTooLarge => {
            (Verdict::Review, Severity::Medium)
        }
        _ => (Verdict::Error, Severity::Medium),
    }
}

fn rule(kind: Kind) -> &'static str {
    match kind {
        Kind::TooShort => "safetensors/too-short",
        Kind::HeaderLenPastEnd => "safetensors/header-length-past-end",
        Kind::HeaderTooLarge => "safetensors/header-too-large",
        Kind::NotUtf8 => "safetensors/header-not-utf8",
        Kind::InvalidJson => "safetensors/header-invalid-json",
        Kind::JsonTooDeep => "safetensors/header-too-deep",
        Kind::JsonTooLarge => "safetensors/header-too-many-values",
        Kind::DuplicateName => "safetensors/duplicate-name",
        Kind::BadEntry => "safetensors/bad-entry",
        Kind::UnknownDtype => "safetensors/unknown-dtype",
        Kind::ShapeOverflow => "safetensors/shape-overflow",
        Kind::SizeMismatch => "safetensors/size-mismatch",
        Kind::ReversedOffsets => "safetensors/reversed-offsets",
        Kind::OutOfBounds => "safetensors/out-of-bounds",
        Kind::Overlap => "safetensors/overlap",
        Kind::Gap => "safetensors/gap",
        Kind::TrailingBytes => "safetensors/trailing-bytes",
        Kind::BadMetadata => "safetensors/bad-metadata",
        Kind::MetadataTooLarge => "safetensors/metadata-too-large",
        Kind::TooManyTensors => "safetensors/too-many-tensors",
        _ => "safetensors/io",
    }
}

/// Most trailing bytes (after the last tensor) read and scanned as a pickle.
pub const MAX_TRAILING_SCAN: u64 = 16 << 20;

/// Scans the bytes after the data section as a pickle; findings only when it is malicious.
fn trailing_pickle(src: &dyn Source, at: u64) -> Option<Report> {
    let len = src.len().saturating_sub(at).min(MAX_TRAILING_SCAN);
    let bytes = src.read_vec(at, len, MAX_TRAILING_SCAN).ok()?;
    let judged = crate::pickle::scan(&bytes, &crate::limits::PickleLimits::default());
    if judged.verdict != Verdict::Malicious {
        return None;
    }
    let mut report = Report::new();
    report.add(
        Verdict::Malicious,
        Finding {
            rule: "safetensors/trailing-pickle".to_owned(),
            severity: Severity::Critical,
            message: format!(
                "the bytes after the last tensor (from offset {at}) are a malicious pickle: a safetensors/pickle polyglot"
            ),
            member: None,
            offset: Some(at),
            evidence: None,
        },
    );
    for mut f in judged.findings {
        f.offset = f.offset.map(|o| o.saturating_add(at));
        report.findings.push(f);
    }
    Some(report)
}

/// Reads the header of `src` (never the tensor data, only bytes after it) and judges it.
#[must_use]
pub fn scan(src: &dyn Source, limits: &Limits) -> Report {
    let parsed = parse(src, limits);
    let mut report = Report::new();
    for p in &parsed.problems {
        if p.kind == Kind::TrailingBytes
            && let Some(at) = p.offset
            && let Some(r) = trailing_pickle(src, at)
        {
            report.merge(r);
        }
    }
    for p in parsed.problems {
        let (verdict, severity) = classify(p.kind);
        report.add(
            verdict,
            Finding {
                rule: rule(p.kind).to_owned(),
                severity,
                message: p.detail,
                member: None,
                offset: p.offset,
                evidence: p.tensor,
            },
        );
    }
    report
}

/// Fuzz entry point: parse and judge `data` with default limits.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let report = scan(&data.to_vec(), &Limits::default());
    // INVARIANT: a safe verdict carries no finding.
    assert!(report.verdict != Verdict::Safe || report.findings.is_empty());
}
