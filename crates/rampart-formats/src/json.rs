//! A strict, bounded JSON reader shared by the safetensors and Keras parsers.
//!
//! Unlike `serde_json::Value`, objects keep every key in document order, *including duplicates*
//! (a loader that keeps the last one and a scanner that keeps the first would disagree), and the
//! nesting depth and value count are capped by [`JsonLimits`] before anything is allocated for
//! the deeper level, so a 100 000-deep `[[[[…` is rejected at the configured depth without
//! recursion blow-up (recursion is bounded by `max_depth`).

use crate::Error;
use crate::cursor::Cursor;

/// Bounds for one JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// Deepest array/object nesting accepted.
    pub max_depth: usize,
    /// Most values (scalars, arrays, objects) in the document.
    pub max_values: u64,
}

/// A parsed JSON value. Numbers keep their source text.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, as written.
    Number(String),
    /// A string (escapes decoded).
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object: every member in document order, duplicates kept.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The number as a `u64`, when it is a plain non-negative integer that fits.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Number(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                n.parse().ok()
            }
            _ => None,
        }
    }

    /// The string content, when this is a string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The first member named `key`, when this is an object.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Parses exactly one JSON document; only whitespace may follow it.
pub fn parse(bytes: &[u8], limits: &JsonLimits) -> Result<Value, Error> {
    let (value, used) = parse_prefix(bytes, limits)?;
    let mut rest = Cursor::with_base(bytes, 0);
    rest.take(used, "JSON")?;
    skip_ws(&mut rest);
    if !rest.is_empty() {
        return Err(malformed(&rest, "trailing characters after the JSON value"));
    }
    Ok(value)
}

/// Parses one JSON value at the start of `bytes` (after whitespace) and returns it with the
/// number of bytes consumed; whatever follows is ignored.
pub fn parse_prefix(bytes: &[u8], limits: &JsonLimits) -> Result<(Value, usize), Error> {
    let mut p = Parser {
        cur: Cursor::new(bytes),
        limits: *limits,
        values: 0,
    };
    skip_ws(&mut p.cur);
    let v = p.value(0)?;
    let used = bytes.len().saturating_sub(p.cur.remaining());
    Ok((v, used))
}

struct Parser<'a> {
    cur: Cursor<'a>,
    limits: JsonLimits,
    values: u64,
}

fn malformed(cur: &Cursor<'_>, reason: &'static str) -> Error {
    Error::Malformed {
        offset: cur.offset(),
        what: "JSON",
        reason,
    }
}

fn skip_ws(cur: &mut Cursor<'_>) {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = cur.peek_u8() {
        let _ = cur.read_u8("JSON");
    }
}

impl Parser<'_> {
    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        self.values = self.values.saturating_add(1);
        if self.values > self.limits.max_values {
            return Err(Error::LimitExceeded {
                offset: self.cur.offset(),
                limit: "max_json_values",
                max: self.limits.max_values,
            });
        }
        match self.cur.peek_u8() {
            Some(b'{' | b'[') if depth >= self.limits.max_depth => Err(Error::LimitExceeded {
                offset: self.cur.offset(),
                limit: "max_json_depth",
                max: self.limits.max_depth as u64,
            }),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(malformed(&self.cur, "unexpected character")),
            None => Err(Error::Truncated {
                offset: self.cur.offset(),
                what: "JSON value",
            }),
        }
    }

    fn literal(&mut self, word: &'static [u8], v: Value) -> Result<Value, Error> {
        let got = self.cur.take(word.len(), "JSON literal")?;
        if got == word {
            Ok(v)
        } else {
            Err(malformed(&self.cur, "invalid literal"))
        }
    }

    fn number(&mut self) -> Result<Value, Error> {
        let mut s = String::new();
        while let Some(b @ (b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) = self.cur.peek_u8() {
            s.push(char::from(b));
            self.cur.read_u8("JSON number")?;
        }
        // Light validation: a digit must appear, and no leading '+'.
        if !s.bytes().any(|b| b.is_ascii_digit()) || s.starts_with('+') {
            return Err(malformed(&self.cur, "invalid number"));
        }
        Ok(Value::Number(s))
    }

    fn expect(&mut self, b: u8, reason: &'static str) -> Result<(), Error> {
        skip_ws(&mut self.cur);
        if self.cur.peek_u8() == Some(b) {
            self.cur.read_u8("JSON")?;
            Ok(())
        } else if self.cur.is_empty() {
            Err(Error::Truncated {
                offset: self.cur.offset(),
                what: "JSON",
            })
        } else {
            Err(malformed(&self.cur, reason))
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, Error> {
        self.expect(b'[', "expected '['")?;
        let mut items = Vec::new();
        skip_ws(&mut self.cur);
        if self.cur.peek_u8() == Some(b']') {
            self.cur.read_u8("JSON")?;
            return Ok(Value::Array(items));
        }
        loop {
            skip_ws(&mut self.cur);
            items.push(self.value(depth)?);
            skip_ws(&mut self.cur);
            match self.cur.read_u8("JSON array")? {
                b',' => {}
                b']' => return Ok(Value::Array(items)),
                _ => return Err(malformed(&self.cur, "expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, Error> {
        self.expect(b'{', "expected '{'")?;
        let mut members = Vec::new();
        skip_ws(&mut self.cur);
        if self.cur.peek_u8() == Some(b'}') {
            self.cur.read_u8("JSON")?;
            return Ok(Value::Object(members));
        }
        loop {
            skip_ws(&mut self.cur);
            if self.cur.peek_u8() != Some(b'"') {
                return Err(malformed(&self.cur, "expected a string key"));
            }
            let key = self.string()?;
            self.expect(b':', "expected ':'")?;
            skip_ws(&mut self.cur);
            let v = self.value(depth)?;
            members.push((key, v));
            skip_ws(&mut self.cur);
            match self.cur.read_u8("JSON object")? {
                b',' => {}
                b'}' => return Ok(Value::Object(members)),
                _ => return Err(malformed(&self.cur, "expected ',' or '}'")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits = self.cur.take(4, "JSON \\u escape")?;
        let text =
            std::str::from_utf8(digits).map_err(|_| malformed(&self.cur, "bad \\u escape"))?;
        u32::from_str_radix(text, 16).map_err(|_| malformed(&self.cur, "bad \\u escape"))
    }

    fn string(&mut self) -> Result<String, Error> {
        self.cur.read_u8("JSON string")?; // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let b = self.cur.read_u8("JSON string")?;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = self.cur.read_u8("JSON escape")?;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.cur.take(2, "JSON surrogate")? != b"\\u" {
                                    return Err(malformed(&self.cur, "lone surrogate"));
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(malformed(&self.cur, "lone surrogate"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code)
                                .ok_or_else(|| malformed(&self.cur, "invalid code point"))?
                        }
                        _ => return Err(malformed(&self.cur, "invalid escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(malformed(&self.cur, "control character in string")),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| malformed(&self.cur, "invalid UTF-8 in string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: JsonLimits = JsonLimits {
        max_depth: 8,
        max_values: 1000,
    };

    #[test]
    fn keeps_duplicates_and_rejects_depth() {
        let v = parse(br#"{"a":1,"a":"x\u00e9"}"#, &L).unwrap();
        let Value::Object(m) = v else { panic!() };
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(1).and_then(|p| p.1.as_str()), Some("xé"));
        let deep = "[".repeat(100_000);
        assert!(parse(deep.as_bytes(), &L).unwrap_err().is_limit());
        assert!(parse(b"{\"a\":1} x", &L).is_err());
        assert!(parse(b"[1,2,]", &L).is_err());
    }
}
