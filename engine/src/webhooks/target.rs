//! Where a webhook may be sent (SSRF protection).
//!
//! A webhook or callback URL is chosen by a tenant, so without a check it could make the gateway
//! call its own admin port, a cloud metadata service (169.254.169.254) or a host on the private
//! network. A target must be `http` or `https`, and every address its host stands for must be
//! public: loopback, private (RFC 1918, `fc00::/7`), link-local, shared CGNAT (`100.64/10`),
//! unspecified, multicast, broadcast and reserved ranges are refused, also when written as an
//! IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible or NAT64 (`64:ff9b::/96`) IPv6 address.
//! `allow_private` (config `[webhooks] allow_private_targets`) lifts the address rules, for tests
//! and closed networks; the scheme rule always holds.
//!
//! [`check_target`] looks at the URL alone (scheme, and the host when it is an IP literal);
//! [`check_target_resolved`] also resolves a host name. The dispatcher checks again at delivery
//! time, and its HTTP client resolves names through [`GuardedResolver`], which refuses the
//! connection if any address is forbidden: a name that resolved to a public address when the
//! webhook was saved and to a private one later (DNS rebinding) is refused then.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address may not be a webhook target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, `fc00::/7`.
    Private,
    /// `169.254/16` (cloud metadata lives here), `fe80::/10`.
    LinkLocal,
    /// `0.0.0.0`, `::`, and the rest of `0/8`.
    Unspecified,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Shared address space of carrier-grade NAT, `100.64/10`.
    SharedCgnat,
    /// IETF protocol assignments, benchmarking, documentation and future-use ranges
    /// (`192.0.0/24`, `198.18/15`, `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `240/4`,
    /// `2001:db8::/32`).
    Reserved,
}

impl AddressClass {
    /// A short name for logs and errors.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::Unspecified => "unspecified",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::SharedCgnat => "shared (CGNAT)",
            Self::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a URL may not be a webhook target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Not a URL.
    #[error("not a URL: {0}")]
    InvalidUrl(String),
    /// Not `http` or `https`.
    #[error("scheme {0:?} is not allowed: use http or https")]
    Scheme(String),
    /// The URL has no host.
    #[error("the URL has no host")]
    NoHost,
    /// The host is, or resolves to, a forbidden address.
    #[error("{addr} is a {class} address, which webhooks may not target")]
    Forbidden {
        /// The address.
        addr: IpAddr,
        /// Why it is forbidden.
        class: AddressClass,
    },
    /// The host name could not be resolved.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        reason: String,
    },
    /// The host name resolved to no address.
    #[error("{0} resolves to no address")]
    NoAddress(String),
}

/// The class of `ip` when webhooks may not target it, `None` for a public address.
pub fn forbidden_class(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, _] = ip.octets();
    let class = if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if a == 0 {
        // 0.0.0.0 itself, and "this network" 0/8, which some stacks route to the local host.
        AddressClass::Unspecified
    } else if ip.is_broadcast() {
        AddressClass::Broadcast
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if a == 100 && (b & 0xc0) == 64 {
        AddressClass::SharedCgnat
    } else if (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b & 0xfe) == 18)
        || ip.is_documentation()
        || a >= 240
    {
        AddressClass::Reserved
    } else {
        return None;
    };
    Some(class)
}

