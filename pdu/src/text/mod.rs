//! Text encodings (GSM 03.38, UCS-2, Latin-1), segment counting and splitting.
//!
//! Outbound: [`choose_encoding`] picks GSM 7-bit when every character fits,
//! else UCS-2; [`count_segments`] says how many SMS parts a text costs; and
//! [`split`] produces `short_message` bodies with the caller's choice of
//! concatenation (8- or 16-bit reference UDH, SAR TLVs, or one
//! `message_payload`). Inbound: [`decode`] turns a `short_message` and its
//! `data_coding` into text, and [`parse_udh`] pulls the concatenation
//! reference out of a user data header for reassembly.

pub mod gsm7;
pub mod latin1;
mod segment;
pub mod ucs2;
mod udh;

pub use segment::{
    Concatenation, ESM_CLASS_UDHI, Gsm7Packing, MAX_MESSAGE_PAYLOAD, MAX_SEGMENTS, SarInfo,
    Segment, SegmentCount, SplitOptions, count_segments, count_segments_with, split,
};
pub use udh::{ConcatInfo, UserData, concat_udh8, concat_udh16, parse_udh};

use std::fmt;

/// An alphabet we can send in, with its SMPP 3.4 `data_coding` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GSM 03.38 default alphabet with the extension table (`data_coding` 0x00,
    /// "SMSC default alphabet", which is GSM 03.38 on the SMSCs we target).
    Gsm7,
    /// ISO-8859-1 (`data_coding` 0x03).
    Latin1,
    /// UCS-2, sent as UTF-16BE (`data_coding` 0x08).
    Ucs2,
}

impl Encoding {
    /// The SMPP 3.4 §5.2.19 `data_coding` value announcing this encoding.
    pub const fn data_coding(self) -> u8 {
        match self {
            Self::Gsm7 => 0x00,
            Self::Latin1 => 0x03,
            Self::Ucs2 => 0x08,
        }
    }

    /// True when every character of `text` can be sent in this encoding.
    pub fn can_encode(self, text: &str) -> bool {
        match self {
            Self::Gsm7 => gsm7::can_encode(text),
            Self::Latin1 => latin1::can_encode(text),
            Self::Ucs2 => true,
        }
    }

    /// Encodes `text`; GSM 7-bit comes out unpacked (one septet per octet).
    ///
    /// # Errors
    /// [`TextError::Unencodable`] when a character does not fit (never for UCS-2).
    pub fn encode(self, text: &str) -> Result<Vec<u8>, TextError> {
        match self {
            Self::Gsm7 => gsm7::encode(text),
            Self::Latin1 => latin1::encode(text),
            Self::Ucs2 => Ok(ucs2::encode(text)),
        }
    }

    /// Decodes bytes in this encoding (GSM 7-bit unpacked); never fails,
    /// see [`gsm7::decode`], [`latin1::decode`] and [`ucs2::decode`].
    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            Self::Gsm7 => gsm7::decode(bytes),
            Self::Latin1 => latin1::decode(bytes),
            Self::Ucs2 => ucs2::decode(bytes),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gsm7 => "GSM 7-bit",
            Self::Latin1 => "Latin-1",
            Self::Ucs2 => "UCS-2",
        })
    }
}

/// Picks GSM 7-bit when every character is in the default alphabet or its
/// extension table, else UCS-2. Latin-1 is never chosen: handsets receive it
/// as whatever the SMSC converts it to, so it is only used when asked for.
pub fn choose_encoding(text: &str) -> Encoding {
    if gsm7::can_encode(text) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// The alphabet an inbound `data_coding` value announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alphabet {
    /// GSM 03.38 default alphabet (taken as unpacked septets in SMPP).
    Gsm7,
    /// IA5 / ASCII.
    Ascii,
    /// ISO-8859-1.
    Latin1,
    /// UCS-2 / UTF-16BE.
    Ucs2,
    /// 8-bit data: not text.
    Binary,
}

