//! The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038
//! §6.2.1 / §6.2.1.1), unpacked (one septet per octet, the SMPP norm for
//! `data_coding` 0) and packed (3GPP TS 23.038 §6.1.2.1).

use super::{Encoding, TextError};

/// The escape septet that introduces a character of the extension table
/// (3GPP TS 23.038 §6.2.1, code 0x1B).
pub const ESCAPE: u8 = 0x1B;

/// Carriage return, used as padding when packing leaves 7 spare bits
/// (3GPP TS 23.038 §6.1.2.3.1).
const CR: u8 = 0x0D;

/// The default alphabet, indexed by septet (3GPP TS 23.038 §6.2.1).
///
/// Entry 0x1B is the escape code, not a character; it is never looked up
/// (the decoder handles it first) and is left out of the reverse table.
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', ' ', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table as (septet after ESC, character) pairs
/// (3GPP TS 23.038 §6.2.1.1). 0x0D (CR2) and 0x1B (SS2) are reserved codes
/// with no character, so they are not here.
const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{000C}'), // form feed (page break)
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// Marks "no GSM encoding" in [`REVERSE`].
const NONE: u8 = 0xFF;
/// Set in a [`REVERSE`] entry when the character is in the extension table.
const EXT_FLAG: u8 = 0x80;

/// Encoding lookup for U+0000..=U+00FF: the septet, `EXT_FLAG | septet` for
/// an extension character, or `NONE`. Built at compile time from the tables
/// above so the two directions cannot drift apart.
const REVERSE: [u8; 256] = build_reverse();

const fn build_reverse() -> [u8; 256] {
    let mut table = [NONE; 256];
    let mut i = 0;
    while i < BASIC.len() {
        let c = BASIC[i] as u32;
        if i != ESCAPE as usize && c < 256 {
            // i < 128 (BASIC has 128 entries), so it fits a septet.
            #[allow(clippy::cast_possible_truncation)]
            {
                table[c as usize] = i as u8;
            }
        }
        i += 1;
    }
    let mut j = 0;
    while j < EXTENSION.len() {
        let (code, c) = EXTENSION[j];
        if (c as u32) < 256 {
            table[c as usize] = EXT_FLAG | code;
        }
        j += 1;
    }
    table
}

/// The GSM encoding of one character: one septet, or ESC plus one septet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Septets {
    /// A character of the default alphabet.
    Basic(u8),
    /// A character of the extension table: sent as `ESC` then this septet,
    /// so it costs two septets.
    Extended(u8),
}

impl Septets {
    /// How many septets the character occupies (1 or 2).
    pub const fn width(self) -> usize {
        match self {
            Self::Basic(_) => 1,
            Self::Extended(_) => 2,
        }
    }
}

/// Looks up `c` in the default alphabet, then the extension table.
/// Returns `None` when the character has no GSM 03.38 encoding.
pub fn encode_char(c: char) -> Option<Septets> {
    let code = u32::from(c);
    if let Some(&entry) = usize::try_from(code).ok().and_then(|i| REVERSE.get(i)) {
        return match entry {
            NONE => None,
            e if e & EXT_FLAG != 0 => Some(Septets::Extended(e & !EXT_FLAG)),
            e => Some(Septets::Basic(e)),
        };
    }
    // Only the Greek capitals and the euro sign lie above U+00FF.
    let basic = match c {
        'Δ' => 0x10,
        'Φ' => 0x12,
        'Γ' => 0x13,
        'Λ' => 0x14,
        'Ω' => 0x15,
        'Π' => 0x16,
        'Ψ' => 0x17,
        'Σ' => 0x18,
        'Θ' => 0x19,
        'Ξ' => 0x1A,
        '€' => return Some(Septets::Extended(0x65)),
        _ => return None,
    };
    Some(Septets::Basic(basic))
}

/// True when every character of `text` has a GSM 03.38 encoding.
pub fn can_encode(text: &str) -> bool {
    text.chars().all(|c| encode_char(c).is_some())
}

