//! RFC 8785 JSON Canonicalization Scheme for the subset audit records use: objects, arrays,
//! strings, booleans, null, and integers of magnitude at most 2^53 (whose ECMAScript form is their
//! decimal form). Floats and larger integers are rejected rather than approximated.

use serde_json::Value;

/// The largest integer magnitude JCS prints exactly as decimal digits (2^53).
pub const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// Canonical JSON text of `v`.
///
/// # Errors
/// A float, or an integer beyond ±2^53.
pub fn canonicalize(v: &Value) -> Result<String, String> {
    let mut out = String::new();
    write_value(v, &mut out)?;
    Ok(out)
}

fn write_value(v: &Value, out: &mut String) -> Result<(), String> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u > MAX_SAFE_INTEGER {
                    return Err(format!("integer {u} beyond 2^53"));
                }
                out.push_str(&u.to_string());
            } else if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > MAX_SAFE_INTEGER {
                    return Err(format!("integer {i} beyond 2^53"));
                }
                out.push_str(&i.to_string());
            } else {
                return Err("floating-point numbers are not allowed".into());
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(x, out)?;
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            // RFC 8785 §3.2.3: sort by UTF-16 code units.
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                if let Some(x) = m.get(k) {
                    write_value(x, out)?;
                }
            }
            out.push('}');
        }
    }
    Ok(())
}

/// RFC 8785 §3.2.2.2 string serialisation (ECMAScript `JSON.stringify`).
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        canonicalize(&serde_json::from_str(text).unwrap()).unwrap()
    }

    #[test]
    fn rfc8785_sorting_example() {
        // RFC 8785 §3.2.3, with the numeric values replaced by integers.
        let input =
            r#"{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}"#;
        let want = "{\"\\r\":2,\"1\":4,\"\u{80}\":6,\"\u{f6}\":7,\"\u{20ac}\":1,\"\u{1f600}\":5,\"\u{fb33}\":3}";
        assert_eq!(canon(input), want);
    }

    #[test]
    fn rfc8785_string_escaping_example() {
        // RFC 8785 §3.2.2.2 example: "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"
        let input = r#"["\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"]"#;
        assert_eq!(
            canon(input),
            "[\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"]"
        );
    }

    #[test]
    fn rfc8785_structure_example_without_floats() {
        let input = r#"{ "literals": [null, true, false], "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "numbers": [333333333, 4, 2e0] }"#;
        // Floats are rejected, not approximated.
        assert!(canonicalize(&serde_json::from_str(input).unwrap()).is_err());
        let ints = r#"{ "literals": [null, true, false], "numbers": [333333333, -4, 0] }"#;
        assert_eq!(
            canon(ints),
            r#"{"literals":[null,true,false],"numbers":[333333333,-4,0]}"#
        );
    }

    #[test]
    fn big_integers_are_rejected() {
        assert!(canonicalize(&serde_json::json!(9007199254740993u64)).is_err());
        assert!(canonicalize(&serde_json::json!(9007199254740992u64)).is_ok());
        assert!(canonicalize(&serde_json::json!(-9007199254740993i64)).is_err());
    }

    #[test]
    fn control_characters_use_lowercase_hex_and_del_is_literal() {
        assert_eq!(
            canon(r#""\u001f\u007f\u2028""#),
            "\"\\u001f\u{7f}\u{2028}\""
        );
    }
}
