//! The text of a submitted short message: `short_message` or `message_payload`, a UDH or SAR
//! TLVs read for concatenation, the body decoded by its `data_coding`.

use sairex_pdu::text::{self, TextError, parse_udh};
use sairex_pdu::{CommandStatus, Tlvs, esm_class};

/// Which part of a concatenated message this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    /// The reference all parts share (8-bit references widened).
    pub(crate) reference: u16,
    /// Whether the reference was a 16-bit one (it then names a different message).
    pub(crate) wide: bool,
    pub(crate) total: u8,
    pub(crate) seq: u8,
}

/// A submitted message's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Incoming {
    pub(crate) text: String,
    /// `Some` for one part of several.
    pub(crate) part: Option<Part>,
}

/// Reads the text of a submit.
///
/// # Errors
/// `ESME_RINVESMCLASS` for a UDH that does not parse, `ESME_RINVMSGLEN` for both a
/// `short_message` and a `message_payload`, `ESME_RSUBMITFAIL` for 8-bit data or an alphabet
/// we do not carry (the gateway sends text).
pub(crate) fn read(
    esm: u8,
    data_coding: u8,
    short_message: &[u8],
    tlvs: &Tlvs,
) -> Result<Incoming, CommandStatus> {
    let payload = tlvs.message_payload();
    let octets: &[u8] = match (short_message.is_empty(), payload.as_ref()) {
        (false, Some(_)) => return Err(CommandStatus::ESME_RINVMSGLEN),
        (true, Some(p)) => p.as_ref(),
        (_, None) => short_message,
    };
    let (body, mut part) = if esm & esm_class::UDHI != 0 {
        let user_data = parse_udh(octets).map_err(|_| CommandStatus::ESME_RINVESMCLASS)?;
        let part = user_data.concat.map(|c| Part {
            reference: c.reference,
            wide: c.wide_reference,
            total: c.total,
            seq: c.seq,
        });
        (user_data.payload, part)
    } else {
        (octets, None)
    };
    if part.is_none()
        && let (Some(reference), Some(total), Some(seq)) = (
            tlvs.sar_msg_ref_num(),
            tlvs.sar_total_segments(),
            tlvs.sar_segment_seqnum(),
        )
        && total >= 1
        && (1..=total).contains(&seq)
    {
        part = Some(Part {
            reference,
            wide: true,
            total,
            seq,
        });
    }
    // A "concatenated" message of one part is just a message.
    let part = part.filter(|p| p.total > 1);
    let text = match text::decode(data_coding, body) {
        Ok(t) => t,
        Err(TextError::Binary { .. } | TextError::UnsupportedDataCoding { .. }) => {
            return Err(CommandStatus::ESME_RSUBMITFAIL);
        }
        Err(_) => return Err(CommandStatus::ESME_RINVMSGLEN),
    };
    Ok(Incoming { text, part })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_ucs2_udh_and_sar() {
        let tlvs = Tlvs::default();
        // data_coding 0 is GSM 03.38 septets, one an octet: 0x00 is '@'.
        let gsm = read(0, 0, b"Hello \x00", &tlvs).unwrap();
        assert_eq!(gsm.text, "Hello @");
        let ucs2: Vec<u8> = "سلام".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(read(0, 8, &ucs2, &tlvs).unwrap().text, "سلام");
        let mut udh = vec![0x05, 0x00, 0x03, 0x2A, 0x03, 0x02];
        udh.extend_from_slice(b"part two");
        let p = read(0x40, 0, &udh, &tlvs).unwrap();
        assert_eq!(p.text, "part two");
        assert_eq!(
            p.part,
            Some(Part {
                reference: 0x2A,
                wide: false,
                total: 3,
                seq: 2
            })
        );
        let mut sar = Tlvs::default();
        sar.set_sar_msg_ref_num(7);
        sar.set_sar_total_segments(2);
        sar.set_sar_segment_seqnum(1);
        assert_eq!(read(0, 0, b"a", &sar).unwrap().part.map(|p| p.seq), Some(1));
        assert_eq!(
            read(0x40, 0, &[0x09], &tlvs).unwrap_err(),
            CommandStatus::ESME_RINVESMCLASS
        );
        assert_eq!(
            read(0, 4, b"\x01\x02", &tlvs).unwrap_err(),
            CommandStatus::ESME_RSUBMITFAIL
        );
    }
}
