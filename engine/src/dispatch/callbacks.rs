//! Receipts and inbound messages that arrive outside a provider's connection: the HTTP
//! providers' callbacks, which the API receives. [`CallbackSink`] hands them to the dispatcher
//! on the providers' own event channel, so they take exactly the path of an SMPP provider's
//! deliver_sm: receipts are correlated by (provider, id) and held when early, inbound messages
//! are reassembled, linked to their contact, checked for opt-out keywords, stored, and published
//! for webhooks and the event stream.
//!
//! Each is normalised into the deliver_sm the dispatcher reads (that is its one receipt and
//! inbound path): a receipt as Appendix B text (`id:… stat:… err:…`), an inbound message as its
//! text in GSM 7-bit when it fits (UCS-2 otherwise) with, for one part of a concatenated message,
//! the SAR parameters. The call returns once the dispatcher has stored it (or held it in memory:
//! an early receipt, one part of a message still incomplete), so the API answers the provider
//! only then and a provider that gets an error sends again.

use sairex_pdu::receipt::{MessageState, Receipt};
use sairex_pdu::text::{gsm7, ucs2};
use sairex_pdu::{COctetString, DeliverSm, ShortMessage, esm_class};
use sairex_store::model::Id;
use tokio::time::{Duration, timeout};

use crate::provider::{DeliverAck, DeliverStatus, ProviderEvent, ProviderEvents};

/// How long a callback waits for the dispatcher to store it before it asks the provider to
/// send it again.
pub const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// A delivery receipt reported by a provider's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalReceipt {
    /// The provider record it came through.
    pub provider_id: Id,
    /// The provider's id of the message (or of one part), as its send answer gave it.
    pub provider_msg_id: String,
    /// What became of it.
    pub state: MessageState,
    /// The provider's error code, if any (kept as the message's error code when it failed).
    pub error_code: Option<String>,
}

/// One part of a concatenated inbound message, as the provider numbered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundPart {
    /// The reference all parts share (any text; numbers are used as they are).
    pub reference: String,
    /// How many parts.
    pub total: u8,
    /// This part's number, from 1.
    pub seq: u8,
}

/// A mobile-originated message reported by a provider's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalInbound {
    /// The provider record it came through.
    pub provider_id: Id,
    /// The sender (E.164 with or without `+`, or a short code).
    pub from: String,
    /// The number it was sent to.
    pub to: String,
    /// The text (of this part).
    pub text: String,
    /// For one part of a longer message.
    pub part: Option<InboundPart>,
}

/// Why a callback was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The engine is stopping or gone: the provider should send it again later.
    #[error("the engine is not running")]
    Unavailable,
    /// Storing it failed or took too long: the provider should send it again.
    #[error("not stored; send it again")]
    Retry,
    /// It can never be used (no organization for an inbound message, an unreadable receipt).
    #[error("refused: {0}")]
    Refused(String),
    /// The callback's fields cannot be represented (an address too long, an id not printable).
    #[error("invalid: {0}")]
    Invalid(String),
}

/// The entry point for callbacks: cheap to clone; get one from
/// [`crate::gateway::EngineControl::callbacks`] (or build one over a dispatcher's provider
/// event channel).
#[derive(Debug, Clone)]
pub struct CallbackSink {
    events: ProviderEvents,
}

impl CallbackSink {
    /// A sink over the providers' event channel of a dispatcher.
    pub fn new(events: ProviderEvents) -> Self {
        Self { events }
    }

    /// Applies a receipt: returns once the message's status is written (or the receipt was
    /// held for an id not known yet, or changed nothing).
    ///
    /// # Errors
    /// [`CallbackError`]: `Retry`/`Unavailable` mean the provider should send it again.
    pub async fn receipt(&self, receipt: ExternalReceipt) -> Result<(), CallbackError> {
        let deliver = receipt_pdu(&receipt)?;
        self.deliver(receipt.provider_id, deliver).await
    }

    /// Stores an inbound message (or one part of it): returns once it is stored, or, for a
    /// part of an incomplete message, held until the rest comes.
    ///
    /// # Errors
    /// As [`CallbackSink::receipt`]; `Refused` when no organization takes it.
    pub async fn inbound(&self, message: ExternalInbound) -> Result<(), CallbackError> {
        let deliver = inbound_pdu(&message)?;
        self.deliver(message.provider_id, deliver).await
    }

    async fn deliver(&self, provider_id: Id, deliver: DeliverSm) -> Result<(), CallbackError> {
        let (ack, answer) = DeliverAck::channel();
        self.events
            .send(ProviderEvent::Deliver {
                provider_id,
                deliver: Box::new(deliver),
                ack,
            })
            .await
            .map_err(|_| CallbackError::Unavailable)?;
        match timeout(CALLBACK_TIMEOUT, answer).await {
            Ok(Ok(DeliverStatus::Done)) => Ok(()),
            Ok(Ok(DeliverStatus::Reject)) => Err(CallbackError::Refused(
                "the gateway cannot use it (unknown organization or unreadable)".into(),
            )),
            Ok(Ok(DeliverStatus::Retry) | Err(_)) | Err(_) => Err(CallbackError::Retry),
        }
    }
}

/// TON and address for an address as providers write it: `+` or more than 8 digits is
/// international (the `+` dropped; the dispatcher puts it back), anything else is kept as is.
fn address(raw: &str, what: &str) -> Result<(u8, COctetString<21>), CallbackError> {
    let raw = raw.trim();
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let (ton, value) = if numeric && (raw.starts_with('+') || digits.len() > 8) {
        (1, digits)
    } else {
        (0, raw)
    };
    let value = COctetString::from_str_checked(value)
        .map_err(|_| CallbackError::Invalid(format!("{what}: not an address ({raw:?})")))?;
    Ok((ton, value))
}

