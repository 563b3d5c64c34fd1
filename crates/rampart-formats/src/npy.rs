//! NumPy `.npy` headers (format versions 1.0, 2.0 and 3.0), parsed without `eval`.
//!
//! The header is a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`. [`parse`] reads it with a tiny
//! literal parser (strings, numbers, booleans, `None`, tuples, lists, dicts; bounded depth), finds
//! whether the dtype holds Python objects (`O`, which `numpy.load(allow_pickle=True)` unpickles
//! from the data area), and for plain dtypes checks `shape × itemsize` against the bytes present.

use crate::Error;
use crate::cursor::Cursor;
use crate::source::Source;

/// The `.npy` magic.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Limits for [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest header, in bytes. Default 64 KiB (numpy itself refuses more than 10 000 by default).
    pub max_header_len: u64,
    /// Deepest nesting of the header literal. Default 32.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_len: 64 << 10,
            max_depth: 32,
        }
    }
}

/// What the data area holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Fixed-size elements (numbers, strings, records without objects).
    Plain {
        /// `shape × itemsize`, when the dtype's size could be computed.
        expected_bytes: Option<u64>,
    },
    /// The dtype holds Python objects: the data area is a pickle.
    Pickle,
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version (major, minor).
    pub version: (u8, u8),
    /// The `descr` value, as text (for findings).
    pub descr: String,
    /// The shape.
    pub shape: Vec<u64>,
    /// Whether `fortran_order` is true.
    pub fortran_order: bool,
    /// Offset of the data area.
    pub data_offset: u64,
    /// What the data area holds.
    pub payload: Payload,
}

/// True when `head` starts with the `.npy` magic.
#[must_use]
pub fn sniff(head: &[u8]) -> bool {
    head.starts_with(MAGIC)
}

/// A Python literal value in the header.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Int(i128),
    Float,
    Bool(bool),
    None,
    Seq(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

struct LitParser<'a> {
    c: Cursor<'a>,
    max_depth: usize,
}

impl LitParser<'_> {
    fn err(&self, reason: &'static str) -> Error {
        Error::Malformed {
            offset: self.c.offset(),
            what: "npy header",
            reason,
        }
    }

    fn ws(&mut self) {
        while matches!(self.c.peek_u8(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            let _ = self.c.read_u8("ws");
        }
    }

    fn value(&mut self, depth: usize) -> Result<Lit, Error> {
        if depth > self.max_depth {
            return Err(Error::LimitExceeded {
                offset: self.c.offset(),
                limit: "max_depth",
                max: self.max_depth as u64,
            });
        }
        self.ws();
        match self.c.peek_u8() {
            Some(q @ (b'\'' | b'"')) => {
                self.c.read_u8("quote")?;
                let mut s = Vec::new();
                loop {
                    let b = self.c.read_u8("npy string")?;
                    if b == q {
                        break;
                    }
                    if b == b'\\' {
                        s.push(self.c.read_u8("npy string escape")?);
                    } else {
                        s.push(b);
                    }
                }
                Ok(Lit::Str(String::from_utf8_lossy(&s).into_owned()))
            }
            Some(open @ (b'(' | b'[')) => {
                self.c.read_u8("bracket")?;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.c.peek_u8() == Some(close) {
                        self.c.read_u8("bracket")?;
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.c.read_u8("npy sequence")? {
                        b',' => {}
                        b if b == close => break,
                        _ => return Err(self.err("expected `,` or a closing bracket")),
                    }
                }
                Ok(Lit::Seq(items))
            }
            Some(b'{') => {
                self.c.read_u8("brace")?;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.c.peek_u8() == Some(b'}') {
                        self.c.read_u8("brace")?;
                        break;
                    }
                    let k = self.value(depth + 1)?;
                    self.ws();
                    if self.c.read_u8("npy dict")? != b':' {
                        return Err(self.err("expected `:`"));
                    }
                    let v = self.value(depth + 1)?;
                    items.push((k, v));
                    self.ws();
                    match self.c.read_u8("npy dict")? {
                        b',' => {}
                        b'}' => break,
                        _ => return Err(self.err("expected `,` or `}`")),
                    }
                }
                Ok(Lit::Dict(items))
            }
            Some(b'0'..=b'9' | b'-' | b'+' | b'.') => {
                let mut text = Vec::new();
                while let Some(
                    b @ (b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'x' | b'L' | b'_'),
                ) = self.c.peek_u8()
                {
                    self.c.read_u8("number")?;
                    if text.len() < 64 {
                        text.push(b);
                    }
                }
                let t = String::from_utf8_lossy(&text);
                let t = t.trim_end_matches('L');
                match t.parse::<i128>() {
                    Ok(v) => Ok(Lit::Int(v)),
                    Err(_) => Ok(Lit::Float),
                }
            }
            Some(b'A'..=b'Z' | b'a'..=b'z') => {
                let mut word = Vec::new();
                while let Some(b @ (b'A'..=b'Z' | b'a'..=b'z')) = self.c.peek_u8() {
                    self.c.read_u8("word")?;
                    word.push(b);
                }
                match word.as_slice() {
                    b"True" => Ok(Lit::Bool(true)),
                    b"False" => Ok(Lit::Bool(false)),
                    b"None" => Ok(Lit::None),
                    _ => Err(self.err("unexpected name (only True, False, None are literals)")),
                }
            }
            _ => Err(self.err("unexpected character")),
        }
    }
}

