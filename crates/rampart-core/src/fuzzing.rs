//! Entry points shared by the fuzz targets (`fuzz/`) and the corpus-replay test, so both check the
//! same properties. Each panics only when an invariant is broken.

use crate::{Cidr, Digest, NamespacePattern, Reference, RepoName, Role, Tag, TrustedProxies};

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

/// Parses `data` as a network (an accepted one must round-trip through its display form and contain
/// its own address), and as `X-Forwarded-For` header lines (split on newlines) from a peer chosen by
/// the first byte: the client found is the peer or one of the header's addresses, and a proxy is
/// reported only for a trusted peer.
pub fn forwarded_for(data: &[u8]) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(c) = s.parse::<Cidr>()
    {
        assert_eq!(
            c.to_string().parse::<Cidr>().ok(),
            Some(c),
            "network does not round-trip"
        );
    }
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let peers = [
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7)),
        IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped()),
    ];
    let peer = peers[usize::from(first) % peers.len()];
    let trusted = TrustedProxies::new(
        ["10.0.0.0/8", "127.0.0.1", "fd00::/8"]
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect(),
    );
    assert_eq!(trusted.networks().len(), 3);
    let lines: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    let c = trusted.client(peer, lines.iter().copied());
    let canonical = peer.to_canonical();
    if c.ip == canonical {
        assert_eq!(c.proxy, None);
    } else {
        let text = String::from_utf8_lossy(rest);
        let listed = text
            .split(['\n', ','])
            .filter_map(|e| {
                let e = e.trim_matches([' ', '\t']);
                e.parse::<IpAddr>()
                    .or_else(|_| e.parse::<std::net::SocketAddr>().map(|s| s.ip()))
                    .ok()
            })
            .any(|ip| ip.to_canonical() == c.ip);
        assert!(
            listed,
            "client {} is neither the peer nor in the header",
            c.ip
        );
        assert_eq!(
            c.proxy,
            Some(canonical),
            "a forwarded client names its proxy"
        );
        assert!(
            trusted.trusts(canonical),
            "an untrusted peer's header was believed"
        );
    }
}
