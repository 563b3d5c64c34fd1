//! Rules for GGUF headers and chat templates.
//!
//! Verdict policy:
//!
//! - **malicious** — counts or string lengths that cannot fit in the bytes present (the
//!   CVE-2026-7482 class), arrays nested past the limit, a bad `general.alignment`, more than 4
//!   dimensions, overflowing dimensions, a first dimension not a multiple of the block size,
//!   misaligned, out-of-bounds or overlapping tensor data, a tensor type outside ggml's type table
//!   (ggml indexes its type-traits table with it: an out-of-bounds read); and any `*chat_template*` string whose
//!   Jinja code reaches for Python internals (see [`template_evidence`]; the CVE-2024-34359
//!   class);
//! - **review** — duplicate keys or tensor names;
//! - **error** — not GGUF, unsupported version, a limit hit, a truncated fixed-size field, an
//!   unknown metadata value type (not used as a table index).
//!
//! Tensor data is never read.

use rampart_formats::gguf::{Kind, Limits, Value, parse};
use rampart_formats::source::Source;

use crate::{Finding, Report, Severity, Verdict};

/// True when `head` starts with the GGUF magic.
#[must_use]
pub fn sniff(head: &[u8], len: u64) -> bool {
    len >= 8 && head.starts_with(b"GGUF")
}

fn classify(kind: Kind) -> (Verdict, Severity, &'static str) {
    match kind {
        Kind::CountPastEnd => (Verdict::Malicious, Severity::High, "gguf/count-past-end"),
        Kind::LengthPastEnd => (Verdict::Malicious, Severity::High, "gguf/length-past-end"),
        Kind::ArrayTooDeep => (Verdict::Malicious, Severity::High, "gguf/array-too-deep"),
        Kind::BadAlignment => (Verdict::Malicious, Severity::High, "gguf/bad-alignment"),
        Kind::TooManyDims => (Verdict::Malicious, Severity::High, "gguf/too-many-dims"),
        Kind::DimsOverflow => (Verdict::Malicious, Severity::High, "gguf/dims-overflow"),
        Kind::BadBlockMultiple => (
            Verdict::Malicious,
            Severity::High,
            "gguf/bad-block-multiple",
        ),
        Kind::Misaligned => (Verdict::Malicious, Severity::High, "gguf/misaligned"),
        Kind::TensorOutOfBounds => (Verdict::Malicious, Severity::High, "gguf/out-of-bounds"),
        Kind::TensorOverlap => (Verdict::Malicious, Severity::High, "gguf/overlap"),
        Kind::DuplicateKey => (Verdict::Review, Severity::Medium, "gguf/duplicate-key"),
        Kind::DuplicateTensor => (Verdict::Review, Severity::Medium, "gguf/duplicate-tensor"),
        Kind::BadMagic => (Verdict::Error, Severity::Medium, "gguf/bad-magic"),
        Kind::UnsupportedVersion => (Verdict::Error, Severity::Medium, "gguf/unsupported-version"),
        Kind::LimitExceeded => (Verdict::Error, Severity::Medium, "gguf/limit"),
        Kind::Truncated => (Verdict::Error, Severity::Medium, "gguf/truncated"),
        Kind::BadValueType => (Verdict::Error, Severity::Medium, "gguf/bad-value-type"),
        // ggml indexes its type-traits table with the tensor type: out of range is out of bounds.
        Kind::UnknownTensorType => (
            Verdict::Malicious,
            Severity::High,
            "gguf/unknown-tensor-type",
        ),
        _ => (Verdict::Error, Severity::Medium, "gguf/io"),
    }
}

/// Identifiers that, used as code in a chat template, reach Python internals, the OS, or the
/// gadgets used to get there (Jinja globals like `lipsum`/`cycler`/`joiner`, Flask globals, the
/// `attr` filter that fetches attributes by computed name, `self._TemplateReference__context`).
const CODE_WORDS: &[&str] = &[
    "os",
    "sys",
    "subprocess",
    "popen",
    "eval",
    "exec",
    "getattr",
    "setattr",
    "globals",
    "builtins",
    "lipsum",
    "cycler",
    "joiner",
    "url_for",
    "get_flashed_messages",
    "request",
    "self",
    "attr",
    "mro",
    "subclasses",
    "import",
];

/// Substrings that, inside the string literals of one Jinja tag (concatenated, lower-cased, and
/// also with underscores removed or reversed), name Python internals.
const STRING_WORDS: &[&str] = &[
    "__globals__",
    "__builtins__",
    "__subclasses__",
    "__class__",
    "__mro__",
    "__base__",
    "__bases__",
    "__init__",
    "__import__",
    "__dict__",
    "__getattribute__",
    "__reduce",
    "__code__",
    "_templatereference__context",
    "popen",
    "subprocess",
];

/// Underscore-free spellings caught even when the underscores are built separately
/// (`'_'*2 ~ 'globals'`).
const BARE_WORDS: &[&str] = &[
    "globals",
    "builtins",
    "subclasses",
    "getattribute",
    "templatereference",
];