/// The size in bytes of a simple dtype string such as `<f4`, `|S10`, `<U3`, `<M8[ns]`;
/// `Ok(None)` for an object dtype.
fn simple_itemsize(code: &str) -> Result<Option<u64>, ()> {
    let code = code.trim_start_matches(['<', '>', '|', '=']);
    let code = code.split('[').next().unwrap_or(code);
    let mut chars = code.chars();
    let kind = chars.next().ok_or(())?;
    let digits: String = chars.collect();
    if kind == 'O' {
        return Ok(None);
    }
    let n: u64 = if digits.is_empty() {
        match kind {
            'b' | '?' | 'B' => 1,
            'h' | 'H' | 'e' => 2,
            'i' | 'I' | 'f' | 'l' | 'L' => 4,
            'q' | 'Q' | 'd' | 'g' => 8,
            'F' => 8,
            'D' => 16,
            _ => return Err(()),
        }
    } else {
        digits.parse().map_err(|_| ())?
    };
    match kind {
        'U' => n.checked_mul(4).map(Some).ok_or(()),
        'b' | 'i' | 'u' | 'f' | 'c' | 'S' | 'a' | 'V' | 'm' | 'M' | '?' | 'B' => Ok(Some(n)),
        _ => Err(()),
    }
}

/// Item size of a descr literal: `Ok(None)` when it contains objects, `Err` when unknown.
fn itemsize(descr: &Lit, depth: usize) -> Result<Option<u64>, ()> {
    if depth > 32 {
        return Err(());
    }
    match descr {
        Lit::Str(s) => simple_itemsize(s),
        // Structured: [(name, dtype[, shape]), ...]
        Lit::Seq(fields) => {
            let mut total: u64 = 0;
            let mut unknown = false;
            for f in fields {
                let Lit::Seq(parts) = f else { return Err(()) };
                let mut it = parts.iter();
                let _name = it.next().ok_or(())?;
                let dt = it.next().ok_or(())?;
                let sub = match itemsize(dt, depth + 1) {
                    Ok(None) => return Ok(None),
                    Ok(Some(s)) => s,
                    Err(()) => {
                        unknown = true;
                        0
                    }
                };
                let count = match it.next() {
                    Some(Lit::Seq(dims)) => dims.iter().try_fold(1u64, |acc, d| match d {
                        Lit::Int(v) => u64::try_from(*v).ok().and_then(|v| acc.checked_mul(v)),
                        _ => None,
                    }),
                    Some(Lit::Int(v)) => u64::try_from(*v).ok(),
                    _ => Some(1),
                }
                .ok_or(())?;
                total = total
                    .checked_add(sub.checked_mul(count).ok_or(())?)
                    .ok_or(())?;
            }
            if unknown { Err(()) } else { Ok(Some(total)) }
        }
        _ => Err(()),
    }
}

/// True when any dtype string inside `descr` is an object dtype (`O`, `|O`, `O8`, ...).
fn has_object(descr: &Lit, depth: usize) -> bool {
    if depth > 32 {
        return true;
    }
    match descr {
        Lit::Str(s) => s.trim_start_matches(['<', '>', '|', '=']).starts_with('O'),
        Lit::Seq(fields) => fields.iter().any(|f| match f {
            Lit::Seq(parts) => parts.iter().skip(1).any(|p| has_object(p, depth + 1)),
            other => has_object(other, depth + 1),
        }),
        _ => false,
    }
}

fn lit_text(l: &Lit) -> String {
    match l {
        Lit::Str(s) => format!("'{s}'"),
        Lit::Int(i) => i.to_string(),
        Lit::Float => "float".to_owned(),
        Lit::Bool(b) => b.to_string(),
        Lit::None => "None".to_owned(),
        Lit::Seq(v) => format!(
            "[{}]",
            v.iter().map(lit_text).collect::<Vec<_>>().join(", ")
        ),
        Lit::Dict(_) => "{...}".to_owned(),
    }
}