/// The number of septets `text` takes in GSM 7-bit (extension characters
/// count two), or `None` if some character cannot be encoded.
pub fn septet_count(text: &str) -> Option<usize> {
    text.chars()
        .try_fold(0usize, |n, c| encode_char(c).map(|s| n + s.width()))
}

/// Encodes `text` as unpacked septets, one per octet (the SMPP form for
/// `data_coding` 0). Extension characters become `0x1B` plus their code.
///
/// # Errors
/// [`TextError::Unencodable`] for the first character with no GSM encoding.
pub fn encode(text: &str) -> Result<Vec<u8>, TextError> {
    let mut out = Vec::with_capacity(text.len());
    for (offset, c) in text.char_indices() {
        match encode_char(c) {
            Some(Septets::Basic(s)) => out.push(s),
            Some(Septets::Extended(s)) => out.extend_from_slice(&[ESCAPE, s]),
            None => {
                return Err(TextError::Unencodable {
                    encoding: Encoding::Gsm7,
                    character: c,
                    offset,
                });
            }
        }
    }
    Ok(out)
}

/// Encodes `text` as unpacked septets, replacing characters with no GSM
/// encoding by `?` (useful for logs and previews, never for billing counts).
pub fn encode_lossy(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match encode_char(c) {
            Some(Septets::Basic(s)) => out.push(s),
            Some(Septets::Extended(s)) => out.extend_from_slice(&[ESCAPE, s]),
            None => out.push(b'?'),
        }
    }
    out
}

fn extension_char(code: u8) -> Option<char> {
    EXTENSION.iter().find(|&&(k, _)| k == code).map(|&(_, c)| c)
}

