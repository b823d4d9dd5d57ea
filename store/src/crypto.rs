//! Secrets at rest: provider credentials and webhook secrets are sealed with ChaCha20-Poly1305
//! under a 32-byte master key that is never stored.
//!
//! A sealed value is `[SEAL_VERSION][nonce: 12 random bytes][ciphertext + 16-byte tag]`, with
//! the record's key as associated data: a sealed value copied under another record's key does
//! not open. A record with a secret is stored as [`Stored`]: the record with its secret field
//! emptied, plus the sealed bytes, so the plaintext is never on disk.
//!
//! On open, `META/master_key_check` holds a known value sealed under the key the store was first
//! opened with; another key is refused ([`StoreError::WrongMasterKey`]) before anything runs.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::keys::{Key, prefix_end, space};
use crate::kv::Kv;
use crate::value::decode;

/// Format of a sealed value (the first byte).
const SEAL_VERSION: u8 = 1;
/// ChaCha20-Poly1305 nonce length.
const NONCE_LEN: usize = 12;
/// `META` name of the key check.
const META_KEY_CHECK: &[u8] = b"master_key_check";
/// What the key check seals (and its associated data).
const CHECK_PLAIN: &[u8] = b"sairex master key check v1";
/// The keyspaces whose records may carry a sealed secret.
const SEALED_SPACES: [u8; 2] = [space::PROVIDER, space::WEBHOOK];

/// The 32-byte key that seals secrets at rest. Its `Debug` never shows it, and it has no
/// `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// A key from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A new random key (from the thread-local CSPRNG, seeded by the OS).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// A key written as 64 hexadecimal digits (surrounding whitespace is ignored).
    ///
    /// # Errors
    /// [`StoreError::InvalidMasterKey`]; the message never contains the input.
    pub fn from_hex(text: &str) -> Result<Self> {
        let text = text.trim().as_bytes();
        if text.len() != 64 {
            return Err(StoreError::InvalidMasterKey(format!(
                "expected 64 hexadecimal digits (32 bytes), got {} characters",
                text.len()
            )));
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            match (hex_digit(pair[0]), hex_digit(pair[1])) {
                (Some(hi), Some(lo)) => *byte = (hi << 4) | lo,
                _ => {
                    return Err(StoreError::InvalidMasterKey(
                        "not a hexadecimal string".into(),
                    ));
                }
            }
        }
        Self::checked(bytes)
    }

    /// A key written in base64 (standard or URL-safe alphabet, padding optional; surrounding
    /// whitespace is ignored).
    ///
    /// # Errors
    /// [`StoreError::InvalidMasterKey`]; the message never contains the input.
    pub fn from_base64(text: &str) -> Result<Self> {
        let decoded = decode_base64(text.trim())
            .ok_or_else(|| StoreError::InvalidMasterKey("not a base64 string".into()))?;
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
            StoreError::InvalidMasterKey(format!(
                "expected 32 bytes, the base64 text holds {}",
                decoded.len()
            ))
        })?;
        Self::checked(bytes)
    }

    /// A key in either form: 64 hexadecimal digits, else base64.
    ///
    /// # Errors
    /// [`StoreError::InvalidMasterKey`].
    pub fn parse(text: &str) -> Result<Self> {
        let trimmed = text.trim();
        if trimmed.len() == 64 && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
            Self::from_hex(trimmed)
        } else {
            Self::from_base64(trimmed)
        }
    }

    /// The key as 64 lowercase hexadecimal digits, to show a freshly generated key to the
    /// operator once. Never log it.
    pub fn to_hex(&self) -> String {
        crate::value::hex(&self.0)
    }

    /// An all-zero key is a placeholder left in a config, not a key.
    fn checked(bytes: [u8; 32]) -> Result<Self> {
        if bytes.iter().all(|&b| b == 0) {
            return Err(StoreError::InvalidMasterKey("the key is all zeros".into()));
        }
        Ok(Self(bytes))
    }
}

