//! References to an artifact: `[registry[:port]/]repo[:tag][@digest]`.

use std::fmt;
use std::str::FromStr;

use crate::{Digest, Error, RepoName, Tag};

/// A registry host with an optional port, such as `127.0.0.1:5050` or `[::1]:5050`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Registry(String);

impl Registry {
    /// The host and port as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Registry({:?})", self.0)
    }
}

fn reference_err(reason: &'static str) -> Error {
    Error::Reference { reason }
}

fn check_port(port: &str) -> Result<(), Error> {
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(reference_err("the registry port must be 1 to 5 digits"));
    }
    match port.parse::<u32>() {
        Ok(p) if p <= u32::from(u16::MAX) => Ok(()),
        _ => Err(reference_err("the registry port must be at most 65535")),
    }
}

fn check_domain_label(label: &str) -> Result<(), Error> {
    let b = label.as_bytes();
    let edge_ok = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if b.len() > 63
        || !edge_ok(b.first())
        || !edge_ok(b.last())
        || !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    {
        return Err(reference_err(
            "registry host labels are letters, digits and inner `-`, at most 63 bytes",
        ));
    }
    Ok(())
}

impl FromStr for Registry {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.is_empty() || s.len() > 255 {
            return Err(reference_err("the registry must be 1 to 255 bytes"));
        }
        let port = if let Some(rest) = s.strip_prefix('[') {
            // IPv6 literal: `[` hex, `:` and `.` `]` then an optional port.
            let (addr, after) = rest
                .split_once(']')
                .ok_or_else(|| reference_err("unterminated `[` in the registry address"))?;
            if addr.is_empty()
                || !addr
                    .bytes()
                    .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
            {
                return Err(reference_err(
                    "invalid IPv6 literal in the registry address",
                ));
            }
            match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| reference_err("unexpected text after `]`"))?,
                ),
            }
        } else {
            let (host, port) = match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            };
            for label in host.split('.') {
                check_domain_label(label)?;
            }
            port
        };
        if let Some(p) = port {
            check_port(p)?;
        }
        Ok(Self(s.to_owned()))
    }
}

/// A parsed artifact reference, split the way docker and oras split it.
///
/// The first `/`-separated part is a registry when it contains `.` or `:`, is `localhost`, or has
/// uppercase letters; otherwise the whole name is the repository. A tag follows the last `:` after the
/// last `/`; a digest follows `@`. Nothing is normalised (no `docker.io`, no `latest`), so parsing and
/// displaying gives back the input.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: Option<Registry>,
    repo: RepoName,
    tag: Option<Tag>,
    digest: Option<Digest>,
}

impl Reference {
    /// The registry, when the reference names one.
    pub fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }

    /// The repository.
    pub fn repo(&self) -> &RepoName {
        &self.repo
    }

    /// The tag, when given.
    pub fn tag(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    /// The digest, when given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
}

fn looks_like_registry(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.len() > 4096 {
            return Err(reference_err("longer than 4096 bytes"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if last_slash.is_none_or(|sl| colon > sl) => {
                let (name, tag) = rest.split_at(colon);
                (name, Some(tag.get(1..).unwrap_or_default().parse::<Tag>()?))
            }
            _ => (rest, None),
        };
        let (registry, repo) = match name.split_once('/') {
            Some((first, repo)) if looks_like_registry(first) => (Some(first.parse()?), repo),
            _ => (None, name),
        };
        let repo = repo.parse::<RepoName>()?;
        Ok(Self {
            registry,
            repo,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.registry {
            write!(f, "{r}/")?;
        }
        f.write_str(self.repo.as_str())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn parts(s: &str) -> (Option<String>, String, Option<String>, Option<String>) {
        let r: Reference = s.parse().unwrap();
        (
            r.registry().map(ToString::to_string),
            r.repo().to_string(),
            r.tag().map(ToString::to_string),
            r.digest().map(ToString::to_string),
        )
    }

    #[test]
    fn splits_like_docker() {
        assert_eq!(
            parts("127.0.0.1:5050/acme/classifier:v1"),
            (
                Some("127.0.0.1:5050".into()),
                "acme/classifier".into(),
                Some("v1".into()),
                None
            )
        );
        assert_eq!(
            parts("acme/classifier"),
            (None, "acme/classifier".into(), None, None)
        );
        assert_eq!(
            parts("localhost/a"),
            (Some("localhost".into()), "a".into(), None, None)
        );
        assert_eq!(
            parts("localhost:5000"),
            (None, "localhost".into(), Some("5000".into()), None)
        );
        assert_eq!(
            parts(&format!("[::1]:5050/a/b:t@{D}")),
            (
                Some("[::1]:5050".into()),
                "a/b".into(),
                Some("t".into()),
                Some(D.into())
            )
        );
        assert_eq!(
            parts(&format!("a@{D}")),
            (None, "a".into(), None, Some(D.into()))
        );
        assert_eq!(
            parts("Registry/a"),
            (Some("Registry".into()), "a".into(), None, None)
        );
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            ":tag",
            "a:",
            "a@",
            "a@sha256:zz",
            "reg.io/",
            "reg.io:99999/a",
            "reg.io:/a",
            "-reg.io/a",
            "[::1/a",
            "a/B",
            "a:b:c",
            "reg.io/a/../b",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} accepted");
        }
    }
}
