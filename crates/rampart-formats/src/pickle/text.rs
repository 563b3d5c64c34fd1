//! Decoding of the text operands of protocol-0 opcodes.

/// An integer operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Int {
    /// Fits in an `i64`.
    Small(i64),
    /// Valid but wider than 64 bits.
    Big,
}

/// Parses an integer line: sign, digits with single underscores between them, surrounding
/// whitespace, and — when `prefixes` is set (`INT`/`LONG`, which CPython reads in base 0) — an
/// optional `0x`/`0o`/`0b` prefix. `GET`/`PUT` keys are base 10. Leading zeros are accepted (the
/// C unpickler's `strtol` accepts them; the exact value of such an `INT` does not matter here).
pub(crate) fn parse_int(line: &[u8], prefixes: bool) -> Option<Int> {
    let s = std::str::from_utf8(line).ok()?.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = s.get(..2).filter(|_| prefixes).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, s.get(2..)?),
        Some("0o") => (8, s.get(2..)?),
        Some("0b") => (2, s.get(2..)?),
        _ => (10, s),
    };
    let digits = digits
        .strip_prefix('_')
        .filter(|_| radix != 10)
        .unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut value: Option<i128> = Some(0);
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = i128::from(c.to_digit(radix)?);
        value = value
            .and_then(|v| v.checked_mul(i128::from(radix)))
            .and_then(|v| v.checked_add(d));
    }
    let value = match value {
        Some(v) if neg => v.checked_neg(),
        other => other,
    };
    Some(match value.and_then(|v| i64::try_from(v).ok()) {
        Some(v) => Int::Small(v),
        None => Int::Big,
    })
}

/// Parses a `FLOAT` line.
pub(crate) fn parse_float(line: &[u8]) -> Option<f64> {
    std::str::from_utf8(line).ok()?.trim().parse().ok()
}

/// Decodes a `STRING` line: a quoted Python bytes literal body with escapes. Returns the bytes.
pub(crate) fn decode_quoted(line: &[u8]) -> Option<Vec<u8>> {
    let (&first, rest) = line.split_first()?;
    let (&last, body) = rest.split_last()?;
    if first != last || (first != b'\'' && first != b'"') {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut it = body.iter().copied().peekable();
    while let Some(b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(e) = it.next() else {
            return None; // trailing backslash
        };
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'x' => {
                let hi = hex(it.next()?)?;
                let lo = hex(it.next()?)?;
                out.push(hi * 16 + lo);
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match it.peek() {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            it.next();
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Decodes a `UNICODE` line (Python's `raw-unicode-escape`).
pub(crate) fn decode_raw_unicode_escape(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = line.iter().copied().peekable();
    while let Some(b) = i.next() {
        if b == b'\\' {
            let width = match i.peek() {
                Some(b'u') => 4,
                Some(b'U') => 8,
                _ => 0,
            };
            if width > 0 {
                i.next();
                let mut v: u32 = 0;
                for _ in 0..width {
                    v = v * 16 + u32::from(hex(i.next()?)?);
                }
                out.push(char::from_u32(v)?);
                continue;
            }
        }
        out.push(char::from(b));
    }
    Some(out)
}

/// Decodes bytes as Latin-1 (each byte one code point), as CPython does for `encoding='latin1'`.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        assert_eq!(parse_int(b"42", true), Some(Int::Small(42)));
        assert_eq!(parse_int(b" -7 ", true), Some(Int::Small(-7)));
        assert_eq!(parse_int(b"0x1f", true), Some(Int::Small(31)));
        assert_eq!(parse_int(b"1_000", true), Some(Int::Small(1000)));
        assert_eq!(
            parse_int(b"123456789012345678901234567890", true),
            Some(Int::Big)
        );
        assert_eq!(parse_int(b"0", true), Some(Int::Small(0)));
        assert_eq!(parse_int(b"abc", true), None);
        assert_eq!(parse_int(b"", true), None);
        assert_eq!(parse_int(b"012", false), Some(Int::Small(12)));
        assert_eq!(parse_int(b"0x1f", false), None);
        assert_eq!(parse_int(b"1__0", true), None);
    }

    #[test]
    fn floats() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"x"), None);
    }

    #[test]
    fn quoted() {
        assert_eq!(decode_quoted(b"'os'").unwrap(), b"os");
        assert_eq!(
            decode_quoted(b"\"a\\x41\\n\\101\\\\\"").unwrap(),
            b"aA\nA\\"
        );
        assert!(decode_quoted(b"'os").is_none());
        assert!(decode_quoted(b"'").is_none());
        assert!(decode_quoted(b"'a\\'").is_none());
    }

    #[test]
    fn raw_unicode() {
        assert_eq!(
            decode_raw_unicode_escape(b"ab\\u00e9\\U0001F600").unwrap(),
            "ab\u{e9}\u{1F600}"
        );
        assert_eq!(decode_raw_unicode_escape(b"a\\b").unwrap(), "a\\b");
        assert!(decode_raw_unicode_escape(b"\\u12").is_none());
        assert_eq!(latin1(&[0x61, 0xe9]), "a\u{e9}");
    }
}
