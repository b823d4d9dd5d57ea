//! Secrets: values whose `Debug` never shows them and that have no `Display`.

use std::fmt;

use base64::Engine as _;

/// A secret string (admin token, provider password, API credential). `Debug` prints
/// `Secret(***)`; read it with [`Secret::expose`] only where it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it (a bind, a comparison, an HTTP header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its length in characters (for messages that must not show the value).
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Length of the store's master key.
pub const MASTER_KEY_LEN: usize = 32;

/// The store's 32-byte master key (it seals provider credentials and webhook secrets at rest).
/// `Debug` prints `MasterKey(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; MASTER_KEY_LEN]);

/// Why a text is not a master key. It never carries the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MasterKeyError {
    /// Neither 64 hexadecimal digits nor base64 of 32 bytes.
    #[error("expected 32 bytes as 64 hexadecimal digits or base64, found {length} characters")]
    Malformed {
        /// Length of the (trimmed) text.
        length: usize,
    },
    /// Valid base64, but of the wrong number of bytes.
    #[error("expected 32 bytes, found {actual} bytes of base64")]
    WrongLength {
        /// Bytes decoded.
        actual: usize,
    },
}

impl MasterKey {
    /// A key from its bytes.
    pub const fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The bytes, for the store (`sairex_store::MasterKey::from_bytes`).
    pub const fn bytes(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.0
    }

    /// A key written as 64 hexadecimal digits or as base64 (standard or URL-safe alphabet,
    /// with or without padding) of 32 bytes; surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`MasterKeyError`], which never contains the text.
    pub fn parse(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        if text.len() == 2 * MASTER_KEY_LEN
            && let Some(bytes) = decode_hex(text)
        {
            return Ok(Self(bytes));
        }
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        for engine in engines {
            if let Ok(bytes) = engine.decode(text) {
                return <[u8; MASTER_KEY_LEN]>::try_from(bytes.as_slice())
                    .map(Self)
                    .map_err(|_| MasterKeyError::WrongLength {
                        actual: bytes.len(),
                    });
            }
        }
        Err(MasterKeyError::Malformed {
            length: text.chars().count(),
        })
    }

    /// A key from the content of a key file: exactly 32 raw bytes, or the text forms of
    /// [`MasterKey::parse`] (a 32-byte file cannot be text: hex needs 64 characters and
    /// base64 at least 43).
    ///
    /// # Errors
    /// [`MasterKeyError`], which never contains the content.
    pub fn from_file_content(content: &[u8]) -> Result<Self, MasterKeyError> {
        if let Ok(bytes) = <[u8; MASTER_KEY_LEN]>::try_from(content) {
            return Ok(Self(bytes));
        }
        match std::str::from_utf8(content) {
            Ok(text) => Self::parse(text),
            Err(_) => Err(MasterKeyError::Malformed {
                length: content.len(),
            }),
        }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

fn decode_hex(text: &str) -> Option<[u8; MASTER_KEY_LEN]> {
    let digits = text.as_bytes();
    let mut out = [0u8; MASTER_KEY_LEN];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_debug() {
        let secret = Secret::new("hunter2hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose(), "hunter2hunter2");
        let key = MasterKey::from_bytes([7; 32]);
        assert_eq!(format!("{key:?}"), "MasterKey(***)");
    }

    #[test]
    fn master_key_in_hex_and_base64() {
        let bytes: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 7 + 1).unwrap_or(0));
        let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            MasterKey::parse(&format!("  {hex}\n")).unwrap().bytes(),
            &bytes
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(MasterKey::parse(&b64).unwrap().bytes(), &bytes);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(MasterKey::parse(&b64url).unwrap().bytes(), &bytes);
        assert_eq!(
            MasterKey::from_file_content(&bytes).unwrap().bytes(),
            &bytes
        );
        assert_eq!(
            MasterKey::from_file_content(format!("{b64}\n").as_bytes())
                .unwrap()
                .bytes(),
            &bytes
        );
    }

    #[test]
    fn bad_master_keys_are_refused_without_echo() {
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert_eq!(
            MasterKey::parse(&short),
            Err(MasterKeyError::WrongLength { actual: 16 })
        );
        let err = MasterKey::parse("not a key at all!").unwrap_err();
        assert_eq!(err, MasterKeyError::Malformed { length: 17 });
        assert!(!err.to_string().contains("not a key"));
        // 64 characters that are not all hex digits and not base64 either.
        let almost_hex = format!("{}zz", "ab".repeat(31));
        assert!(MasterKey::parse(&almost_hex).is_err());
    }
}
