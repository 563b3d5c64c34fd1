//! Entry points shared by the fuzz targets (`fuzz/`) and the corpus-replay test, so both check the
//! same properties. Each panics only when an invariant is broken.

use crate::{Digest, NamespacePattern, Reference, RepoName, Role, Tag};

/// Parses `data` as a reference; an accepted reference must display as its input and name a repository
/// that is a safe relative path.
pub fn reference(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = s.parse::<Reference>() {
        assert_eq!(r.to_string(), s, "reference does not round-trip");
        check_repo(r.repo());
    }
}

/// Parses `data` as each of the name-like types; accepted values must round-trip.
pub fn names(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = s.parse::<RepoName>() {
        assert_eq!(n.as_str(), s);
        check_repo(&n);
    }
    if let Ok(t) = s.parse::<Tag>() {
        assert_eq!(t.as_str(), s);
    }
    if let Ok(d) = s.parse::<Digest>() {
        assert_eq!(d.to_string(), s);
    }
    if let Ok(p) = s.parse::<NamespacePattern>() {
        assert_eq!(p.as_str(), s);
        if let Ok(n) = s.parse::<RepoName>() {
            assert!(p.matches(&n), "a literal pattern must match its own name");
        }
    }
    if let Ok(r) = s.parse::<Role>() {
        assert_eq!(r.as_str(), s);
    }
}

fn check_repo(n: &RepoName) {
    assert!(n.as_str().len() <= crate::MAX_NAME_LEN);
    assert!(!n.as_str().starts_with('/'));
    for c in n.components() {
        assert!(!c.is_empty() && c != "." && c != "..", "unsafe component");
    }
}