fn basic_char(septet: u8) -> char {
    BASIC
        .get(usize::from(septet))
        .copied()
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Decodes unpacked septets (one per octet). Never fails:
///
/// - `ESC` + a code that is not in the extension table decodes as the
///   default-alphabet character for that code (3GPP TS 23.038 §6.2.1.1,
///   note on unknown codes); this includes the reserved CR2 (0x0D).
/// - `ESC ESC` (SS2, escape to a not-yet-defined table) decodes as a space
///   (23.038 §6.2.1 note 1: "display a space"); the following septet is then
///   decoded on its own.
/// - `ESC` as the last octet decodes as a space, by the same note: it can
///   only come from a truncated or badly split message.
/// - An octet above 0x7F is not a septet; it decodes as U+FFFD.
pub fn decode(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut iter = septets.iter().copied().peekable();
    while let Some(b) = iter.next() {
        match b {
            ESCAPE => match iter.peek().copied() {
                Some(ESCAPE) => {
                    iter.next();
                    out.push(' ');
                }
                Some(next) if next < 0x80 => {
                    iter.next();
                    out.push(extension_char(next).unwrap_or_else(|| basic_char(next)));
                }
                // A trailing ESC, or one followed by a non-septet octet which
                // is then decoded by itself.
                _ => out.push(' '),
            },
            s if s < 0x80 => out.push(basic_char(s)),
            _ => out.push(char::REPLACEMENT_CHARACTER),
        }
    }
    out
}

/// The number of fill bits needed after a user data header of `udh_len`
/// octets (UDHL octet included) so the first septet starts on a septet
/// boundary (3GPP TS 23.040 §9.2.3.24). Always in `0..=6`.
pub const fn fill_bits(udh_len: usize) -> u8 {
    // udh_len * 8 mod 7 == udh_len mod 7; the fill tops that up to a multiple of 7.
    // The value is in 0..=6.
    #[allow(clippy::cast_possible_truncation)]
    let fill = ((7 - udh_len % 7) % 7) as u8;
    fill
}

/// The number of septets a user data header of `udh_len` octets (UDHL
/// included) occupies in the 160-septet budget, fill bits included
/// (3GPP TS 23.040 §9.2.3.16): e.g. 6 octets → 7 septets, 7 → 8.
pub const fn udh_septets(udh_len: usize) -> usize {
    (udh_len * 8).div_ceil(7)
}

/// Packs septets into octets, LSB first (3GPP TS 23.038 §6.1.2.1), after
/// `fill_bits` leading zero bits (use [`fill_bits`] after a UDH; 0 without
/// one). Spare bits in the last octet are zero, so when exactly 7 bits are
/// spare a receiver that counts septets from the octet length would see a
/// trailing `@`; use [`pack_cr_padded`] for such transports. Only the low 7
/// bits of each input octet are used.
pub fn pack(septets: &[u8], fill_bits: u8) -> Vec<u8> {
    let start = usize::from(fill_bits);
    let total_bits = start + 7 * septets.len();
    let mut out = vec![0u8; total_bits.div_ceil(8)];
    for (i, &s) in septets.iter().enumerate() {
        let bit = start + 7 * i;
        let shifted = u16::from(s & 0x7F) << (bit % 8);
        let [lo, hi] = shifted.to_le_bytes();
        if let Some(o) = out.get_mut(bit / 8) {
            *o |= lo;
        }
        // The high byte is zero, and may be past the end, for the last septet.
        if let Some(o) = out.get_mut(bit / 8 + 1) {
            *o |= hi;
        }
    }
    out
}

/// Like [`pack`], but when the last octet would have exactly 7 spare bits
/// they hold a CR instead of zeros, so they cannot be read as `@`
/// (3GPP TS 23.038 §6.1.2.3.1). [`unpack_all`] removes that CR again.
pub fn pack_cr_padded(septets: &[u8], fill_bits: u8) -> Vec<u8> {
    let bits = usize::from(fill_bits) + 7 * septets.len();
    if bits % 8 == 1 {
        let mut padded = Vec::with_capacity(septets.len() + 1);
        padded.extend_from_slice(septets);
        padded.push(CR);
        pack(&padded, fill_bits)
    } else {
        pack(septets, fill_bits)
    }
}

fn septet_at(packed: &[u8], bit: usize) -> u8 {
    let lo = packed.get(bit / 8).copied().unwrap_or(0);
    let hi = packed.get(bit / 8 + 1).copied().unwrap_or(0);
    let word = u16::from_le_bytes([lo, hi]) >> (bit % 8);
    (word & 0x7F) as u8
}

/// Unpacks exactly `count` septets that start after `fill_bits` bits, as
/// when the count is known from TP-UDL (3GPP TS 23.040 §9.2.3.16).
///
/// # Errors
/// [`TextError::SeptetsOutOfRange`] if `packed` is too short for `count`.
pub fn unpack(packed: &[u8], fill_bits: u8, count: usize) -> Result<Vec<u8>, TextError> {
    let available = available_septets(packed, fill_bits);
    if count > available {
        return Err(TextError::SeptetsOutOfRange {
            requested: count,
            available,
        });
    }
    let start = usize::from(fill_bits);
    Ok((0..count)
        .map(|i| septet_at(packed, start + 7 * i))
        .collect())
}

fn available_septets(packed: &[u8], fill_bits: u8) -> usize {
    (packed.len() * 8).saturating_sub(usize::from(fill_bits)) / 7
}

/// Unpacks every whole septet in `packed` after `fill_bits` bits, for
/// transports that give only an octet length (SMPP `sm_length`).
///
/// When the last septet ends exactly on the last octet's boundary and is a
/// CR, it is taken as padding and dropped (3GPP TS 23.038 §6.1.2.3.1, the
/// receiver rule matching [`pack_cr_padded`]). That rule is ambiguous by
/// design: a text that really ends in CR at that position loses it, and 7
/// zero pad bits from a sender that did not CR-pad come out as a final `@`.
/// Use [`unpack`] when the septet count is known.
pub fn unpack_all(packed: &[u8], fill_bits: u8) -> Vec<u8> {
    let bits = (packed.len() * 8).saturating_sub(usize::from(fill_bits));
    let start = usize::from(fill_bits);
    let mut out: Vec<u8> = (0..bits / 7)
        .map(|i| septet_at(packed, start + 7 * i))
        .collect();
    if bits % 7 == 0 && out.last() == Some(&CR) {
        out.pop();
    }
    out
}
