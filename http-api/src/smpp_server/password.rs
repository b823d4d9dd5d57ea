//! SMPP account passwords (argon2id, PHC strings) and source address ranges.

use std::net::IpAddr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use ipnet::IpNet;
use rand::Rng;

/// SMPP 3.4 `password` is a C-Octet String of at most 9 octets with its NUL.
pub(crate) const MAX_PASSWORD: usize = 8;

/// A new password: 8 characters from an alphabet without look-alikes (the whole SMPP field).
pub(crate) fn generate() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..MAX_PASSWORD)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A password a customer chose: 1 to 8 printable ASCII characters.
pub(crate) fn check_password(password: &str) -> Result<(), String> {
    if password.is_empty()
        || password.len() > MAX_PASSWORD
        || !password.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(format!(
            "password: 1 to {MAX_PASSWORD} printable ASCII characters (SMPP 3.4's limit)"
        ));
    }
    Ok(())
}

/// The argon2id PHC string of `password`.
pub(crate) fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches the stored hash (false for a hash that does not parse).
pub(crate) fn verify(password: &[u8], hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(password, &parsed).is_ok())
}

/// An address range (`203.0.113.0/24`) or a single address (`203.0.113.7`).
pub(crate) fn parse_cidr(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Whether `ip` may bind under `ranges` (empty: any). IPv4-mapped IPv6 peers are compared as
/// IPv4.
pub(crate) fn ip_allowed(ranges: &[String], ip: IpAddr) -> bool {
    if ranges.is_empty() {
        return true;
    }
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    ranges
        .iter()
        .filter_map(|r| parse_cidr(r))
        .any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_verifies() {
        let h = hash("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(b"s3cret", &h));
        assert!(!verify(b"s3cres", &h));
        assert!(!verify(b"s3cret", "not a hash"));
    }

    #[test]
    fn generated_passwords_fit_the_field() {
        let p = generate();
        assert_eq!(p.len(), MAX_PASSWORD);
        assert!(check_password(&p).is_ok());
        assert!(check_password("").is_err());
        assert!(check_password("123456789").is_err());
        assert!(check_password("a b").is_err());
    }

    #[test]
    fn ranges() {
        let ranges = vec!["10.0.0.0/8".to_owned(), "192.0.2.7".to_owned()];
        assert!(ip_allowed(&ranges, "10.1.2.3".parse().unwrap()));
        assert!(ip_allowed(&ranges, "192.0.2.7".parse().unwrap()));
        assert!(ip_allowed(&ranges, "::ffff:10.0.0.1".parse().unwrap()));
        assert!(!ip_allowed(&ranges, "192.0.2.8".parse().unwrap()));
        assert!(ip_allowed(&[], "192.0.2.8".parse().unwrap()));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("::1/128").is_some());
    }
}
