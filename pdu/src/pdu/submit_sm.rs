//! submit_sm (SMPP 3.4 §4.4) and deliver_sm (§4.6), and their responses. The two requests share
//! one wire layout; they are distinct types because their rules differ (deliver_sm leaves the
//! scheduling fields NULL and uses `esm_class` to mark receipts).

use crate::tlv::Tlvs;
use crate::types::{COctetString, ShortMessage, SmppTime};

macro_rules! short_message_body {
    ($(#[$meta:meta])* $name:ident) => {
        body! {
            $(#[$meta])*
            pub struct $name {
                /// The SMS application service (max 6 with NUL); empty for the default.
                service_type: COctetString<6, B>,
                /// Type of number of `source_addr` (SMPP 3.4 §5.2.5).
                source_addr_ton: u8,
                /// Numbering plan of `source_addr` (SMPP 3.4 §5.2.6).
                source_addr_npi: u8,
                /// Originator address (max 21 with NUL).
                source_addr: COctetString<21, B>,
                /// Type of number of `destination_addr`.
                dest_addr_ton: u8,
                /// Numbering plan of `destination_addr`.
                dest_addr_npi: u8,
                /// Recipient address (max 21 with NUL).
                destination_addr: COctetString<21, B>,
                /// Message mode and type (SMPP 3.4 §5.2.12): 0x40 UDHI, 0x04 delivery receipt.
                esm_class: u8,
                /// GSM protocol identifier (3GPP TS 23.040 TP-PID).
                protocol_id: u8,
                /// Priority level, 0 (lowest) to 3.
                priority_flag: u8,
                /// Absolute or relative time to deliver (empty, or 16 characters).
                schedule_delivery_time: SmppTime<B>,
                /// Expiry time (empty, or 16 characters).
                validity_period: SmppTime<B>,
                /// Whether a delivery receipt is requested (SMPP 3.4 §5.2.17).
                registered_delivery: u8,
                /// Whether to replace a pending message with the same source, destination and
                /// service_type.
                replace_if_present_flag: u8,
                /// Encoding of `short_message` (SMPP 3.4 §5.2.19): 0 default, 8 UCS-2, …
                data_coding: u8,
                /// Index of a canned message, 0 for none.
                sm_default_msg_id: u8,
                /// Up to 254 octets of user data; `sm_length` is always derived from it.
                short_message: ShortMessage<B>,
                /// Optional parameters (SAR, `message_payload`, `receipted_message_id`, …).
                tlvs: Tlvs<B>,
            }
        }
    };
}

short_message_body! {
    /// submit_sm (SMPP 3.4 §4.4.1): an ESME submits one short message to the SMSC.
    SubmitSm
}

short_message_body! {
    /// deliver_sm (SMPP 3.4 §4.6.1): the SMSC delivers a mobile-originated message or a delivery
    /// receipt (`esm_class` bit 0x04) to the ESME.
    DeliverSm
}

body! {
    /// submit_sm_resp (SMPP 3.4 §4.4.2). On an error status the body may be absent, which
    /// decodes as an empty `message_id`.
    pub struct SubmitSmResp {
        /// The SMSC's id for the message (max 65 with NUL).
        message_id: COctetString<65, B>,
        /// Optional parameters (none in 3.4; SMPP 5.0 peers may add some).
        tlvs: Tlvs<B>,
    }
}

body! {
    /// deliver_sm_resp (SMPP 3.4 §4.6.2). `message_id` is unused and set to NULL; some SMSCs and
    /// ESMEs omit the body entirely, which decodes the same.
    pub struct DeliverSmResp {
        /// Unused (NULL).
        message_id: COctetString<65, B>,
        /// Optional parameters (none in 3.4; SMPP 5.0 peers may add some).
        tlvs: Tlvs<B>,
    }
}

/// `esm_class` bits (SMPP 3.4 §5.2.12).
pub mod esm_class {
    /// Bits 5–2: the message type.
    pub const MESSAGE_TYPE_MASK: u8 = 0x3C;
    /// Message type: SMSC delivery receipt.
    pub const DELIVERY_RECEIPT: u8 = 0x04;
    /// Message type: SME delivery acknowledgement.
    pub const DELIVERY_ACK: u8 = 0x08;
    /// Message type: SME manual/user acknowledgement.
    pub const USER_ACK: u8 = 0x10;
    /// Message type: intermediate delivery notification.
    pub const INTERMEDIATE_NOTIFICATION: u8 = 0x20;
    /// GSM feature: the short message starts with a User Data Header.
    pub const UDHI: u8 = 0x40;
    /// GSM feature: reply path.
    pub const REPLY_PATH: u8 = 0x80;
}

impl SubmitSm {
    /// Puts one part of [`text::split`](crate::text::split)'s output into this submit_sm: its
    /// octets in `short_message` (or the `message_payload` TLV), the UDHI bit, `data_coding`,
    /// and the SAR TLVs when the part has them. Other fields are left as they are.
    ///
    /// # Errors
    /// When the part is too long for where it goes (only if it was not made by `split`).
    pub fn apply_segment(
        &mut self,
        segment: &crate::text::Segment,
    ) -> Result<(), crate::ValueError> {
        let octets = bytes::Bytes::copy_from_slice(&segment.short_message);
        if segment.message_payload {
            self.tlvs.set_message_payload(octets)?;
            self.short_message = ShortMessage::empty();
        } else {
            self.short_message = ShortMessage::new(octets)?;
        }
        self.esm_class = (self.esm_class & !esm_class::UDHI) | segment.esm_class_bits();
        self.data_coding = segment.data_coding;
        if let Some(sar) = segment.sar {
            self.tlvs.set_sar_msg_ref_num(sar.msg_ref_num);
            self.tlvs.set_sar_total_segments(sar.total_segments);
            self.tlvs.set_sar_segment_seqnum(sar.segment_seqnum);
        }
        Ok(())
    }
}

impl DeliverSm {
    /// Whether this deliver_sm reports on an earlier submission (a delivery receipt, an
    /// acknowledgement or an intermediate notification) rather than carrying a mobile-originated
    /// message: by its `esm_class` message type, or by a `receipted_message_id`, which some SMSCs
    /// send without setting the type bits.
    pub fn is_receipt(&self) -> bool {
        self.esm_class & esm_class::MESSAGE_TYPE_MASK != 0
            || self.tlvs.receipted_message_id().is_some()
    }

    /// The receipt this deliver_sm carries: its text (from `short_message`, or from
    /// `message_payload` when the short message is empty) merged with the
    /// `receipted_message_id` and `message_state` TLVs.
    ///
    /// # Errors
    /// When neither the text nor the TLVs give an id and a state.
    pub fn receipt(&self) -> Result<crate::receipt::Receipt, crate::receipt::ReceiptError> {
        let text = match self.tlvs.message_payload() {
            Some(payload) if self.short_message.is_empty() => &payload[..],
            _ => self.short_message.as_bytes(),
        };
        crate::receipt::Receipt::from_deliver_sm(
            text,
            self.tlvs.receipted_message_id(),
            self.tlvs.message_state(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::MessageState;

    #[test]
    fn receipts_are_told_apart_from_mobile_originated_messages() {
        let mo = DeliverSm {
            short_message: ShortMessage::new(&b"STOP"[..]).unwrap(),
            ..DeliverSm::default()
        };
        assert!(!mo.is_receipt());

        let mut by_tlv = mo.clone();
        by_tlv.tlvs.set_receipted_message_id(b"5A01").unwrap();
        assert!(by_tlv.is_receipt());

        let receipt = DeliverSm {
            esm_class: esm_class::DELIVERY_RECEIPT,
            short_message: ShortMessage::new(
                &b"id:5A01 sub:001 dlvrd:001 submit date:2611261200 done date:2611261201 \
                   stat:DELIVRD err:000 text:Fee due"[..],
            )
            .unwrap(),
            ..DeliverSm::default()
        };
        assert!(receipt.is_receipt());
        let parsed = receipt.receipt().unwrap();
        assert_eq!(parsed.id, "5A01");
        assert_eq!(parsed.state, Some(MessageState::Delivered));
    }

    #[test]
    fn segments_apply_to_submit_sm_in_each_concatenation_mode() {
        use crate::text::{Concatenation, SplitOptions, split};
        let text = "x".repeat(200);

        let parts = split(
            &text,
            &SplitOptions::new(Concatenation::Udh8 { reference: 7 }),
        )
        .unwrap();
        let mut submit = SubmitSm {
            esm_class: 0x03,
            ..SubmitSm::default()
        };
        submit.apply_segment(&parts[1]).unwrap();
        assert_eq!(submit.esm_class, 0x43, "UDHI set, messaging mode kept");
        assert_eq!(&submit.short_message.as_bytes()[..6], &[5, 0, 3, 7, 2, 2]);

        let parts = split(
            &text,
            &SplitOptions::new(Concatenation::Sar { reference: 0x0102 }),
        )
        .unwrap();
        let mut submit = SubmitSm::default();
        submit.apply_segment(&parts[0]).unwrap();
        assert_eq!(submit.esm_class, 0);
        assert_eq!(submit.tlvs.sar_msg_ref_num(), Some(0x0102));
        assert_eq!(submit.tlvs.sar_total_segments(), Some(2));
        assert_eq!(submit.tlvs.sar_segment_seqnum(), Some(1));
        assert_eq!(submit.short_message.len(), 153);

        let parts = split(&text, &SplitOptions::new(Concatenation::MessagePayload)).unwrap();
        let mut submit = SubmitSm::default();
        submit.apply_segment(&parts[0]).unwrap();
        assert!(submit.short_message.is_empty());
        assert_eq!(submit.tlvs.message_payload().map(|p| p.len()), Some(200));
    }

    #[test]
    fn receipt_tlvs_override_the_text() {
        let mut receipt = DeliverSm {
            esm_class: esm_class::DELIVERY_RECEIPT,
            ..Default::default()
        };
        receipt.tlvs.set_receipted_message_id(b"77").unwrap();
        receipt
            .tlvs
            .set_message_state(MessageState::Undeliverable.as_u8());
        let parsed = receipt.receipt().unwrap();
        assert_eq!(parsed.id, "77");
        assert_eq!(parsed.state, Some(MessageState::Undeliverable));
    }
}
