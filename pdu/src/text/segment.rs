//! Segment counting and splitting for concatenated SMS.
//!
//! Capacities come from the 140-octet TP-UD (3GPP TS 23.040 §9.2.3.24): 160
//! septets, 70 UCS-2 code units or 140 octets in one part. In a multipart
//! message the UDH takes 6 octets (8-bit reference: 7 septets with the fill
//! bit) or 7 octets (16-bit reference: 8 septets), leaving 153 / 152 septets,
//! 67 / 66 code units or 134 / 133 octets. A GSM escape sequence and a UTF-16
//! surrogate pair are never split, so a part can hold one unit less.

use std::ops::Range;

use super::{Encoding, TextError, choose_encoding, concat_udh8, concat_udh16, gsm7, ucs2};

/// Most parts a concatenated message can have: the total is one octet.
pub const MAX_SEGMENTS: usize = 255;

/// Most octets the `message_payload` TLV can carry (SMPP 3.4 §5.3.2.32).
pub const MAX_MESSAGE_PAYLOAD: usize = 65535;

/// The `esm_class` bit that says `short_message` starts with a UDH
/// (SMPP 3.4 §5.2.12, "UDHI Indicator").
pub const ESM_CLASS_UDHI: u8 = 0x40;

/// TP-UD size in octets (3GPP TS 23.040 §9.2.3.24).
const TP_UD_OCTETS: usize = 140;
/// Length of the 8-bit-reference concatenation UDH, UDHL included.
const UDH8_LEN: usize = 6;
/// Length of the 16-bit-reference concatenation UDH, UDHL included.
const UDH16_LEN: usize = 7;

/// How the parts of a long message are tied together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Concatenation {
    /// A UDH with the 8-bit reference element (IEI 0x00) in each part.
    Udh8 {
        /// Reference shared by all parts.
        reference: u8,
    },
    /// A UDH with the 16-bit reference element (IEI 0x08) in each part; one
    /// more UDH octet, so one septet / code unit less per part.
    Udh16 {
        /// Reference shared by all parts.
        reference: u16,
    },
    /// SMPP `sar_*` TLVs (SMPP 3.4 §5.3.2.22–24); the body has no UDH and the
    /// SMSC builds one. Parts are sized as for [`Concatenation::Udh8`], as
    /// SMSCs commonly emit the 8-bit element.
    Sar {
        /// The `sar_msg_ref_num` shared by all parts.
        reference: u16,
    },
    /// The whole message in one `message_payload` TLV (SMPP 3.4 §5.3.2.32),
    /// unsplit; the SMSC segments it.
    MessagePayload,
}

impl Concatenation {
    /// Per-part capacity of a multipart message, in the encoding's units.
    fn multipart_capacity(self, encoding: Encoding) -> usize {
        let udh_len = match self {
            Self::Udh16 { .. } => UDH16_LEN,
            Self::Udh8 { .. } | Self::Sar { .. } | Self::MessagePayload => UDH8_LEN,
        };
        match encoding {
            Encoding::Gsm7 => 160 - gsm7::udh_septets(udh_len),
            Encoding::Ucs2 => (TP_UD_OCTETS - udh_len) / 2,
            Encoding::Latin1 => TP_UD_OCTETS - udh_len,
        }
    }
}

/// Whether GSM 7-bit parts are sent one septet per octet or packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gsm7Packing {
    /// One septet per octet: the SMPP norm for `data_coding` 0.
    #[default]
    Unpacked,
    /// Packed 7-bit (3GPP TS 23.038 §6.1.2.1) with fill bits after the UDH,
    /// for SMSCs that expect it. Since SMPP only gives an octet length, 7
    /// spare bits at the end are padded with CR ([`gsm7::pack_cr_padded`]);
    /// for SAR parts the fill is 0, as the body carries no UDH.
    Packed,
}

/// Options for [`split`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SplitOptions {
    /// The encoding to use; `None` means [`choose_encoding`].
    pub encoding: Option<Encoding>,
    /// How parts are tied together.
    pub concatenation: Concatenation,
    /// GSM 7-bit packing (ignored for other encodings).
    pub packing: Gsm7Packing,
}

impl SplitOptions {
    /// Automatic encoding, unpacked GSM, and the given concatenation.
    pub const fn new(concatenation: Concatenation) -> Self {
        Self {
            encoding: None,
            concatenation,
            packing: Gsm7Packing::Unpacked,
        }
    }

    /// Forces an encoding.
    #[must_use]
    pub const fn with_encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = Some(encoding);
        self
    }

    /// Sets GSM 7-bit packing.
    #[must_use]
    pub const fn with_packing(mut self, packing: Gsm7Packing) -> Self {
        self.packing = packing;
        self
    }
}

