//! Bounded wire strings of SMPP 3.4 §3.1: C-Octet Strings (NUL-terminated) and Octet Strings.
//!
//! The bound is part of the type (`COctetString<16>` for a `system_id`), so a value that exists
//! always fits its field: encoding never has to check again, and a PDU built in memory is always
//! one a peer can decode.

use std::fmt;

use bytes::Bytes;

use crate::error::ValueError;

/// A C-Octet String (SMPP 3.4 §3.1): a series of ASCII characters ended by a NUL octet.
///
/// `MAX` is the spec's maximum field size **including** the NUL, as the spec's tables give it
/// (`system_id` is "Var. max 16", so 15 characters and the NUL). The value is held without its
/// NUL and never contains one. Cloning is cheap: the bytes are shared (`Bytes`), and a decoded
/// value points into the received frame without copying.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct COctetString<const MAX: usize>(Bytes);

impl<const MAX: usize> COctetString<MAX> {
    /// The empty string (encoded as a single NUL octet).
    pub const fn empty() -> Self {
        Self(Bytes::new())
    }

    /// Builds a value, checking that it has no NUL and fits `MAX - 1` octets.
    ///
    /// # Errors
    /// [`ValueError::TooLong`] or [`ValueError::ContainsNul`].
    pub fn new(value: impl Into<Bytes>) -> Result<Self, ValueError> {
        let value = value.into();
        if value.len() >= MAX {
            return Err(ValueError::TooLong {
                max: MAX - 1,
                actual: value.len(),
            });
        }
        if value.contains(&0) {
            return Err(ValueError::ContainsNul);
        }
        Ok(Self(value))
    }

    /// Builds a value from text; see [`COctetString::new`].
    ///
    /// # Errors
    /// As [`COctetString::new`].
    pub fn from_str_checked(value: &str) -> Result<Self, ValueError> {
        Self::new(Bytes::copy_from_slice(value.as_bytes()))
    }

    /// Wraps bytes already checked by the decoder.
    pub(crate) fn from_checked(value: Bytes) -> Self {
        debug_assert!(value.len() < MAX && !value.contains(&0));
        Self(value)
    }

    /// The characters, without the terminating NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The characters as shared bytes, without the terminating NUL.
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// The value as UTF-8 text, if it is (SMPP says ASCII; peers sometimes send Latin-1).
    ///
    /// # Errors
    /// When the octets are not valid UTF-8.
    pub fn to_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.0)
    }

    /// The value as text, with invalid UTF-8 replaced by U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// Number of characters, without the NUL.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Octets this field takes on the wire, NUL included.
    pub fn encoded_len(&self) -> usize {
        self.0.len() + 1
    }
}

impl<const MAX: usize> TryFrom<&str> for COctetString<MAX> {
    type Error = ValueError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::from_str_checked(value)
    }
}

impl<const MAX: usize> TryFrom<String> for COctetString<MAX> {
    type Error = ValueError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(Bytes::from(value))
    }
}

impl<const MAX: usize> fmt::Debug for COctetString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl<const MAX: usize> fmt::Display for COctetString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// An Octet String (SMPP 3.4 §3.1) of at most `MAX` octets, such as `short_message` (254).
///
/// Its length travels in a separate field (`sm_length`), which the encoder always derives from
/// the value, so the two can never disagree.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct OctetString<const MAX: usize>(Bytes);

impl<const MAX: usize> OctetString<MAX> {
    /// The empty octet string.
    pub const fn empty() -> Self {
        Self(Bytes::new())
    }

    /// Builds a value, checking that it fits `MAX` octets.
    ///
    /// # Errors
    /// [`ValueError::TooLong`].
    pub fn new(value: impl Into<Bytes>) -> Result<Self, ValueError> {
        let value = value.into();
        if value.len() > MAX {
            return Err(ValueError::TooLong {
                max: MAX,
                actual: value.len(),
            });
        }
        Ok(Self(value))
    }

    pub(crate) fn from_checked(value: Bytes) -> Self {
        debug_assert!(value.len() <= MAX);
        Self(value)
    }

    /// The octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The octets as shared bytes.
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// Number of octets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no octets.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<const MAX: usize> fmt::Debug for OctetString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x?}", &self.0[..])
    }
}

/// `short_message`: at most 254 octets (SMPP 3.4 §4.4.1); longer content goes in the
/// `message_payload` TLV.
pub type ShortMessage = OctetString<254>;

/// Maximum `short_message` length in octets (SMPP 3.4 §4.4.1, `sm_length` 0–254).
pub const MAX_SHORT_MESSAGE_LEN: usize = 254;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_octet_string_bound_counts_the_nul() {
        assert!(COctetString::<16>::from_str_checked("123456789012345").is_ok());
        assert_eq!(
            COctetString::<16>::from_str_checked("1234567890123456"),
            Err(ValueError::TooLong {
                max: 15,
                actual: 16
            })
        );
        assert_eq!(
            COctetString::<16>::from_str_checked("a\0b"),
            Err(ValueError::ContainsNul)
        );
        assert_eq!(
            COctetString::<16>::from_str_checked("abc")
                .unwrap()
                .encoded_len(),
            4
        );
    }

    #[test]
    fn octet_string_bound_is_inclusive() {
        assert!(ShortMessage::new(vec![0u8; 254]).is_ok());
        assert_eq!(
            ShortMessage::new(vec![0u8; 255]),
            Err(ValueError::TooLong {
                max: 254,
                actual: 255
            })
        );
    }
}
