//! Repository names and tags under the OCI distribution grammar.
//!
//! ```text
//! name      = component *( "/" component )            ; at most 255 bytes
//! component = alnum *( separator alnum )
//! alnum     = 1*[a-z0-9]
//! separator = "." / "_" / "__" / 1*"-"
//! tag       = [a-zA-Z0-9_] 0*127[a-zA-Z0-9._-]
//! ```
//!
//! A component must start and end with `[a-z0-9]`, so an accepted name never has an empty, `.` or `..`
//! component, never starts with `/` and contains nothing outside `[a-z0-9._/-]`: it is safe to use as a
//! relative path.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The longest repository name accepted, in bytes (the limit docker and distribution apply).
pub const MAX_NAME_LEN: usize = 255;
/// The longest tag accepted, in bytes.
pub const MAX_TAG_LEN: usize = 128;

/// A repository name such as `acme/classifier`, valid under the OCI distribution grammar.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName(String);

impl RepoName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated components, each non-empty and never `.` or `..`.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

/// Checks one path component of a repository name.
pub(crate) fn check_component(c: &str) -> Result<(), &'static str> {
    let b = c.as_bytes();
    if b.is_empty() {
        return Err("empty path component");
    }
    let mut prev_sep: Option<u8> = None; // the separator run in progress, if any
    let mut sep_len = 0usize;
    for (i, &ch) in b.iter().enumerate() {
        match ch {
            b'a'..=b'z' | b'0'..=b'9' => {
                prev_sep = None;
                sep_len = 0;
            }
            b'.' | b'_' | b'-' => {
                if i == 0 {
                    return Err("a path component must start with a lowercase letter or digit");
                }
                match prev_sep {
                    None => {}
                    Some(b'-') if ch == b'-' => {}
                    Some(b'_') if ch == b'_' && sep_len == 1 => {}
                    Some(_) => {
                        return Err("separators must be `.`, `_`, `__` or a run of `-`");
                    }
                }
                prev_sep = Some(ch);
                sep_len += 1;
            }
            b'A'..=b'Z' => return Err("uppercase letters are not allowed"),
            _ => return Err("only [a-z0-9._-] and `/` are allowed"),
        }
    }
    if prev_sep.is_some() {
        return Err("a path component must end with a lowercase letter or digit");
    }
    Ok(())
}

impl FromStr for RepoName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(Error::RepoName { reason: "empty" });
        }
        if s.len() > MAX_NAME_LEN {
            return Err(Error::RepoName {
                reason: "longer than 255 bytes",
            });
        }
        for c in s.split('/') {
            check_component(c).map_err(|reason| Error::RepoName { reason })?;
        }
        Ok(Self(s.to_owned()))
    }
}

/// A tag such as `v1` or `sha256-<hex>`, valid under the OCI distribution grammar.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let mut bytes = s.bytes();
        match bytes.next() {
            None => return Err(Error::Tag { reason: "empty" }),
            Some(c) if c.is_ascii_alphanumeric() || c == b'_' => {}
            Some(_) => {
                return Err(Error::Tag {
                    reason: "must start with a letter, digit or `_`",
                });
            }
        }
        if s.len() > MAX_TAG_LEN {
            return Err(Error::Tag {
                reason: "longer than 128 bytes",
            });
        }
        if !bytes.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')) {
            return Err(Error::Tag {
                reason: "only [A-Za-z0-9._-] are allowed",
            });
        }
        Ok(Self(s.to_owned()))
    }
}

macro_rules! string_newtype_impls {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype_impls!(RepoName);
string_newtype_impls!(Tag);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_grammar() {
        for ok in [
            "a",
            "acme/classifier",
            "a.b_c__d-e---f/0",
            "library/ubuntu",
            "x/y/z/w",
        ] {
            assert!(ok.parse::<RepoName>().is_ok(), "{ok} rejected");
        }
        let long = ["a"; 128].join("/"); // 255 bytes
        assert_eq!(long.len(), 255);
        assert!(long.parse::<RepoName>().is_ok());
    }

    #[test]
    fn rejects_traversal_and_junk() {
        let too_long = ["a"; 129].join("/");
        for bad in [
            "",
            "/",
            "/abs",
            "a/",
            "a//b",
            ".",
            "..",
            "a/../b",
            "a/./b",
            "%2e%2e",
            "a/%2e%2e/b",
            "Acme",
            "a..b",
            "a___b",
            "a_.b",
            "-a",
            "a-",
            "a b",
            "a\\b",
            "a\0b",
            "é",
            too_long.as_str(),
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tags() {
        for ok in ["v1", "_", "latest", "sha256-abc", "V1.0_rc-2"] {
            assert!(ok.parse::<Tag>().is_ok(), "{ok} rejected");
        }
        let long = "a".repeat(129);
        for bad in ["", ".v1", "-x", "a:b", "a/b", "a@b", long.as_str()] {
            assert!(bad.parse::<Tag>().is_err(), "{bad:?} accepted");
        }
        assert!("a".repeat(128).parse::<Tag>().is_ok());
    }
}
