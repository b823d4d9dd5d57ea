//! ISO-8859-1 (SMPP 3.4 §5.2.19 `data_coding` 0x03) and IA5 / ASCII
//! (`data_coding` 0x01).

use super::{Encoding, TextError};

/// Encodes `text` as ISO-8859-1, one octet per character.
///
/// # Errors
/// [`TextError::Unencodable`] for the first character above U+00FF.
pub fn encode(text: &str) -> Result<Vec<u8>, TextError> {
    text.char_indices()
        .map(|(offset, c)| {
            u8::try_from(u32::from(c)).map_err(|_| TextError::Unencodable {
                encoding: Encoding::Latin1,
                character: c,
                offset,
            })
        })
        .collect()
}

/// True when every character of `text` is at most U+00FF.
pub fn can_encode(text: &str) -> bool {
    text.chars().all(|c| u32::from(c) <= 0xFF)
}

/// Decodes ISO-8859-1. Never fails: every octet is a character.
pub fn decode(bytes: &[u8]) -> String {
    bytes.iter().copied().map(char::from).collect()
}

/// Decodes IA5 (ITU-T T.50, international reference version = ASCII).
/// Octets above 0x7F are not IA5 and decode as U+FFFD.
pub fn decode_ascii(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii() {
                char::from(b)
            } else {
                char::REPLACEMENT_CHARACTER
            }
        })
        .collect()
}