impl std::str::FromStr for MasterKey {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn base64_digit(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        acc = (acc << 6) | base64_digit(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits).to_be_bytes()[3]);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Seals and opens secrets under the master key.
#[derive(Clone)]
pub(crate) struct Sealer(ChaCha20Poly1305);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    pub(crate) fn new(key: &MasterKey) -> Self {
        Self(ChaCha20Poly1305::new(&key.0.into()))
    }

    /// Encrypts `plain` with a fresh random nonce, bound to `aad` (the record's key).
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .map_err(|_| StoreError::Storage("cannot encrypt a secret".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`Sealer::seal`] wrote under the same `aad`; `None` when the key is wrong
    /// or the bytes were changed or moved.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        if version != SEAL_VERSION || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        self.0
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
            .ok()
    }
}

/// How a record with a secret is stored: the record with its secret field emptied, and the
/// secret sealed.
#[derive(Serialize, Deserialize)]
pub(crate) struct Stored<T> {
    pub(crate) record: T,
    #[serde(default)]
    pub(crate) sealed: Option<Vec<u8>>,
}

/// Checks the master key against the store before anything runs, and stamps a new store with
/// the key's check value.
///
/// - With a key: the check value must open under it ([`StoreError::WrongMasterKey`] otherwise).
/// - Without a key: the store must hold no sealed secret ([`StoreError::MasterKeyRequired`]).
pub(crate) fn open_secrets(tree: &Kv, key: Option<&MasterKey>) -> Result<Option<Sealer>> {
    let check_key = Key::new(space::META).tail(META_KEY_CHECK).build();
    let Some(key) = key else {
        return match first_sealed(tree)? {
            Some(_) => Err(StoreError::MasterKeyRequired),
            None => Ok(None),
        };
    };
    let sealer = Sealer::new(key);
    match tree.get(&check_key)? {
        Some(check) => match sealer.open(CHECK_PLAIN, &check) {
            Some(plain) if plain == CHECK_PLAIN => {}
            _ => return Err(StoreError::WrongMasterKey),
        },
        None => {
            // No check yet: a new store, or one that only ever ran without a key. Should it
            // somehow hold secrets, they must open under this key before it is adopted.
            if let Some((record_key, sealed)) = first_sealed(tree)?
                && sealer.open(&record_key, &sealed).is_none()
            {
                return Err(StoreError::WrongMasterKey);
            }
            tree.insert(check_key, sealer.seal(CHECK_PLAIN, CHECK_PLAIN)?)?;
        }
    }
    Ok(Some(sealer))
}

/// The first record that carries a sealed secret: (its key, the sealed bytes).
fn first_sealed(tree: &Kv) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    for space in SEALED_SPACES {
        let start = [space];
        for entry in tree.range(start.to_vec()..prefix_end(&start)) {
            let (key, value) = entry?;
            let stored: Stored<serde::de::IgnoredAny> = decode(&key, &value)?;
            if let Some(sealed) = stored.sealed {
                return Ok(Some((key.to_vec(), sealed)));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_the_record_key() {
        let sealer = Sealer::new(&MasterKey::from_bytes([7; 32]));
        let sealed = sealer.seal(b"key-a", b"s3cret").unwrap();
        assert_eq!(sealer.open(b"key-a", &sealed).unwrap(), b"s3cret");
        assert!(sealer.open(b"key-b", &sealed).is_none());
        let other = Sealer::new(&MasterKey::from_bytes([8; 32]));
        assert!(other.open(b"key-a", &sealed).is_none());
        // A fresh nonce each time.
        assert_ne!(sealed, sealer.seal(b"key-a", b"s3cret").unwrap());
    }

    #[test]
    fn base64_decodes_both_alphabets_with_or_without_padding() {
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert_eq!(decode_base64("-_8").unwrap(), decode_base64("+/8").unwrap());
        assert!(decode_base64("a*b").is_none());
    }
}