fn receipt_pdu(r: &ExternalReceipt) -> Result<DeliverSm, CallbackError> {
    let id = r.provider_msg_id.trim();
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(CallbackError::Invalid(
            "message id: 1 to 64 printable characters".into(),
        ));
    }
    let mut receipt = Receipt::new(id, r.state);
    // Only a word without spaces or colons survives the receipt text.
    receipt.err = r
        .error_code
        .as_deref()
        .map(|e| {
            e.trim()
                .replace(|c: char| c.is_whitespace() || c == ':', "_")
        })
        .filter(|e| !e.is_empty() && e.len() <= 32);
    let short_message = ShortMessage::new(receipt.format())
        .map_err(|_| CallbackError::Invalid("receipt too long".into()))?;
    Ok(DeliverSm {
        esm_class: esm_class::DELIVERY_RECEIPT,
        short_message,
        ..DeliverSm::default()
    })
}

/// A 16-bit SAR reference for a provider's reference: its number when it is one that fits,
/// else a hash of it (FNV-1a folded), stable for all parts.
fn reference(raw: &str) -> u16 {
    if let Ok(n) = raw.trim().parse::<u16>() {
        return n;
    }
    let mut hash: u32 = 0x811c_9dc5;
    for b in raw.trim().bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    let [a, b, c, d] = hash.to_be_bytes();
    u16::from_be_bytes([a ^ c, b ^ d])
}

fn inbound_pdu(m: &ExternalInbound) -> Result<DeliverSm, CallbackError> {
    let (source_ton, source) = address(&m.from, "from")?;
    let (dest_ton, destination) = address(&m.to, "to")?;
    let (data_coding, octets) = match gsm7::encode(&m.text) {
        Ok(septets) => (0u8, septets),
        Err(_) => (8u8, ucs2::encode(&m.text)),
    };
    let mut deliver = DeliverSm {
        source_addr_ton: source_ton,
        source_addr: source,
        dest_addr_ton: dest_ton,
        destination_addr: destination,
        data_coding,
        ..DeliverSm::default()
    };
    if octets.len() <= sairex_pdu::MAX_SHORT_MESSAGE_LEN && !octets.is_empty() {
        deliver.short_message = ShortMessage::new(octets)
            .map_err(|_| CallbackError::Invalid("text too long".into()))?;
    } else if !octets.is_empty() {
        deliver
            .tlvs
            .set_message_payload(octets)
            .map_err(|_| CallbackError::Invalid("text too long".into()))?;
    }
    if let Some(part) = &m.part
        && part.total > 1
    {
        if part.seq == 0 || part.seq > part.total {
            return Err(CallbackError::Invalid(format!(
                "part {} of {}",
                part.seq, part.total
            )));
        }
        deliver.tlvs.set_sar_msg_ref_num(reference(&part.reference));
        deliver.tlvs.set_sar_total_segments(part.total);
        deliver.tlvs.set_sar_segment_seqnum(part.seq);
    }
    Ok(deliver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_reads_back_with_its_error_code() {
        let pdu = receipt_pdu(&ExternalReceipt {
            provider_id: 1,
            provider_msg_id: "SM0123456789abcdef0123456789abcdef".into(),
            state: MessageState::Undeliverable,
            error_code: Some("30003".into()),
        })
        .expect("valid");
        assert!(pdu.is_receipt());
        let r = pdu.receipt().expect("readable");
        assert_eq!(r.id, "SM0123456789abcdef0123456789abcdef");
        assert_eq!(r.state, Some(MessageState::Undeliverable));
        assert_eq!(r.err.as_deref(), Some("30003"));
        assert!(
            receipt_pdu(&ExternalReceipt {
                provider_id: 1,
                provider_msg_id: "has space".into(),
                state: MessageState::Delivered,
                error_code: None,
            })
            .is_err()
        );
    }

    #[test]
    fn inbound_text_survives_both_alphabets_and_long_bodies() {
        for text in [
            "STOP",
            "Fee [paid] €5",
            "شکریہ 👍",
            &"x".repeat(600),
            &"ب".repeat(300),
        ] {
            let pdu = inbound_pdu(&ExternalInbound {
                provider_id: 1,
                from: "+923001234567".into(),
                to: "8080".into(),
                text: text.to_owned(),
                part: None,
            })
            .expect("valid");
            let decoded = crate::dispatch::inbound::decode(&pdu);
            assert_eq!(decoded.text, text);
            assert!(decoded.concat.is_none());
            assert_eq!(pdu.source_addr_ton, 1);
            assert_eq!(pdu.dest_addr_ton, 0);
        }
    }

    #[test]
    fn parts_carry_a_stable_reference() {
        let part = |seq| {
            inbound_pdu(&ExternalInbound {
                provider_id: 1,
                from: "14843472194".into(),
                to: "12192259404".into(),
                text: "a".into(),
                part: Some(InboundPart {
                    reference: "0A1B2C3D".into(),
                    total: 3,
                    seq,
                }),
            })
        };
        let one = crate::dispatch::inbound::decode(&part(1).expect("valid"));
        let three = crate::dispatch::inbound::decode(&part(3).expect("valid"));
        let (c1, c3) = (one.concat.expect("sar"), three.concat.expect("sar"));
        assert_eq!(c1.reference, c3.reference);
        assert_eq!((c1.total, c1.seq, c3.seq), (3, 1, 3));
        assert!(part(4).is_err());
        assert_eq!(reference("42"), 42);
    }
}