/// What a text costs to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentCount {
    /// The encoding counted in.
    pub encoding: Encoding,
    /// Septets (GSM, escapes count two), UTF-16 code units (UCS-2) or
    /// octets (Latin-1) of the whole text, without UDHs.
    pub units: usize,
    /// Number of parts (1 for an empty text: one empty message is still sent).
    pub segments: usize,
}

/// The SAR TLV values for one part (SMPP 3.4 §5.3.2.22–24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SarInfo {
    /// `sar_msg_ref_num`.
    pub msg_ref_num: u16,
    /// `sar_total_segments`.
    pub total_segments: u8,
    /// `sar_segment_seqnum`, from 1.
    pub segment_seqnum: u8,
}

/// One part ready for a `submit_sm`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Segment {
    /// The `short_message` octets, UDH first when [`Segment::udhi`] is set.
    /// With [`Concatenation::MessagePayload`] these are the `message_payload`
    /// TLV value instead, and `short_message` should be empty.
    pub short_message: Vec<u8>,
    /// True when the octets belong in the `message_payload` TLV
    /// ([`Concatenation::MessagePayload`]).
    pub message_payload: bool,
    /// True when `esm_class` must have UDHI (0x40) set.
    pub udhi: bool,
    /// The `data_coding` value.
    pub data_coding: u8,
    /// SAR TLV values, with [`Concatenation::Sar`] and more than one part.
    pub sar: Option<SarInfo>,
}

impl Segment {
    /// The bits to OR into `esm_class`: [`ESM_CLASS_UDHI`] or 0.
    pub const fn esm_class_bits(&self) -> u8 {
        if self.udhi { ESM_CLASS_UDHI } else { 0 }
    }
}

/// Octets per unit: UCS-2 code units are two octets, the rest one.
const fn unit_octets(encoding: Encoding) -> usize {
    match encoding {
        Encoding::Ucs2 => 2,
        Encoding::Gsm7 | Encoding::Latin1 => 1,
    }
}

/// Octets of the character starting at `pos` in encoded (unpacked) `body`,
/// so that an escape sequence or surrogate pair stays together.
fn char_octets(encoding: Encoding, body: &[u8], pos: usize) -> usize {
    match encoding {
        Encoding::Gsm7 if body.get(pos) == Some(&gsm7::ESCAPE) && pos + 1 < body.len() => 2,
        Encoding::Ucs2 if matches!(body.get(pos), Some(0xD8..=0xDB)) && pos + 3 < body.len() => 4,
        Encoding::Ucs2 => 2,
        Encoding::Gsm7 | Encoding::Latin1 => 1,
    }
}

/// Byte ranges of `body` for each part: one part when it fits a single
/// message, else greedy parts of at most `multi` units.
fn part_ranges(encoding: Encoding, body: &[u8], single: usize, multi: usize) -> Vec<Range<usize>> {
    let per_unit = unit_octets(encoding);
    if body.len() / per_unit <= single {
        return std::iter::once(0..body.len()).collect();
    }
    let mut ranges = Vec::with_capacity(body.len() / per_unit / multi + 1);
    let mut start = 0;
    let mut pos = 0;
    while pos < body.len() {
        let width = char_octets(encoding, body, pos);
        if (pos + width - start) / per_unit > multi {
            ranges.push(start..pos);
            start = pos;
        }
        pos += width;
    }
    ranges.push(start..pos);
    ranges
}

fn single_capacity(encoding: Encoding, concatenation: Concatenation) -> usize {
    match (concatenation, encoding) {
        (Concatenation::MessagePayload, _) => usize::MAX,
        (_, Encoding::Gsm7) => 160,
        (_, Encoding::Ucs2) => TP_UD_OCTETS / 2,
        (_, Encoding::Latin1) => TP_UD_OCTETS,
    }
}

fn plan(
    encoding: Encoding,
    body: &[u8],
    concatenation: Concatenation,
) -> (SegmentCount, Vec<Range<usize>>) {
    let ranges = part_ranges(
        encoding,
        body,
        single_capacity(encoding, concatenation),
        concatenation.multipart_capacity(encoding),
    );
    let count = SegmentCount {
        encoding,
        units: body.len() / unit_octets(encoding),
        segments: ranges.len(),
    };
    (count, ranges)
}

/// Encodes with `encoding` when possible, else falls back to UCS-2 (which
/// always succeeds).
fn encode_or_ucs2(encoding: Encoding, text: &str) -> (Encoding, Vec<u8>) {
    match encoding.encode(text) {
        Ok(body) => (encoding, body),
        Err(_) => (Encoding::Ucs2, ucs2::encode(text)),
    }
}