/// Parses the header of the `.npy` file in `src`.
pub fn parse(src: &dyn Source, limits: &Limits) -> Result<Header, Error> {
    let mut fixed = [0u8; 12];
    let n = usize::try_from(src.len().min(12)).unwrap_or(12);
    let fixed = fixed.get_mut(..n).unwrap_or_default();
    src.read_exact_at(0, fixed)
        .map_err(|e| Error::io(0, "npy preamble", &e))?;
    let mut c = Cursor::new(fixed);
    if c.take(6, "npy magic")? != MAGIC {
        return Err(Error::Malformed {
            offset: 0,
            what: "npy magic",
            reason: "not an .npy file",
        });
    }
    let major = c.read_u8("npy major version")?;
    let minor = c.read_u8("npy minor version")?;
    let (header_len, start) = match major {
        1 => (u64::from(c.read_u16_le("npy header length")?), 10u64),
        2 | 3 => (u64::from(c.read_u32_le("npy header length")?), 12u64),
        _ => {
            return Err(Error::Unsupported {
                offset: 6,
                what: "npy version",
                detail: format!("{major}.{minor}"),
            });
        }
    };
    if header_len > limits.max_header_len {
        return Err(Error::LimitExceeded {
            offset: 8,
            limit: "max_header_len",
            max: limits.max_header_len,
        });
    }
    if start + header_len > src.len() {
        return Err(Error::Truncated {
            offset: src.len(),
            what: "npy header",
        });
    }
    let text = src
        .read_vec(start, header_len, limits.max_header_len)
        .map_err(|e| Error::io(start, "npy header", &e))?;
    let mut p = LitParser {
        c: Cursor::with_base(&text, start),
        max_depth: limits.max_depth,
    };
    let dict = p.value(0)?;
    let Lit::Dict(items) = dict else {
        return Err(Error::Malformed {
            offset: start,
            what: "npy header",
            reason: "not a dict",
        });
    };
    let get = |key: &str| {
        items
            .iter()
            .find(|(k, _)| matches!(k, Lit::Str(s) if s == key))
            .map(|(_, v)| v)
    };
    let missing = |reason| Error::Malformed {
        offset: start,
        what: "npy header",
        reason,
    };
    let descr = get("descr").ok_or(missing("no `descr` key"))?;
    let shape_lit = get("shape").ok_or(missing("no `shape` key"))?;
    let fortran_order = matches!(get("fortran_order"), Some(Lit::Bool(true)));
    let Lit::Seq(dims) = shape_lit else {
        return Err(missing("`shape` is not a tuple"));
    };
    let mut shape = Vec::new();
    for d in dims {
        match d {
            Lit::Int(v) => {
                shape.push(u64::try_from(*v).map_err(|_| missing("negative dimension"))?)
            }
            _ => return Err(missing("`shape` holds a non-integer")),
        }
    }
    let data_offset = start + header_len;
    let payload = if has_object(descr, 0) {
        Payload::Pickle
    } else {
        let count = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let expected_bytes = match (itemsize(descr, 0), count) {
            (Ok(Some(size)), Some(count)) => {
                Some(size.checked_mul(count).ok_or(Error::Malformed {
                    offset: start,
                    what: "npy header",
                    reason: "shape × itemsize overflows",
                })?)
            }
            (Ok(Some(_)), None) => {
                return Err(Error::Malformed {
                    offset: start,
                    what: "npy header",
                    reason: "shape product overflows",
                });
            }
            _ => None,
        };
        Payload::Plain { expected_bytes }
    };
    Ok(Header {
        version: (major, minor),
        descr: lit_text(descr),
        shape,
        fortran_order,
        data_offset,
        payload,
    })
}

/// Fuzz entry point: parses `data` as an `.npy` header and checks the data offset is in range.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    if let Ok(h) = parse(&data, &Limits::default()) {
        assert!(
            h.data_offset <= data.len() as u64,
            "data offset past the end"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[1, 0]);
        v.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
        v.extend_from_slice(header.as_bytes());
        v
    }

    #[test]
    fn plain_and_object_and_structured() {
        let h = parse(
            &npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(h.shape, vec![2, 3]);
        assert_eq!(
            h.payload,
            Payload::Plain {
                expected_bytes: Some(24)
            }
        );
        let h = parse(
            &npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(h.payload, Payload::Pickle);
        let h = parse(
            &npy("{'descr': [('O', '<i4'), ('b', [('c', '|O')])], 'fortran_order': False, 'shape': (1,)}"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(h.payload, Payload::Pickle);
        let h = parse(
            &npy("{'descr': [('O', '<i4'), ('x', '<f8', (2,))], 'fortran_order': False, 'shape': (3,)}"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            h.payload,
            Payload::Plain {
                expected_bytes: Some(60)
            }
        );
        assert!(parse(&npy("{'descr': __import__('os')}"), &Limits::default()).is_err());
        assert!(
            parse(&npy(&"[".repeat(100)), &Limits::default())
                .unwrap_err()
                .is_limit()
        );
    }
}