/// Splits a template into the bodies of its Jinja code tags (`{{ … }}`, `{% … %}`); comments
/// (`{# … #}`) are skipped. Inside a tag, quoted strings are honoured, so `'}}'` does not end it.
fn tags(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '{' {
            continue;
        }
        let close = match chars.peek() {
            Some('{') => '}',
            Some('%') => '%',
            Some('#') => '#',
            _ => continue,
        };
        chars.next();
        let mut body = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match quote {
                Some(q) => {
                    if c == '\\' {
                        body.push(c);
                        if let Some(n) = chars.next() {
                            body.push(n);
                        }
                        continue;
                    }
                    if c == q {
                        quote = None;
                    }
                }
                None if close != '#' && (c == '\'' || c == '"') => quote = Some(c),
                None if c == close && chars.peek() == Some(&'}') => {
                    chars.next();
                    break;
                }
                None => {}
            }
            body.push(c);
        }
        if close != '#' {
            out.push(body);
        }
    }
    out
}

/// Decodes a Python/Jinja string literal body's escapes (`\xNN`, `\uNNNN`, `\UNNNNNNNN`, octal).
fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, quote: char) -> String {
    let mut s = String::new();
    while let Some(c) = chars.next() {
        if c == quote {
            break;
        }
        if c != '\\' {
            s.push(c);
            continue;
        }
        let Some(e) = chars.next() else { break };
        let hex = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| {
            let digits: String = (0..n)
                .filter_map(|_| chars.next_if(char::is_ascii_hexdigit))
                .collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .and_then(char::from_u32)
        };
        let decoded = match e {
            'x' => hex(chars, 2),
            'u' => hex(chars, 4),
            'U' => hex(chars, 8),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    if let Some(d) = chars.next_if(|c| ('0'..='7').contains(c)) {
                        v = v * 8 + d.to_digit(8).unwrap_or(0);
                    }
                }
                char::from_u32(v)
            }
            'n' => Some('\n'),
            't' => Some('\t'),
            other => Some(other),
        };
        if let Some(d) = decoded {
            s.push(d);
        }
    }
    s
}

/// Evidence that a Jinja chat template reaches for Python internals (server-side template
/// injection); empty for ordinary templates (loops, `message['role']`, `raise_exception`,
/// `namespace(...)`).
///
/// Each `{{ }}` / `{% %}` tag is split into code and string literals (escapes decoded). The code
/// is checked for [`CODE_WORDS`] identifiers and any identifier containing `__`; the string
/// literals of the tag, concatenated (defeating `'__glo' + 'bals__'`, `~`, `join`), are checked
/// for dunder names, also reversed (`|reverse`) and with underscores removed; `%c` formatting
/// (building characters by number) is flagged too.
#[must_use]
pub fn template_evidence(template: &str) -> Vec<String> {
    let mut evidence = Vec::new();
    for tag in tags(template) {
        let mut code = String::new();
        let mut strings = String::new();
        let mut chars = tag.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' || c == '"' {
                strings.push_str(&unescape(&mut chars, c));
                code.push(' ');
            } else {
                code.push(c);
            }
        }
        let code = code.to_lowercase();
        for word in code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.contains("__") || CODE_WORDS.contains(&word) {
                evidence.push(format!("code `{word}`"));
            }
        }
        let strings = strings.to_lowercase();
        let reversed: String = strings.chars().rev().collect();
        let bare: String = strings.chars().filter(|c| *c != '_').collect();
        for w in STRING_WORDS {
            if strings.contains(w) || reversed.contains(w) {
                evidence.push(format!("string `{w}`"));
            }
        }
        for w in BARE_WORDS {
            if bare.contains(w) || bare.chars().rev().collect::<String>().contains(w) {
                evidence.push(format!("string `{w}`"));
            }
        }
        if strings.contains("%c") && code.contains("format") {
            evidence.push("`%c` formatting builds characters by number".to_owned());
        }
    }
    evidence.sort();
    evidence.dedup();
    evidence
}

/// Reads the GGUF header of `src` (never the tensor data) and judges it.
#[must_use]
pub fn scan(src: &dyn Source, limits: &Limits) -> Report {
    let parsed = parse(src, limits);
    let mut report = Report::new();
    for p in parsed.problems {
        let (verdict, severity, rule) = classify(p.kind);
        report.add(
            verdict,
            Finding {
                rule: rule.to_owned(),
                severity,
                message: p.detail,
                member: None,
                offset: p.offset,
                evidence: None,
            },
        );
    }
    for kv in &parsed.kvs {
        if !kv.key.to_lowercase().contains("chat_template") {
            continue;
        }
        let Value::String(text) = &kv.value else {
            continue;
        };
        let evidence = template_evidence(text);
        if !evidence.is_empty() {
            report.add(
                Verdict::Malicious,
                Finding {
                    rule: "gguf/chat-template-ssti".to_owned(),
                    severity: Severity::Critical,
                    message: format!(
                        "chat template {:?} reaches for Python internals (Jinja SSTI)",
                        kv.key
                    ),
                    member: None,
                    offset: Some(kv.offset),
                    evidence: Some(evidence.join(", ")),
                },
            );
        }
    }
    report
}

/// Fuzz entry point: parse and judge `data` with default limits.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let report = scan(&data.to_vec(), &Limits::default());
    // INVARIANT: a safe verdict carries no finding.
    assert!(report.verdict != Verdict::Safe || report.findings.is_empty());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = template_evidence(text);
    }
}
