//! The deliver_sm we owe a customer: a delivery receipt (SMPP 3.4 Appendix B text with the id
//! we gave, and the `receipted_message_id` and `message_state` TLVs) or an MO.

use bytes::Bytes;
use sairex_pdu::receipt::{MessageState, Receipt, ReceiptDate};
use sairex_pdu::text::{gsm7, ucs2};
use sairex_pdu::{COctetString, DeliverSm, MAX_SHORT_MESSAGE_LEN, ShortMessage, esm_class};
use sairex_store::model::{MessageStatus, Millis};
use sairex_store::{SmppAccount, SmppOwed, SmppOwedKind};

use super::query::message_state;
use super::smpp_time;

/// An address for a 21-octet field: `+` numbers as international (TON 1, NPI 1), digits as
/// unknown (TON 0, NPI 1), anything else as alphanumeric (TON 5, NPI 0).
fn address(text: &str) -> (u8, u8, COctetString<21>) {
    let (ton, npi, digits) = match text.strip_prefix('+') {
        Some(rest) if rest.bytes().all(|b| b.is_ascii_digit()) => (1, 1, rest),
        _ if text.bytes().all(|b| b.is_ascii_digit()) => (0, 1, text),
        _ => (5, 0, text),
    };
    let cut: String = digits
        .chars()
        .filter(char::is_ascii_graphic)
        .take(20)
        .collect();
    (
        ton,
        npi,
        COctetString::from_str_checked(&cut).unwrap_or_default(),
    )
}

fn date(ms: Millis) -> Option<ReceiptDate> {
    let text = smpp_time::format(ms);
    ReceiptDate::parse(text.as_bytes().get(..12)?)
}

/// Appendix B `err:`: 000 for delivered, else a number of ours (the gateway's error codes
/// are text).
fn err_code(owed: &SmppOwed) -> String {
    match owed.status {
        Some(MessageStatus::Delivered) | None => "000".to_owned(),
        Some(MessageStatus::Expired) => "003".to_owned(),
        Some(MessageStatus::Rejected) => "008".to_owned(),
        Some(_) => "005".to_owned(),
    }
}

fn receipt(account: &SmppAccount, owed: &SmppOwed) -> DeliverSm {
    let id = account.receipt_id_format.format(owed.answered_id);
    let state = owed.status.map_or(MessageState::Unknown, message_state);
    let mut r = Receipt::new(id.clone(), state);
    r.submit_date = date(owed.submitted_at);
    r.done_date = date(owed.done_at);
    r.err = Some(err_code(owed));
    // The text field repeats the message's start; kept to characters every alphabet shares.
    r.text = owed
        .body
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
        .collect::<String>()
        .into_bytes();
    let (source_ton, source_npi, source) = address(&owed.to);
    let (dest_ton, dest_npi, dest) = address(&owed.from);
    let mut pdu = DeliverSm {
        source_addr_ton: source_ton,
        source_addr_npi: source_npi,
        source_addr: source,
        dest_addr_ton: dest_ton,
        dest_addr_npi: dest_npi,
        destination_addr: dest,
        esm_class: esm_class::DELIVERY_RECEIPT,
        short_message: ShortMessage::new(Bytes::from(r.format())).unwrap_or_default(),
        ..DeliverSm::default()
    };
    // An id of ours always fits the 65-octet TLV.
    let _ = pdu.tlvs.set_receipted_message_id(id.as_bytes());
    pdu.tlvs.set_message_state(state as u8);
    pdu
}

fn mo(owed: &SmppOwed) -> DeliverSm {
    let (data_coding, octets) = match gsm7::encode(&owed.body) {
        Ok(septets) => (0, septets),
        Err(_) => (8, ucs2::encode(&owed.body)),
    };
    let (source_ton, source_npi, source) = address(&owed.from);
    let (dest_ton, dest_npi, dest) = address(&owed.to);
    let mut pdu = DeliverSm {
        source_addr_ton: source_ton,
        source_addr_npi: source_npi,
        source_addr: source,
        dest_addr_ton: dest_ton,
        dest_addr_npi: dest_npi,
        destination_addr: dest,
        data_coding,
        ..DeliverSm::default()
    };
    if octets.len() <= MAX_SHORT_MESSAGE_LEN {
        pdu.short_message = ShortMessage::new(Bytes::from(octets)).unwrap_or_default();
    } else {
        // Too long for short_message: SMPP 3.4 §5.3.2.32 message_payload carries it whole.
        let _ = pdu.tlvs.set_message_payload(Bytes::from(octets));
    }
    pdu
}

/// The deliver_sm for an owed entry.
pub(crate) fn deliver_sm(account: &SmppAccount, owed: &SmppOwed) -> DeliverSm {
    match owed.kind {
        SmppOwedKind::Receipt => receipt(account, owed),
        SmppOwedKind::Mo => mo(owed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sairex_store::ReceiptIdFormat;

    #[test]
    fn receipt_in_the_accounts_format() {
        let account = SmppAccount {
            receipt_id_format: ReceiptIdFormat::Decimal,
            ..SmppAccount::default()
        };
        let owed = SmppOwed {
            kind: SmppOwedKind::Receipt,
            message_id: 300,
            answered_id: 255,
            status: Some(MessageStatus::Delivered),
            submitted_at: 1_772_355_600_000,
            done_at: 1_772_355_660_000,
            from: "Sairex".into(),
            to: "+923001234567".into(),
            body: "Fee due Friday".into(),
            ..SmppOwed::default()
        };
        let pdu = deliver_sm(&account, &owed);
        assert!(pdu.is_receipt());
        let text = String::from_utf8(pdu.short_message.as_bytes().to_vec()).unwrap();
        assert!(
            text.starts_with("id:255 sub:001 dlvrd:001 submit date:2603010900"),
            "{text}"
        );
        assert!(
            text.contains("stat:DELIVRD err:000 text:Fee due Friday"),
            "{text}"
        );
        assert_eq!(pdu.tlvs.receipted_message_id(), Some(&b"255"[..]));
        assert_eq!(pdu.tlvs.message_state(), Some(2));
        assert_eq!(pdu.source_addr.as_bytes(), b"923001234567");
        assert_eq!(pdu.source_addr_ton, 1);
        let hex = SmppAccount::default();
        let pdu = deliver_sm(&hex, &owed);
        assert_eq!(pdu.tlvs.receipted_message_id(), Some(&b"ff"[..]));
    }

    #[test]
    fn mo_in_gsm_or_ucs2() {
        let owed = SmppOwed {
            kind: SmppOwedKind::Mo,
            from: "+923001234567".into(),
            to: "8080".into(),
            body: "STOP".into(),
            ..SmppOwed::default()
        };
        let pdu = deliver_sm(&SmppAccount::default(), &owed);
        assert!(!pdu.is_receipt());
        assert_eq!(pdu.data_coding, 0);
        assert_eq!(pdu.short_message.as_bytes(), b"STOP");
        let owed = SmppOwed {
            body: "سلام".into(),
            ..owed
        };
        let pdu = deliver_sm(&SmppAccount::default(), &owed);
        assert_eq!(pdu.data_coding, 8);
    }
}
