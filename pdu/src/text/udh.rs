//! User data headers for concatenated SMS (3GPP TS 23.040 §9.2.3.24).

use super::{TextError, gsm7};

/// IEI of the concatenation element with an 8-bit reference (23.040 §9.2.3.24.1).
const IEI_CONCAT_8: u8 = 0x00;
/// IEI of the concatenation element with a 16-bit reference (23.040 §9.2.3.24.8).
const IEI_CONCAT_16: u8 = 0x08;

/// The 6-octet UDH `05 00 03 ref total seq` (UDHL included) for part `seq`
/// of `total` with an 8-bit reference.
pub const fn concat_udh8(reference: u8, total: u8, seq: u8) -> [u8; 6] {
    [0x05, IEI_CONCAT_8, 0x03, reference, total, seq]
}

/// The 7-octet UDH `06 08 04 refhi reflo total seq` (UDHL included) for part
/// `seq` of `total` with a 16-bit reference.
pub const fn concat_udh16(reference: u16, total: u8, seq: u8) -> [u8; 7] {
    let [hi, lo] = reference.to_be_bytes();
    [0x06, IEI_CONCAT_16, 0x04, hi, lo, total, seq]
}

/// Concatenation information from a UDH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConcatInfo {
    /// The message reference shared by all parts (an 8-bit one widened).
    pub reference: u16,
    /// Total number of parts (1..=255).
    pub total: u8,
    /// This part's sequence number (1..=`total`).
    pub seq: u8,
    /// True when the reference came from the 16-bit element (IEI 0x08);
    /// an 8-bit and a 16-bit reference of equal value are different messages.
    pub wide_reference: bool,
}

/// A `short_message` split into its UDH and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserData<'a> {
    /// Octets taken by the header, UDHL octet included.
    pub header_len: usize,
    /// The concatenation element, if the header has a valid one.
    pub concat: Option<ConcatInfo>,
    /// The message body after the header.
    pub payload: &'a [u8],
}

impl UserData<'_> {
    /// The fill bits before the first septet when the payload is packed
    /// GSM 7-bit (3GPP TS 23.040 §9.2.3.24); pass to [`gsm7::unpack_all`].
    pub const fn fill_bits(&self) -> u8 {
        gsm7::fill_bits(self.header_len)
    }
}

fn malformed(reason: &'static str) -> TextError {
    TextError::MalformedUdh { reason }
}

/// Parses the UDH at the start of a `short_message` whose `esm_class` has
/// UDHI (0x40) set, returning the concatenation element and the payload.
///
/// Other information elements are skipped. Following 23.040 §9.2.3.24, a
/// repeated concatenation element is resolved by taking the last one, and a
/// concatenation element whose total is 0 or whose sequence number is 0 or
/// above the total is ignored (`concat` is `None`).
///
/// # Errors
/// [`TextError::MalformedUdh`] when the input is empty, UDHL runs past the
/// end, an element runs past the header, or a concatenation element has the
/// wrong length.
pub fn parse_udh(short_message: &[u8]) -> Result<UserData<'_>, TextError> {
    let (&udhl, rest) = short_message
        .split_first()
        .ok_or_else(|| malformed("empty short_message has no UDHL"))?;
    let udhl = usize::from(udhl);
    if udhl > rest.len() {
        return Err(malformed("UDHL runs past the end of short_message"));
    }
    let (mut header, payload) = rest.split_at(udhl);
    let mut concat = None;
    while let Some((&iei, after_iei)) = header.split_first() {
        let (&iedl, after_len) = after_iei
            .split_first()
            .ok_or_else(|| malformed("information element has no length octet"))?;
        let iedl = usize::from(iedl);
        if iedl > after_len.len() {
            return Err(malformed("information element runs past the UDH"));
        }
        let (data, next) = after_len.split_at(iedl);
        header = next;
        let found = match (iei, data) {
            (IEI_CONCAT_8, &[reference, total, seq]) => Some(ConcatInfo {
                reference: u16::from(reference),
                total,
                seq,
                wide_reference: false,
            }),
            (IEI_CONCAT_16, &[hi, lo, total, seq]) => Some(ConcatInfo {
                reference: u16::from_be_bytes([hi, lo]),
                total,
                seq,
                wide_reference: true,
            }),
            (IEI_CONCAT_8, _) => {
                return Err(malformed("8-bit concatenation element is not 3 octets"));
            }
            (IEI_CONCAT_16, _) => {
                return Err(malformed("16-bit concatenation element is not 4 octets"));
            }
            _ => continue,
        };
        // The last occurrence wins; an invalid one also clears an earlier one,
        // since the sender's last word on concatenation is unusable.
        concat = found.filter(|c| c.total != 0 && c.seq != 0 && c.seq <= c.total);
    }
    Ok(UserData {
        header_len: udhl + 1,
        concat,
        payload,
    })
}