/// Counts parts for `text` in the encoding [`choose_encoding`] picks, sized
/// for an 8-bit-reference UDH (153 septets / 67 code units per part).
/// The count may exceed [`MAX_SEGMENTS`]; [`split`] then fails.
pub fn count_segments(text: &str) -> SegmentCount {
    let (encoding, body) = encode_or_ucs2(choose_encoding(text), text);
    plan(encoding, &body, Concatenation::Udh8 { reference: 0 }).0
}

/// Counts parts for `text` in a given encoding and concatenation (its
/// reference is ignored). [`Concatenation::MessagePayload`] always counts 1.
///
/// # Errors
/// [`TextError::Unencodable`] when `text` does not fit `encoding`.
pub fn count_segments_with(
    text: &str,
    encoding: Encoding,
    concatenation: Concatenation,
) -> Result<SegmentCount, TextError> {
    let body = encoding.encode(text)?;
    Ok(plan(encoding, &body, concatenation).0)
}

fn finish(options: &SplitOptions, encoding: Encoding, body: &[u8], fill_bits: u8) -> Vec<u8> {
    match (encoding, options.packing) {
        (Encoding::Gsm7, Gsm7Packing::Packed) => gsm7::pack_cr_padded(body, fill_bits),
        _ => body.to_vec(),
    }
}

/// Splits `text` into parts for `submit_sm`.
///
/// A text that fits one message gets one part with no UDH and no SAR values
/// whatever the concatenation. Otherwise each part carries the chosen
/// concatenation, with `seq` counting from 1. The number of parts always
/// equals [`count_segments_with`] for the same encoding and concatenation.
///
/// # Errors
/// [`TextError::Unencodable`] when a forced encoding does not fit,
/// [`TextError::TooManySegments`] above 255 parts, and
/// [`TextError::PayloadTooLong`] when a `message_payload` exceeds 65535 octets.
pub fn split(text: &str, options: &SplitOptions) -> Result<Vec<Segment>, TextError> {
    /// The per-part concatenation, once `message_payload` is handled.
    enum Tie {
        Udh8(u8),
        Udh16(u16),
        Sar(u16),
    }

    let encoding = options.encoding.unwrap_or_else(|| choose_encoding(text));
    let body = encoding.encode(text)?;
    let data_coding = encoding.data_coding();
    let tie = match options.concatenation {
        Concatenation::MessagePayload => {
            let payload = finish(options, encoding, &body, 0);
            if payload.len() > MAX_MESSAGE_PAYLOAD {
                return Err(TextError::PayloadTooLong {
                    octets: payload.len(),
                });
            }
            return Ok(vec![Segment {
                short_message: payload,
                message_payload: true,
                udhi: false,
                data_coding,
                sar: None,
            }]);
        }
        Concatenation::Udh8 { reference } => Tie::Udh8(reference),
        Concatenation::Udh16 { reference } => Tie::Udh16(reference),
        Concatenation::Sar { reference } => Tie::Sar(reference),
    };

    let (count, ranges) = plan(encoding, &body, options.concatenation);
    let total = u8::try_from(count.segments).map_err(|_| TextError::TooManySegments {
        segments: count.segments,
    })?;
    if total <= 1 {
        return Ok(vec![Segment {
            short_message: finish(options, encoding, &body, 0),
            message_payload: false,
            udhi: false,
            data_coding,
            sar: None,
        }]);
    }

    let mut parts = Vec::with_capacity(ranges.len());
    for (seq, range) in (1..=total).zip(ranges) {
        let chunk = body.get(range).unwrap_or_default();
        parts.push(match tie {
            Tie::Udh8(reference) => with_udh(
                options,
                encoding,
                &concat_udh8(reference, total, seq),
                chunk,
            ),
            Tie::Udh16(reference) => with_udh(
                options,
                encoding,
                &concat_udh16(reference, total, seq),
                chunk,
            ),
            Tie::Sar(msg_ref_num) => Segment {
                short_message: finish(options, encoding, chunk, 0),
                message_payload: false,
                udhi: false,
                data_coding,
                sar: Some(SarInfo {
                    msg_ref_num,
                    total_segments: total,
                    segment_seqnum: seq,
                }),
            },
        });
    }
    Ok(parts)
}

fn with_udh(options: &SplitOptions, encoding: Encoding, udh: &[u8], chunk: &[u8]) -> Segment {
    let mut short_message = udh.to_vec();
    short_message.extend(finish(options, encoding, chunk, gsm7::fill_bits(udh.len())));
    Segment {
        short_message,
        message_payload: false,
        udhi: true,
        data_coding: encoding.data_coding(),
        sar: None,
    }
}