fn v6_class(ip: Ipv6Addr) -> Option<AddressClass> {
    // An IPv4 address written in IPv6 reaches the same host: judge the IPv4 address.
    if let Some(v4) = embedded_v4(ip) {
        return v4_class(v4);
    }
    let first = ip.segments()[0];
    let class = if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if (first & 0xfe00) == 0xfc00 {
        AddressClass::Private
    } else if (first & 0xffc0) == 0xfe80 {
        AddressClass::LinkLocal
    } else if (first & 0xff00) == 0xff00 {
        AddressClass::Multicast
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        AddressClass::Reserved
    } else {
        return None;
    };
    Some(class)
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`,
/// deprecated but still routed by some stacks) or NAT64 well-known-prefix (`64:ff9b::a.b.c.d`)
/// IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let low = Ipv4Addr::new(
        (s[6] >> 8) as u8,
        (s[6] & 0xff) as u8,
        (s[7] >> 8) as u8,
        (s[7] & 0xff) as u8,
    );
    let compatible = s[..6].iter().all(|&x| x == 0) && !ip.is_loopback() && !ip.is_unspecified();
    let nat64 = s[0] == 0x0064 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0);
    (compatible || nat64).then_some(low)
}

/// Refuses `addr` unless it is public or `allow_private` is set.
///
/// # Errors
/// [`TargetError::Forbidden`].
pub fn check_addr(addr: IpAddr, allow_private: bool) -> Result<(), TargetError> {
    match forbidden_class(addr) {
        Some(class) if !allow_private => Err(TargetError::Forbidden { addr, class }),
        _ => Ok(()),
    }
}

/// What can be decided from the URL alone: an `http` or `https` scheme, a host, and, when the
/// host is an IP literal, a public address (unless `allow_private`). A host name passes here;
/// [`check_target_resolved`] resolves it.
///
/// # Errors
/// [`TargetError::Scheme`], [`TargetError::NoHost`], [`TargetError::Forbidden`].
pub fn check_target(url: &Url, allow_private: bool) -> Result<(), TargetError> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(TargetError::Scheme(other.to_owned())),
    }
    match host_of(url)? {
        Host::Ip(ip) => check_addr(ip, allow_private),
        Host::Name(_) => Ok(()),
    }
}

enum Host<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

/// The URL's host; the URL parser has already turned IPv4 shorthands (`2130706433`, `0x7f.1`)
/// into dotted form and put IPv6 literals in brackets.
fn host_of(url: &Url) -> Result<Host<'_>, TargetError> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(TargetError::NoHost)?;
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip)))
            .map_err(|_| TargetError::NoHost);
    }
    Ok(match host.parse::<Ipv4Addr>() {
        Ok(ip) => Host::Ip(IpAddr::V4(ip)),
        Err(_) => Host::Name(host),
    })
}

/// [`check_target`], then resolves a host name and refuses the URL if any of its addresses is
/// forbidden (one private address among public ones is enough to refuse: the client could
/// connect to any of them). Returns the addresses (with the URL's port).
///
/// # Errors
/// As [`check_target`], and [`TargetError::Resolve`] or [`TargetError::NoAddress`].
pub async fn check_target_resolved(
    url: &Url,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, TargetError> {
    check_target(url, allow_private)?;
    let port = url.port_or_known_default().unwrap_or(80);
    match host_of(url)? {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(ip, port)]),
        Host::Name(host) => resolve_checked(host, port, allow_private).await,
    }
}

async fn resolve_checked(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, TargetError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| TargetError::Resolve {
            host: host.to_owned(),
            reason: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(TargetError::NoAddress(host.to_owned()));
    }
    for addr in &addrs {
        check_addr(addr.ip(), allow_private)?;
    }
    Ok(addrs)
}

/// The HTTP client's resolver: resolves with the system resolver and fails the connection when
/// any address is forbidden, so the address checked is the address connected to.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Whether private addresses are allowed.
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let addrs = resolve_checked(&host, 0, allow_private).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<AddressClass> {
        forbidden_class(s.parse().unwrap())
    }

    #[test]
    fn classifies_every_forbidden_range() {
        let cases = [
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.0.9", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("10.0.0.1", AddressClass::Private),
            ("10.255.255.255", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.254", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("fc00::1", AddressClass::Private),
            ("fd12:3456::1", AddressClass::Private),
            ("169.254.169.254", AddressClass::LinkLocal),
            ("fe80::1", AddressClass::LinkLocal),
            ("febf::1", AddressClass::LinkLocal),
            ("0.0.0.0", AddressClass::Unspecified),
            ("0.1.2.3", AddressClass::Unspecified),
            ("::", AddressClass::Unspecified),
            ("224.0.0.1", AddressClass::Multicast),
            ("239.255.255.250", AddressClass::Multicast),
            ("ff02::1", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Broadcast),
            ("100.64.0.1", AddressClass::SharedCgnat),
            ("100.127.255.255", AddressClass::SharedCgnat),
            ("192.0.0.8", AddressClass::Reserved),
            ("198.18.0.1", AddressClass::Reserved),
            ("198.19.255.1", AddressClass::Reserved),
            ("192.0.2.1", AddressClass::Reserved),
            ("203.0.113.7", AddressClass::Reserved),
            ("240.0.0.1", AddressClass::Reserved),
            ("2001:db8::1", AddressClass::Reserved),
        ];
        for (addr, expected) in cases {
            assert_eq!(class(addr), Some(expected), "{addr}");
        }
    }

    #[test]
    fn embedded_ipv4_forms_are_judged_by_their_ipv4_address() {
        assert_eq!(class("::ffff:127.0.0.1"), Some(AddressClass::Loopback));
        assert_eq!(class("::ffff:10.1.2.3"), Some(AddressClass::Private));
        assert_eq!(
            class("::ffff:169.254.169.254"),
            Some(AddressClass::LinkLocal)
        );
        assert_eq!(class("::ffff:100.64.1.1"), Some(AddressClass::SharedCgnat));
        assert_eq!(class("::ffff:0.0.0.0"), Some(AddressClass::Unspecified));
        assert_eq!(class("::192.168.0.1"), Some(AddressClass::Private));
        assert_eq!(class("64:ff9b::a9fe:a9fe"), Some(AddressClass::LinkLocal));
        assert_eq!(class("::ffff:93.184.216.34"), None);
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "100.63.255.255",
            "192.169.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            assert_eq!(class(addr), None, "{addr}");
        }
    }

    #[test]
    fn urls_with_forbidden_literals_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "https://10.0.0.5/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fe80::1]/",
            "http://0.0.0.0/",
            "http://100.100.100.100/",
            // Shorthand spellings parse to the same address.
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(
                matches!(
                    check_target(&url, false),
                    Err(TargetError::Forbidden { .. })
                ),
                "{url}"
            );
            assert_eq!(check_target(&url, true), Ok(()), "{url}");
        }
    }

    #[test]
    fn only_http_and_https_schemes() {
        for url in ["ftp://example.com/", "file:///etc/passwd", "gopher://x/"] {
            let url = Url::parse(url).unwrap();
            assert!(
                matches!(check_target(&url, true), Err(TargetError::Scheme(_))),
                "{url}"
            );
        }
        let ok = Url::parse("https://hooks.example.com/sms").unwrap();
        assert_eq!(check_target(&ok, false), Ok(()));
    }

    #[tokio::test]
    async fn names_are_resolved_and_checked() {
        let url = Url::parse("http://localhost:9/").unwrap();
        let refused = check_target_resolved(&url, false).await;
        assert!(
            matches!(
                refused,
                Err(TargetError::Forbidden {
                    class: AddressClass::Loopback,
                    ..
                })
            ),
            "{refused:?}"
        );
        let allowed = check_target_resolved(&url, true).await.unwrap();
        assert!(
            allowed
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 9)
        );
    }
}