impl Alphabet {
    /// Maps a `data_coding` value to its alphabet.
    ///
    /// 0x00–0x0F follow SMPP 3.4 §5.2.19 (0x00 "SMSC default" is taken as
    /// GSM 03.38; 0x02 and 0x04 are binary). Above that the value is read as
    /// a GSM data coding scheme (3GPP TS 23.038 §4), since SMSCs pass the DCS
    /// through: the general and automatic-deletion groups (0x10–0x7F) by
    /// their alphabet bits 3–2, the message-waiting groups 0xC0–0xDF as GSM
    /// and 0xE0–0xEF as UCS-2, and 0xF0–0xFF by bit 2 (GSM or 8-bit data).
    /// Message class and indication bits do not affect decoding.
    ///
    /// # Errors
    /// [`TextError::UnsupportedDataCoding`] for JIS, Cyrillic, Hebrew,
    /// pictogram, ISO-2022-JP, Kanji, KS C 5601, reserved values and
    /// compressed text (DCS bit 5; 23.038 §4 compression is not implemented).
    pub fn from_data_coding(data_coding: u8) -> Result<Self, TextError> {
        let unsupported = Err(TextError::UnsupportedDataCoding { data_coding });
        match data_coding {
            0x00 => Ok(Self::Gsm7),
            0x01 => Ok(Self::Ascii),
            0x02 | 0x04 => Ok(Self::Binary),
            0x03 => Ok(Self::Latin1),
            0x08 => Ok(Self::Ucs2),
            0x05..=0x0F => unsupported,
            0x10..=0x7F if data_coding & 0x20 != 0 => unsupported,
            0x10..=0x7F => match (data_coding >> 2) & 0x03 {
                0 => Ok(Self::Gsm7),
                1 => Ok(Self::Binary),
                2 => Ok(Self::Ucs2),
                _ => unsupported,
            },
            0xC0..=0xDF => Ok(Self::Gsm7),
            0xE0..=0xEF => Ok(Self::Ucs2),
            0xF0..=0xFF if data_coding & 0x04 != 0 => Ok(Self::Binary),
            0xF0..=0xFF => Ok(Self::Gsm7),
            _ => unsupported,
        }
    }
}

/// Decodes an inbound `short_message` (UDH already removed) given its
/// `data_coding`, per [`Alphabet::from_data_coding`]. GSM text is taken as
/// unpacked septets, SMPP's norm; for a packed body use [`gsm7::unpack_all`]
/// then [`gsm7::decode`].
///
/// # Errors
/// [`TextError::Binary`] for 8-bit data (the caller keeps the raw bytes),
/// [`TextError::UnsupportedDataCoding`] for alphabets we do not decode.
pub fn decode(data_coding: u8, bytes: &[u8]) -> Result<String, TextError> {
    match Alphabet::from_data_coding(data_coding)? {
        Alphabet::Gsm7 => Ok(gsm7::decode(bytes)),
        Alphabet::Ascii => Ok(latin1::decode_ascii(bytes)),
        Alphabet::Latin1 => Ok(latin1::decode(bytes)),
        Alphabet::Ucs2 => Ok(ucs2::decode(bytes)),
        Alphabet::Binary => Err(TextError::Binary { data_coding }),
    }
}

/// Errors from encoding, decoding, splitting and UDH parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// A character has no representation in the requested encoding.
    #[error("{character:?} at byte offset {offset} cannot be encoded in {encoding}")]
    Unencodable {
        /// The encoding that was asked for.
        encoding: Encoding,
        /// The offending character.
        character: char,
        /// Its byte offset in the input `str`.
        offset: usize,
    },
    /// The `data_coding` announces 8-bit binary data, not text.
    #[error("data_coding {data_coding:#04x} is binary data, not text")]
    Binary {
        /// The `data_coding` value.
        data_coding: u8,
    },
    /// The `data_coding` announces an alphabet this module does not decode.
    #[error("data_coding {data_coding:#04x} is not supported")]
    UnsupportedDataCoding {
        /// The `data_coding` value.
        data_coding: u8,
    },
    /// More septets were asked for than the packed input holds.
    #[error("asked for {requested} septets but only {available} are present")]
    SeptetsOutOfRange {
        /// Septets asked for.
        requested: usize,
        /// Whole septets available.
        available: usize,
    },
    /// The text needs more than [`MAX_SEGMENTS`] parts.
    #[error("text needs {segments} segments; at most 255 are possible")]
    TooManySegments {
        /// The number of segments the text would need.
        segments: usize,
    },
    /// The encoded text exceeds the `message_payload` TLV's 65535 octets.
    #[error("encoded text is {octets} octets; message_payload holds at most 65535")]
    PayloadTooLong {
        /// The encoded length.
        octets: usize,
    },
    /// A user data header is inconsistent with its length fields.
    #[error("malformed user data header: {reason}")]
    MalformedUdh {
        /// What is wrong with it.
        reason: &'static str,
    },
}
