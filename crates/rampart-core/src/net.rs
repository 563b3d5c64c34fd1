//! Which client a request came from when it arrives through trusted reverse proxies.
//!
//! Behind a TLS-terminating proxy every connection comes from the proxy, so the rate limiter would
//! lump all unauthenticated clients together and the audit log would record the proxy as everyone's
//! source. A proxy appends the address it received the request from to `X-Forwarded-For`; the
//! header is only as trustworthy as whoever wrote each entry. [`TrustedProxies::client`] therefore
//! walks the entries from the right (the ones written by our own proxies) and stops at the first
//! address that is not a trusted proxy: that is the client. Entries further left were written by the
//! client itself and are never believed. A request from an untrusted peer keeps its peer address,
//! whatever its headers say.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::Error;

/// At most this many `X-Forwarded-For` entries are examined (from the right): a chain of proxies is
/// short, and the header is attacker-sized.
pub const MAX_FORWARDED_HOPS: usize = 16;

/// An IP network: an address and a prefix length, such as `10.0.0.0/8` or `fd00::/8`; a bare address
/// is a `/32` or `/128`. Host bits below the prefix must be zero (`10.0.0.1/8` is refused as a likely
/// typo). IPv4-mapped IPv6 addresses match as the IPv4 address they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The prefix length (0: every address of its family).
    #[must_use]
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside this network.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u128::from(u32::from(ip)), 32, self.prefix) == u128::from(u32::from(net))
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(ip), 128, self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// `value` (of `bits` bits) with everything below the first `prefix` bits cleared.
fn mask(value: u128, bits: u8, prefix: u8) -> u128 {
    let host = bits.saturating_sub(prefix);
    if host >= 128 {
        0
    } else {
        value >> host << host
    }
}

