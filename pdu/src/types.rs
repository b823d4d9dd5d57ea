//! Bounded wire strings of SMPP 3.4 §3.1: C-Octet Strings (NUL-terminated), Octet Strings, and
//! the time format of §7.1.
//!
//! The bound is part of the type (`COctetString<16>` for a `system_id`), so a value that exists
//! always fits its field: encoding never has to check again, and a PDU built in memory is always
//! one a peer can decode.
//!
//! Every type is generic over where its octets live ([`Octets`]): `Bytes` (the default) for
//! owned PDUs that share the received frame, or `&[u8]` for PDUs decoded in place by
//! [`Command::decode_borrowed`](crate::Command::decode_borrowed), which costs no reference
//! counting at all.

use std::fmt;
use std::hash::Hash;

use bytes::Bytes;

use crate::error::ValueError;

mod sealed {
    pub trait Sealed {}
    impl Sealed for bytes::Bytes {}
    impl Sealed for &[u8] {}
}

/// Where a decoded PDU's octet strings live: [`Bytes`] (owned, shared with the frame) or
/// `&[u8]` (borrowed from the buffer being decoded).
pub trait Octets:
    sealed::Sealed + AsRef<[u8]> + Clone + PartialEq + Eq + Hash + Default + fmt::Debug
{
}

impl Octets for Bytes {}
impl Octets for &[u8] {}

/// A C-Octet String (SMPP 3.4 §3.1): a series of ASCII characters ended by a NUL octet.
///
/// `MAX` is the spec's maximum field size **including** the NUL, as the spec's tables give it
/// (`system_id` is "Var. max 16", so 15 characters and the NUL). The value is held without its
/// NUL and never contains one.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct COctetString<const MAX: usize, B = Bytes>(B);

impl<const MAX: usize, B: Octets> COctetString<MAX, B> {
    /// The empty string (encoded as a single NUL octet).
    pub fn empty() -> Self {
        Self(B::default())
    }

    /// Wraps octets already checked by the decoder.
    #[inline]
    pub(crate) fn from_checked(value: B) -> Self {
        debug_assert!(value.as_ref().len() < MAX && !value.as_ref().contains(&0));
        Self(value)
    }

    /// The characters, without the terminating NUL.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// The value as UTF-8 text, if it is (SMPP says ASCII; peers sometimes send Latin-1).
    ///
    /// # Errors
    /// When the octets are not valid UTF-8.
    pub fn to_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(self.as_bytes())
    }

    /// The value as text, with invalid UTF-8 replaced by U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }

    /// Number of characters, without the NUL.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// Octets this field takes on the wire, NUL included.
    pub fn encoded_len(&self) -> usize {
        self.len() + 1
    }
}

impl<const MAX: usize> COctetString<MAX> {
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

    /// The characters as shared bytes, without the terminating NUL.
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
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

impl<const MAX: usize, B: Octets> fmt::Debug for COctetString<MAX, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl<const MAX: usize, B: Octets> fmt::Display for COctetString<MAX, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// An Octet String (SMPP 3.4 §3.1) of at most `MAX` octets, such as `short_message` (254).
///
/// Its length travels in a separate field (`sm_length`), which the encoder always derives from
/// the value, so the two can never disagree.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct OctetString<const MAX: usize, B = Bytes>(B);

impl<const MAX: usize, B: Octets> OctetString<MAX, B> {
    /// The empty octet string.
    pub fn empty() -> Self {
        Self(B::default())
    }

    #[inline]
    pub(crate) fn from_checked(value: B) -> Self {
        debug_assert!(value.as_ref().len() <= MAX);
        Self(value)
    }

    /// The octets.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// Number of octets.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether there are no octets.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

impl<const MAX: usize> OctetString<MAX> {
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

    /// The octets as shared bytes.
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }
}

impl<const MAX: usize, B: Octets> fmt::Debug for OctetString<MAX, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x?}", self.as_bytes())
    }
}

/// `short_message`: at most 254 octets (SMPP 3.4 §4.4.1); longer content goes in the
/// `message_payload` TLV.
pub type ShortMessage<B = Bytes> = OctetString<254, B>;

/// Maximum `short_message` length in octets (SMPP 3.4 §4.4.1, `sm_length` 0–254).
pub const MAX_SHORT_MESSAGE_LEN: usize = 254;

/// A time field (`schedule_delivery_time`, `validity_period`, `final_date`): empty, or the 16
/// characters `YYMMDDhhmmsstnnp` of SMPP 3.4 §7.1.1, where `p` is `+` or `-` (absolute time,
/// offset from UTC in quarter hours) or `R` (relative time).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct SmppTime<B = Bytes>(COctetString<17, B>);

/// Length of a non-empty time field, without its NUL (SMPP 3.4 §7.1.1).
pub const SMPP_TIME_LEN: usize = 16;

/// Whether `value` is a valid time field: empty, or 16 characters of digits ending in `+`, `-`
/// or `R`.
#[inline]
pub(crate) fn is_valid_time(value: &[u8]) -> bool {
    match value.split_last() {
        None => true,
        Some((p, digits)) => {
            value.len() == SMPP_TIME_LEN
                && matches!(p, b'+' | b'-' | b'R')
                && digits.iter().all(u8::is_ascii_digit)
        }
    }
}

impl<B: Octets> SmppTime<B> {
    /// No time (the SMSC's default: immediate delivery, default validity).
    pub fn none() -> Self {
        Self(COctetString::empty())
    }

    pub(crate) fn from_checked(value: COctetString<17, B>) -> Self {
        debug_assert!(is_valid_time(value.as_bytes()));
        Self(value)
    }

    /// The 16 characters, or nothing.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether no time is given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the time is relative to now (ends in `R`).
    pub fn is_relative(&self) -> bool {
        self.as_bytes().last() == Some(&b'R')
    }

    pub(crate) fn inner(&self) -> &COctetString<17, B> {
        &self.0
    }
}

impl SmppTime {
    /// Builds a time field from its text, checking the §7.1.1 format.
    ///
    /// # Errors
    /// [`ValueError::InvalidFormat`] when it is neither empty nor `YYMMDDhhmmsstnnp`.
    pub fn new(value: &str) -> Result<Self, ValueError> {
        if !is_valid_time(value.as_bytes()) {
            return Err(ValueError::InvalidFormat);
        }
        Ok(Self(COctetString::from_str_checked(value)?))
    }
}

impl TryFrom<&str> for SmppTime {
    type Error = ValueError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl<B: Octets> fmt::Debug for SmppTime<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

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

    #[test]
    fn time_fields_follow_section_7_1_1() {
        assert!(SmppTime::new("").is_ok());
        assert!(SmppTime::new("261126120000004+").is_ok());
        assert!(SmppTime::new("000001000000000R").unwrap().is_relative());
        assert_eq!(SmppTime::new("2611261200"), Err(ValueError::InvalidFormat));
        assert_eq!(
            SmppTime::new("261126120000004Z"),
            Err(ValueError::InvalidFormat)
        );
        assert_eq!(
            SmppTime::new("26112612000000+4"),
            Err(ValueError::InvalidFormat)
        );
    }
}
