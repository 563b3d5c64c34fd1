//! Namespace patterns and roles: the vocabulary of access control.

use std::fmt;
use std::str::FromStr;

use crate::name::check_component;
use crate::{Error, RepoName};

/// A glob over repository names, used to scope tokens and policies.
///
/// Components are separated by `/`. Each is a literal name component, `*` (exactly one component), or,
/// as the last component only, `**` (one or more components). So `acme/*` matches `acme/x` but not
/// `acme/x/y`; `acme/**` matches both; neither matches `acme` itself; `**` alone matches every
/// repository.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NamespacePattern {
    text: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Segment<'a> {
    Literal(&'a str),
    One,
    Rest,
}

fn segment(s: &str) -> Segment<'_> {
    match s {
        "*" => Segment::One,
        "**" => Segment::Rest,
        lit => Segment::Literal(lit),
    }
}

impl NamespacePattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `repo` falls under this pattern.
    pub fn matches(&self, repo: &RepoName) -> bool {
        let mut name = repo.components();
        for seg in self.text.split('/').map(segment) {
            match seg {
                Segment::Rest => return name.next().is_some(),
                Segment::One => {
                    if name.next().is_none() {
                        return false;
                    }
                }
                Segment::Literal(lit) => {
                    if name.next() != Some(lit) {
                        return false;
                    }
                }
            }
        }
        name.next().is_none()
    }
}

impl FromStr for NamespacePattern {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(Error::Pattern { reason: "empty" });
        }
        if s.len() > crate::name::MAX_NAME_LEN {
            return Err(Error::Pattern {
                reason: "longer than 255 bytes",
            });
        }
        let mut segments = s.split('/').peekable();
        while let Some(raw) = segments.next() {
            match segment(raw) {
                Segment::Rest if segments.peek().is_some() => {
                    return Err(Error::Pattern {
                        reason: "`**` may only be the last component",
                    });
                }
                Segment::Rest | Segment::One => {}
                Segment::Literal(lit) => {
                    if lit.contains('*') {
                        return Err(Error::Pattern {
                            reason: "`*` must be a whole component (`acme/*`, not `acme/a*`)",
                        });
                    }
                    check_component(lit).map_err(|reason| Error::Pattern { reason })?;
                }
            }
        }
        Ok(Self { text: s.to_owned() })
    }
}

impl fmt::Display for NamespacePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for NamespacePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamespacePattern({:?})", self.text)
    }
}

/// What a principal wants to do to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Read manifests, blobs, tags and referrers.
    Pull,
    /// Upload blobs and manifests, and move tags.
    Push,
    /// Delete manifests, tags and blobs.
    Delete,
    /// Manage tokens and repositories through the admin API.
    Admin,
    /// Read the audit log through the admin API.
    AuditRead,
}

/// A role granted to a token within a namespace pattern. The registry roles are cumulative:
/// `reader` ⊂ `publisher` ⊂ `admin`. `auditor` stands apart: it may read the audit log and nothing
/// else (not even pull). The derived order is declaration order, not privilege: use [`Role::allows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Pull only.
    Reader,
    /// Pull, push and tag.
    Publisher,
    /// Everything, including delete, token management and the audit log.
    Admin,
    /// Read the audit log, nothing else.
    Auditor,
}

impl Role {
    /// Whether this role permits `action`. Written out per role (no ordering tricks) so a new role
    /// gets nothing by accident.
    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Reader => matches!(action, Action::Pull),
            Role::Publisher => matches!(action, Action::Pull | Action::Push),
            Role::Admin => true,
            Role::Auditor => matches!(action, Action::AuditRead),
        }
    }

    /// Every role, for tables and tests.
    pub const ALL: [Role; 4] = [Role::Reader, Role::Publisher, Role::Admin, Role::Auditor];

    /// The role's name as written in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Publisher => "publisher",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "reader" => Ok(Role::Reader),
            "publisher" => Ok(Role::Publisher),
            "admin" => Ok(Role::Admin),
            "auditor" => Ok(Role::Auditor),
            _ => Err(Error::Role),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! serde_via_str {
    ($ty:ident) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
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

serde_via_str!(NamespacePattern);
serde_via_str!(Role);

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, r: &str) -> bool {
        p.parse::<NamespacePattern>()
            .unwrap()
            .matches(&r.parse().unwrap())
    }

    #[test]
    fn globs() {
        assert!(m("acme/*", "acme/x"));
        assert!(!m("acme/*", "acme/x/y"));
        assert!(!m("acme/*", "acme"));
        assert!(m("acme/**", "acme/x"));
        assert!(m("acme/**", "acme/x/y/z"));
        assert!(!m("acme/**", "acme"));
        assert!(!m("acme/**", "acmex/y"));
        assert!(!m("acme/*", "other/x"));
        assert!(m("acme/classifier", "acme/classifier"));
        assert!(!m("acme/classifier", "acme/classifier/v2"));
        assert!(m("**", "a/b/c"));
        assert!(m("*", "a"));
        assert!(!m("*", "a/b"));
        assert!(m("*/models", "acme/models"));
        assert!(!m("*/models", "acme/x"));
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "",
            "acme/a*",
            "**/acme",
            "acme//x",
            "Acme/*",
            "acme/../x",
            "/acme",
        ] {
            assert!(bad.parse::<NamespacePattern>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn roles_are_cumulative() {
        use Action::*;
        let table = [
            (Role::Reader, [true, false, false, false, false]),
            (Role::Publisher, [true, true, false, false, false]),
            (Role::Admin, [true, true, true, true, true]),
            (Role::Auditor, [false, false, false, false, true]),
        ];
        assert_eq!(table.map(|(r, _)| r), Role::ALL);
        for (role, expect) in table {
            for (action, want) in [Pull, Push, Delete, Admin, AuditRead]
                .into_iter()
                .zip(expect)
            {
                assert_eq!(role.allows(action), want, "{role} {action:?}");
            }
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }
}
