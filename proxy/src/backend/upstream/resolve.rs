//! Name resolution for every upstream request: a name that NVCF hands back (a presigned
//! upload URL, a result location) must not lead the proxy into its own network, whatever it
//! is called. [`HandoffPolicy`](super::handoff::HandoffPolicy) judges the URL's text; this
//! judges where the name actually resolves, at connection time (no gap for a second,
//! different answer): loopback, private, link-local, unique-local and other non-public
//! addresses are dropped, and a name left with none is refused.
//!
//! The configured upstreams' own host names are exempt: they are the operator's choice, and
//! the emulator in tests (`http://localhost:…`) lives on loopback. A hand-off to that same
//! host is thus allowed too, which is what the emulator's presigned URLs and result locations
//! are. IP-literal URLs are not resolved at all; the hand-off policy refuses those (unless
//! they are a configured upstream's origin).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::cidr::canonical;

pub struct PublicOnly {
    /// Lower-case upstream host names, without a trailing dot.
    exempt: Arc<[String]>,
}

impl PublicOnly {
    pub fn new(exempt: impl IntoIterator<Item = String>) -> PublicOnly {
        PublicOnly {
            exempt: exempt.into_iter().map(|h| normalise(&h)).collect(),
        }
    }
}

/// Why a name was refused; found again in the error chain to answer a typed refusal.
#[derive(Debug)]
pub struct NonPublicName(pub String);

impl std::fmt::Display for NonPublicName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves only to loopback, private or otherwise non-public addresses",
            self.0
        )
    }
}

impl std::error::Error for NonPublicName {}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = normalise(name.as_str());
        let exempt = self.exempt.contains(&host);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| exempt || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(NonPublicName(host).into());
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

fn normalise(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10: carrier-grade NAT, someone's internal network.
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24 (protocol assignments) and 198.18.0.0/15 (benchmarking).
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an IPv4 address, which decides.
    if ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let o = ip.octets();
        return is_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if first == 0x2002 {
        let o = ip.octets();
        return is_public_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7 unique-local, fe80::/10 link-local, fec0::/10 old site-local.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // 2001:db8::/32 documentation.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // ::/96 IPv4-compatible (deprecated), never a real peer.
        || ip.segments()[..6] == [0; 6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_public() {
        for public in ["8.8.8.8", "52.216.1.1", "2600:1f18::1", "64:ff9b::808:808"] {
            assert!(is_public(ip(public)), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_unless_an_upstream() {
        let name = |s: &str| s.parse::<Name>().unwrap();
        let strict = PublicOnly::new([]);
        for local in ["localhost", "localhost."] {
            let refused = strict.resolve(name(local)).await.err().expect("refused");
            assert!(
                refused.downcast_ref::<NonPublicName>().is_some(),
                "{refused}"
            );
        }
        let upstream = PublicOnly::new(["localhost".to_owned()]);
        let found: Vec<SocketAddr> = upstream
            .resolve(name("localhost"))
            .await
            .expect("the upstream's own name resolves")
            .collect();
        assert!(found.iter().all(|a| a.ip().is_loopback()) && !found.is_empty());
    }

    #[tokio::test]
    async fn a_refused_name_is_a_typed_refusal_not_a_network_error() {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(PublicOnly::new([]))
            .build()
            .unwrap();
        let error = client.get("http://localhost:9/x").send().await.unwrap_err();
        let typed = super::super::failure::transport(error, "the result download", "localhost");
        assert_eq!(
            typed.code,
            florence2::ErrorCode::Upstream,
            "{}",
            typed.message
        );
        assert!(
            typed.message.contains("refusing to follow"),
            "{}",
            typed.message
        );
    }
}
