//! Delivery receipts: SMPP 3.4 Appendix B text and the receipt TLVs.
//!
//! An SMSC reports the fate of a message with a `deliver_sm` whose
//! `esm_class` marks it as a receipt. The spec puts the details in the
//! short_message as text (Appendix B, "vendor specific" but near-universal):
//!
//! ```text
//! id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E Text: ...
//! ```
//!
//! and SMPP 3.4 adds the `receipted_message_id` (§5.3.2.12) and
//! `message_state` (§5.3.2.35) TLVs, which are authoritative where present.
//! [`ids_match`] correlates a receipt's id with the `submit_sm_resp` one.

mod date;
mod id;
mod state;

pub use date::ReceiptDate;
pub use id::{id_candidates, ids_match};
pub use state::MessageState;

/// `field` without surrounding ASCII whitespace or NULs (C-octet string
/// terminators that some codecs leave in).
pub(crate) fn trim_field(field: &[u8]) -> &[u8] {
    let is_pad = |b: &u8| b.is_ascii_whitespace() || *b == 0;
    let start = field.iter().position(|b| !is_pad(b)).unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|b| !is_pad(b))
        .map_or(start, |i| i + 1);
    field.get(start..end).unwrap_or_default()
}