impl FromStr for Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason| Error::Network { reason };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| bad("expected an IP address, optionally with /PREFIX"))?;
        // A network written as an IPv4-mapped IPv6 address means the IPv4 network.
        let (addr, offset) = match (addr, addr.to_canonical()) {
            (IpAddr::V6(_), v4 @ IpAddr::V4(_)) => (v4, 96),
            _ => (addr, 0),
        };
        let bits: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("the prefix length must be a decimal number"));
                }
                let p: u8 = p.parse().map_err(|_| bad("prefix length too long"))?;
                let p = p
                    .checked_sub(offset)
                    .ok_or(bad("prefix too short for an IPv4-mapped address"))?;
                if p > bits {
                    return Err(bad("prefix longer than the address"));
                }
                p
            }
        };
        let value = match addr {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        if mask(value, bits, prefix) != value {
            return Err(bad(
                "address has bits set below the prefix (write the network address)",
            ));
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The reverse proxies whose `X-Forwarded-For` entries are believed. Empty (the default): none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client: the peer, or the address a trusted proxy received the request from.
    pub ip: IpAddr,
    /// The trusted proxy that connected to us, when `ip` came from `X-Forwarded-For`.
    pub proxy: Option<IpAddr>,
}

impl TrustedProxies {
    /// Trusts these networks.
    #[must_use]
    pub fn new(networks: Vec<Cidr>) -> Self {
        Self(networks)
    }

    /// The trusted networks.
    #[must_use]
    pub fn networks(&self) -> &[Cidr] {
        &self.0
    }

    /// Whether `ip` is a trusted proxy.
    #[must_use]
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client of a request from `peer` carrying these `X-Forwarded-For` header values (in the
    /// order received; each a comma-separated list). From the right, every entry written by a
    /// trusted proxy is skipped; the first address that is not a trusted proxy is the client. An
    /// entry that is not an IP address (optionally with a port) ends the walk at the last trusted
    /// hop (nothing left of it can be attributed), as do more than [`MAX_FORWARDED_HOPS`] entries.
    #[must_use]
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a [u8]>,
    ) -> ClientAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return ClientAddr {
                ip: peer,
                proxy: None,
            };
        }
        let mut current = peer;
        let entries = forwarded_for.rev().flat_map(|v| v.rsplit(|&b| b == b','));
        for entry in entries.take(MAX_FORWARDED_HOPS) {
            let Some(ip) = std::str::from_utf8(entry)
                .ok()
                .map(|e| e.trim_matches([' ', '\t']))
                .and_then(|e| {
                    // Some proxies append the port: `1.2.3.4:5678`, `[2001:db8::1]:443`.
                    e.parse::<IpAddr>()
                        .or_else(|_| e.parse::<std::net::SocketAddr>().map(|s| s.ip()))
                        .ok()
                })
            else {
                break;
            };
            current = ip.to_canonical();
            if !self.trusts(current) {
                break;
            }
        }
        ClientAddr {
            ip: current,
            proxy: (current != peer).then_some(peer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn client(t: &TrustedProxies, peer: &str, headers: &[&str]) -> ClientAddr {
        t.client(ip(peer), headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn networks_parse_strictly() {
        for ok in [
            "10.0.0.0/8",
            "127.0.0.1",
            "0.0.0.0/0",
            "fd00::/8",
            "::1",
            "::/0",
            "192.168.1.0/24",
        ] {
            let c: Cidr = ok.parse().unwrap();
            assert!(
                c.to_string().starts_with(ok.split('/').next().unwrap()),
                "{ok}"
            );
        }
        for bad in [
            "",
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/08a",
            "10.0.0.0/1234",
            "fd00::/129",
            "host.example",
            "10.0.0.0/8/8",
            " 10.0.0.0/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
        // An IPv4-mapped network is the IPv4 network.
        assert_eq!(
            "::ffff:10.0.0.0/104".parse::<Cidr>().unwrap(),
            "10.0.0.0/8".parse().unwrap()
        );
        assert!("::ffff:10.0.0.0/95".parse::<Cidr>().is_err());
    }

    #[test]
    fn membership() {
        let n: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains(ip("10.1.255.3")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(n.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped matches");
        assert!(!n.contains(ip("fd00::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.1")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fdff::1")) && !v6.contains(ip("fe80::1")));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let t = proxies(&["10.0.0.0/8"]);
        let c = client(&t, "203.0.113.5", &["198.51.100.1"]);
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("203.0.113.5"),
                proxy: None
            }
        );
        // No proxies configured: never believed.
        let c = client(&TrustedProxies::default(), "10.0.0.1", &["198.51.100.1"]);
        assert_eq!(c.ip, ip("10.0.0.1"));
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let t = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The client's own claims (left) are ignored; our proxies' entries (right) are skipped.
        let c = client(&t, "127.0.0.1", &["1.2.3.4, 198.51.100.7, 10.0.0.2"]);
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("198.51.100.7"),
                proxy: Some(ip("127.0.0.1"))
            }
        );
        // Several header lines are one list, in order.
        let c = client(&t, "10.9.9.9", &["1.2.3.4", "198.51.100.8,10.0.0.3"]);
        assert_eq!(c.ip, ip("198.51.100.8"));
        // A proxy without the header: the proxy itself.
        let c = client(&t, "10.0.0.1", &[]);
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("10.0.0.1"),
                proxy: None
            }
        );
        // Only trusted entries: the leftmost of them.
        let c = client(&t, "10.0.0.1", &["10.0.0.5"]);
        assert_eq!(c.ip, ip("10.0.0.5"));
        // With the port some proxies add.
        let c = client(&t, "10.0.0.1", &["198.51.100.1:443, 10.0.0.2:80"]);
        assert_eq!(c.ip, ip("198.51.100.1"));
        let c = client(&t, "10.0.0.1", &["[2001:db8::1]:443"]);
        assert_eq!(c.ip, ip("2001:db8::1"));
        // IPv6 and mapped addresses.
        let c = client(&t, "::ffff:127.0.0.1", &["2001:db8::1"]);
        assert_eq!(c.ip, ip("2001:db8::1"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        let t = proxies(&["10.0.0.0/8"]);
        for h in [
            "unknown",
            "198.51.100.1:x",
            "[2001:db8::1]",
            "",
            "1.2.3.4 5",
        ] {
            let c = client(&t, "10.0.0.1", &[&format!("203.0.113.9, {h}")]);
            assert_eq!(c.ip, ip("10.0.0.1"), "{h:?}");
        }
        let c = client(&t, "10.0.0.1", &["203.0.113.9, \u{ff}, 10.0.0.2"]);
        assert_eq!(c.ip, ip("10.0.0.2"));
        // A long chain of trusted entries is cut off after MAX_FORWARDED_HOPS.
        let mut chain = vec!["203.0.113.9"];
        chain.extend(std::iter::repeat_n("10.0.0.7", MAX_FORWARDED_HOPS));
        let c = client(&t, "10.0.0.1", &[&chain.join(",")]);
        assert_eq!(c.ip, ip("10.0.0.7"));
    }
}
