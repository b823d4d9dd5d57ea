//! Building the deliver_sm PDUs the simulator originates: delivery receipts (esm_class 0x04,
//! SMPP 3.4 Appendix B text plus the `receipted_message_id` and `message_state` TLVs) and
//! mobile-originated messages (esm_class 0).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sairex_pdu::receipt::{MessageState, Receipt, ReceiptDate};
use sairex_pdu::text::{choose_encoding, concat_udh8};
use sairex_pdu::{COctetString, DeliverSm, NetworkErrorCode, ShortMessage, Tlvs};

use crate::sim::config::FinalState;

/// Which part of a concatenated mobile-originated message to send (see
/// [`SimHandle::send_mo_part`](crate::sim::SimHandle::send_mo_part)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoPart {
    /// The concatenation reference all parts share.
    pub reference: u8,
    /// Parts in all (2 or more).
    pub total: u8,
    /// This part's number, 1-based.
    pub seq: u8,
}

/// `esm_class` of a delivery receipt: message type "SMSC Delivery Receipt" (SMPP 3.4 §5.2.12).
pub(crate) const ESM_CLASS_RECEIPT: u8 = 0x04;
/// `esm_class` UDHI: the short message begins with a user data header (SMPP 3.4 §5.2.12).
const ESM_CLASS_UDHI: u8 = 0x40;
/// `network_error_code` network type for GSM (SMPP 3.4 §5.3.2.31).
const NETWORK_TYPE_GSM: u8 = 3;

/// What a receipt needs to know about the message it reports on.
#[derive(Debug, Clone)]
pub(crate) struct ReceiptSource {
    /// The id given in the submit response.
    pub message_id: String,
    /// The submit's source: the receipt's destination.
    pub source_addr: Bytes,
    /// Its TON / NPI.
    pub source_ton_npi: (u8, u8),
    /// The submit's destination: the receipt's source.
    pub destination_addr: Bytes,
    /// Its TON / NPI.
    pub dest_ton_npi: (u8, u8),
    /// The submitted user data (short_message, or message_payload when that is empty).
    pub text: Bytes,
    /// When the submit arrived.
    pub submitted_at: SystemTime,
}

/// The delivery receipt text of SMPP 3.4 Appendix B:
/// `id:IIIIIIIIII sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD
/// err:000 text:…`, dates in UTC, `text` the first 20 characters of the original message, as
/// formatted by [`sairex_pdu::receipt::Receipt::format`].
pub(crate) fn format_receipt_text(
    message_id: &str,
    submit_date: SystemTime,
    done_date: SystemTime,
    state: FinalState,
    text: &[u8],
) -> Vec<u8> {
    let delivered = u32::from(state == FinalState::Delivered);
    Receipt {
        id: message_id.to_owned(),
        sub: Some(1),
        dlvrd: Some(delivered),
        submit_date: receipt_date(submit_date),
        done_date: receipt_date(done_date),
        stat: state.stat().to_owned(),
        state: MessageState::from_u8(state.message_state()),
        err: Some(format!("{:03}", state.error_code())),
        text: text.to_vec(),
    }
    .format()
}

/// A receipt deliver_sm for `source` in `state`, dated `done`.
pub(crate) fn build_receipt(
    source: &ReceiptSource,
    state: FinalState,
    done: SystemTime,
) -> DeliverSm {
    let text = format_receipt_text(
        &source.message_id,
        source.submitted_at,
        done,
        state,
        &source.text,
    );
    let mut tlvs = Tlvs::new();
    // A message id longer than the TLV allows cannot come from our own id formats; if it ever
    // did, the receipt would still carry the id in its text.
    let _ = tlvs.set_receipted_message_id(source.message_id.as_bytes());
    tlvs.set_message_state(state.message_state());
    if state != FinalState::Delivered {
        tlvs.set_network_error_code(NetworkErrorCode {
            network_type: NETWORK_TYPE_GSM,
            error_code: state.error_code(),
        });
    }
    DeliverSm {
        source_addr_ton: source.dest_ton_npi.0,
        source_addr_npi: source.dest_ton_npi.1,
        source_addr: address(&source.destination_addr),
        dest_addr_ton: source.source_ton_npi.0,
        dest_addr_npi: source.source_ton_npi.1,
        destination_addr: address(&source.source_addr),
        esm_class: ESM_CLASS_RECEIPT,
        // Appendix B text is short (about 130 octets + 20 of text), always under 254.
        short_message: ShortMessage::new(text).unwrap_or_default(),
        tlvs,
        ..DeliverSm::default()
    }
}

/// A mobile-originated deliver_sm: GSM 03.38 (data_coding 0, unpacked) when every character
/// fits, else UCS-2 (data_coding 8); text longer than 254 octets goes in `message_payload`.
pub(crate) fn build_mo(from: COctetString<21>, to: COctetString<21>, text: &str) -> DeliverSm {
    build_mo_with_udh(from, to, &[], text)
}

/// One part of a concatenated MO: the 8-bit-reference concatenation UDH (`05 00 03 ref total
/// seq`), then the part's text; esm_class UDHI (0x40).
pub(crate) fn build_mo_part(
    from: COctetString<21>,
    to: COctetString<21>,
    part: MoPart,
    text: &str,
) -> DeliverSm {
    let udh = concat_udh8(part.reference, part.total, part.seq);
    DeliverSm {
        esm_class: ESM_CLASS_UDHI,
        ..build_mo_with_udh(from, to, &udh, text)
    }
}

