//! Property tests: parse → display round trips, totality on arbitrary input, and the path-safety
//! invariant of repository names.

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Component, Path};

use proptest::prelude::*;
use rampart_core::{Digest, NamespacePattern, Reference, RepoName, Role, Tag};

const COMPONENT: &str = "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,3}";
const TAG: &str = "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}";
const REGISTRY: &str = "(localhost|[a-z0-9]{1,8}(\\.[a-z0-9]{1,8}){1,3}|\\[::1\\])(:[0-9]{1,4})?";
/// Characters that matter to the parsers, plus some that never should appear.
const NASTY: &str = "[a-zA-Z0-9./:@_*%\\-\\[\\]\\\\ \u{0}é]{0,300}";

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(COMPONENT, 1..6)
        .prop_map(|c| c.join("/"))
        .prop_filter("at most 255 bytes", |n| n.len() <= 255)
}

fn digest() -> impl Strategy<Value = String> {
    any::<[u8; 32]>().prop_map(|b| Digest::from_sha256_bytes(b).to_string())
}

fn assert_relative_path(name: &RepoName) {
    let s = name.as_str();
    let parts: Vec<&str> = s.split('/').collect();
    for p in &parts {
        assert!(!p.is_empty() && *p != "." && *p != "..", "{s:?}");
    }
    let path = Path::new(s);
    assert!(path.is_relative(), "{s:?}");
    let comps: Vec<Component<'_>> = path.components().collect();
    assert_eq!(comps.len(), parts.len(), "{s:?}");
    assert!(
        comps.iter().all(|c| matches!(c, Component::Normal(_))),
        "{s:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn repo_name_round_trip(n in name()) {
        let parsed: RepoName = n.parse().unwrap();
        prop_assert_eq!(parsed.to_string(), n);
        assert_relative_path(&parsed);
    }

    #[test]
    fn tag_round_trip(t in TAG) {
        let parsed: Tag = t.parse().unwrap();
        prop_assert_eq!(parsed.to_string(), t);
    }

    #[test]
    fn digest_round_trip(bytes in any::<[u8; 32]>()) {
        let d = Digest::from_sha256_bytes(bytes);
        prop_assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        prop_assert_eq!(Digest::from_hex(&d.hex()).unwrap(), d);
    }

    #[test]
    fn reference_round_trip(
        reg in prop::option::of(REGISTRY),
        n in name(),
        tag in prop::option::of(TAG),
        dig in prop::option::of(digest()),
    ) {
        // Without a registry, a first component with a `.` is read as a registry, as docker does.
        prop_assume!(reg.is_some() || !n.split('/').next().unwrap().contains('.') || !n.contains('/'));
        let mut s = String::new();
        if let Some(r) = &reg { s.push_str(r); s.push('/'); }
        s.push_str(&n);
        if let Some(t) = &tag { s.push(':'); s.push_str(t); }
        if let Some(d) = &dig { s.push('@'); s.push_str(d); }
        let parsed: Reference = s.parse().unwrap();
        prop_assert_eq!(parsed.to_string(), s.clone());
        prop_assert_eq!(parsed.tag().map(ToString::to_string), tag);
        prop_assert_eq!(parsed.digest().map(ToString::to_string), dig);
        if let Some(r) = reg {
            prop_assert_eq!(parsed.registry().map(ToString::to_string), Some(r));
            prop_assert_eq!(parsed.repo().to_string(), n);
        }
        assert_relative_path(parsed.repo());
    }

    #[test]
    fn pattern_round_trip(parts in prop::collection::vec(prop_oneof![Just("*".to_owned()), COMPONENT.prop_map(String::from)], 1..5), rest in any::<bool>()) {
        let mut p = parts.join("/");
        if rest { p.push_str("/**"); }
        prop_assume!(p.len() <= 255);
        let parsed: NamespacePattern = p.parse().unwrap();
        prop_assert_eq!(parsed.to_string(), p);
    }

    #[test]
    fn pattern_matches_itself_and_children(n in name(), child in COMPONENT) {
        let exact: NamespacePattern = n.parse().unwrap();
        let repo: RepoName = n.parse().unwrap();
        prop_assert!(exact.matches(&repo));
        let under: NamespacePattern = format!("{n}/**").parse().unwrap();
        prop_assert!(!under.matches(&repo));
        if let Ok(c) = format!("{n}/{child}").parse::<RepoName>() {
            prop_assert!(under.matches(&c));
            prop_assert!(!exact.matches(&c));
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>(), t in NASTY) {
        for input in [&s, &t] {
            if let Ok(n) = input.parse::<RepoName>() {
                prop_assert!(n.as_str().len() <= 255);
                assert_relative_path(&n);
            }
            let _ = input.parse::<Tag>();
            let _ = input.parse::<Digest>();
            let _ = input.parse::<Role>();
            if let Ok(p) = input.parse::<NamespacePattern>() {
                let _ = p.matches(&"a/b".parse().unwrap());
            }
            if let Ok(r) = input.parse::<Reference>() {
                prop_assert_eq!(&r.to_string(), input);
                assert_relative_path(r.repo());
            }
        }
    }
}
