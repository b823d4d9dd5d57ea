//! The SSRF rule for webhook and callback URLs: a target that resolves to a private, loopback,
//! link-local or otherwise non-public address is refused, unless the operator allows private
//! targets (`[webhooks] allow_private_targets`). The API checks URLs when they are saved; a
//! sender should check again with [`is_forbidden_ip`] on the address it connects to, since DNS
//! can change between the two.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use axum::http::Uri;

/// Longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Why a target URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Not an absolute http(s) URL with a host.
    #[error("not an absolute http(s) URL: {0}")]
    Invalid(String),
    /// The host does not resolve.
    #[error("the host {0} does not resolve")]
    Unresolvable(String),
    /// The host resolves to an address that is not public.
    #[error(
        "the host {host} resolves to {ip}, a private, loopback or link-local address (an \
         operator can allow such targets with [webhooks] allow_private_targets = true)"
    )]
    Forbidden {
        /// The host of the URL.
        host: String,
        /// The refused address.
        ip: IpAddr,
    },
}

/// Whether `ip` is not a public unicast address: loopback, private (RFC 1918, unique local),
/// link-local, carrier-grade NAT, unspecified, broadcast, multicast, documentation or
/// benchmarking ranges; IPv4-mapped IPv6 addresses are judged as the IPv4 address.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64 (maps to IPv4 of any kind)
}

/// Checks a webhook or callback URL: absolute http(s), a host, and (unless `allow_private`)
/// every address the host resolves to public. Resolves through the system resolver.
///
/// # Errors
/// [`TargetError`] saying why the URL is refused.
pub async fn check_target_url(url: &str, allow_private: bool) -> Result<(), TargetError> {
    let (host, port) = host_and_port(url)?;
    let literal = host.parse::<IpAddr>().ok();
    let addrs: Vec<IpAddr> = match literal {
        Some(ip) => vec![ip],
        None => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| TargetError::Unresolvable(host.clone()))?
            .map(|a| a.ip())
            .collect(),
    };
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable(host));
    }
    if !allow_private && let Some(ip) = addrs.into_iter().find(|ip| is_forbidden_ip(*ip)) {
        return Err(TargetError::Forbidden { host, ip });
    }
    Ok(())
}

/// The host (IPv6 without brackets) and port of an absolute http(s) URL.
fn host_and_port(url: &str) -> Result<(String, u16), TargetError> {
    let invalid = || TargetError::Invalid(url.chars().take(100).collect());
    if url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let uri: Uri = url.parse().map_err(|_| invalid())?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        Some("http") => 80,
        _ => return Err(invalid()),
    };
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(invalid)?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok((host, uri.port_u16().unwrap_or(default_port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(
                is_forbidden_ip(bad.parse().unwrap()),
                "{bad} should be refused"
            );
        }
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(
                !is_forbidden_ip(good.parse().unwrap()),
                "{good} should be allowed"
            );
        }
    }

    #[tokio::test]
    async fn checks_urls() {
        assert!(matches!(
            check_target_url("http://127.0.0.1:9/hook", false).await,
            Err(TargetError::Forbidden { .. })
        ));
        assert!(matches!(
            check_target_url("https://[::1]/hook", false).await,
            Err(TargetError::Forbidden { .. })
        ));
        assert!(matches!(
            check_target_url("http://localhost:8080/x", false).await,
            Err(TargetError::Forbidden { .. })
        ));
        assert!(
            check_target_url("http://127.0.0.1:9/hook", true)
                .await
                .is_ok()
        );
        assert!(check_target_url("http://8.8.8.8/hook", false).await.is_ok());
        for invalid in ["ftp://example.com", "not a url", "/relative", "http://"] {
            assert!(
                matches!(
                    check_target_url(invalid, true).await,
                    Err(TargetError::Invalid(_))
                ),
                "{invalid}"
            );
        }
    }
}