fn build_mo_with_udh(
    from: COctetString<21>,
    to: COctetString<21>,
    udh: &[u8],
    text: &str,
) -> DeliverSm {
    let encoding = choose_encoding(text);
    // choose_encoding picks GSM-7 only when every character fits, and UCS-2 encodes any text.
    let mut bytes = udh.to_vec();
    bytes.extend(encoding.encode(text).unwrap_or_default());
    let bytes = Bytes::from(bytes);
    let data_coding = encoding.data_coding();
    let mut tlvs = Tlvs::new();
    let short_message = match ShortMessage::new(bytes.clone()) {
        Ok(sm) => sm,
        Err(_) => {
            let _ = tlvs.set_message_payload(bytes);
            ShortMessage::empty()
        }
    };
    DeliverSm {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: from,
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: to,
        esm_class: 0,
        data_coding,
        short_message,
        tlvs,
        ..DeliverSm::default()
    }
}

/// An address for a deliver_sm field; one that does not fit (data_sm allows 64 characters,
/// deliver_sm 20) is cut to 20.
fn address(bytes: &Bytes) -> COctetString<21> {
    let cut = bytes.slice(..bytes.len().min(20));
    COctetString::new(cut).unwrap_or_default()
}

/// `t` as an Appendix B date (`YYMMDDhhmm`, UTC).
pub(crate) fn receipt_date(t: SystemTime) -> Option<ReceiptDate> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let two = |v: i64| u8::try_from(v).ok();
    ReceiptDate::new(
        two(year.rem_euclid(100))?,
        two(i64::from(month))?,
        two(i64::from(day))?,
        two(i64::try_from(rem / 3600).ok()?)?,
        two(i64::try_from((rem % 3600) / 60).ok()?)?,
        None,
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn dates_are_utc_yymmddhhmm() {
        let date = |secs| receipt_date(at(secs)).unwrap().to_string();
        assert_eq!(date(0), "7001010000");
        // 2024-02-29 23:59:59 UTC: a leap day.
        assert_eq!(date(1_709_251_199), "2402292359");
        // 2000-03-01 00:00 UTC.
        assert_eq!(date(951_868_800), "0003010000");
    }

    #[test]
    fn receipt_text_follows_appendix_b() {
        let text = format_receipt_text(
            "0000002a",
            at(1_709_251_199),
            at(1_709_251_260),
            FinalState::Delivered,
            b"Hello world, this is longer than twenty",
        );
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "id:0000002a sub:001 dlvrd:001 submit date:2402292359 done date:2403010001 \
             stat:DELIVRD err:000 text:Hello world, this is"
        );
        let text = format_receipt_text("7", at(0), at(0), FinalState::Rejected, b"");
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "id:7 sub:001 dlvrd:000 submit date:7001010000 done date:7001010000 stat:REJECTD \
             err:003 text:"
        );
    }

    #[test]
    fn receipt_swaps_addresses_and_carries_the_tlvs() {
        let source = ReceiptSource {
            message_id: "abc".into(),
            source_addr: Bytes::from_static(b"Sairex"),
            source_ton_npi: (5, 0),
            destination_addr: Bytes::from_static(b"923001234567"),
            dest_ton_npi: (1, 1),
            text: Bytes::from_static(b"hi"),
            submitted_at: at(0),
        };
        let dsm = build_receipt(&source, FinalState::Undeliverable, at(60));
        assert_eq!(dsm.esm_class, ESM_CLASS_RECEIPT);
        assert_eq!(dsm.source_addr.as_bytes(), b"923001234567");
        assert_eq!(dsm.destination_addr.as_bytes(), b"Sairex");
        assert_eq!((dsm.dest_addr_ton, dsm.dest_addr_npi), (5, 0));
        assert_eq!(dsm.tlvs.receipted_message_id(), Some(&b"abc"[..]));
        assert_eq!(dsm.tlvs.message_state(), Some(5));
        assert!(dsm.tlvs.network_error_code().is_some());
    }

    #[test]
    fn mo_picks_ucs2_for_non_ascii() {
        let from = COctetString::new(&b"923001234567"[..]).unwrap();
        let to = COctetString::new(&b"8001"[..]).unwrap();
        let ascii = build_mo(from.clone(), to.clone(), "STOP");
        assert_eq!(
            (ascii.data_coding, ascii.short_message.as_bytes()),
            (0, &b"STOP"[..])
        );
        let urdu = build_mo(from, to, "شکریہ");
        assert_eq!(urdu.data_coding, 8);
        assert_eq!(urdu.short_message.len(), 10);
    }

    #[test]
    fn a_mo_part_carries_the_concatenation_udh_before_its_text() {
        let from = COctetString::new(&b"923001234567"[..]).unwrap();
        let to = COctetString::new(&b"8001"[..]).unwrap();
        let part = MoPart {
            reference: 7,
            total: 3,
            seq: 2,
        };
        let d = build_mo_part(from, to, part, "world");
        assert_eq!(d.esm_class, 0x40);
        let ud = sairex_pdu::text::parse_udh(d.short_message.as_bytes()).unwrap();
        let concat = ud.concat.unwrap();
        assert_eq!((concat.reference, concat.total, concat.seq), (7, 3, 2));
        assert_eq!(ud.payload, b"world");
    }
}
