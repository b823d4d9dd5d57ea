//! The SMPP `message_state` values and the receipt `stat:` words naming them.

use std::fmt;

/// Delivery state of a short message, as carried by the `message_state` TLV
/// (SMPP 3.4 §5.3.2.35) and, as a word, by the receipt text's `stat:` field
/// (SMPP 3.4 Appendix B).
///
/// SMPP 5.0's `SKIPPED` (9) is included because SMSCs speaking 3.4 on the wire
/// still send it. SMPP 5.0's `SCHEDULED` (0) is not: it is never the subject
/// of a delivery receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MessageState {
    /// `ENROUTE` (1): still being delivered; more receipts may follow.
    Enroute = 1,
    /// `DELIVERED` (2), word `DELIVRD`: delivered to the handset.
    Delivered = 2,
    /// `EXPIRED` (3): validity period ran out before delivery.
    Expired = 3,
    /// `DELETED` (4), word `DELETED`: deleted (e.g. by cancel_sm) before delivery.
    Deleted = 4,
    /// `UNDELIVERABLE` (5), word `UNDELIV`: delivery failed permanently.
    Undeliverable = 5,
    /// `ACCEPTED` (6), word `ACCEPTD`: read on the subscriber's behalf by
    /// customer services.
    Accepted = 6,
    /// `UNKNOWN` (7): the SMSC no longer knows the message's state.
    Unknown = 7,
    /// `REJECTED` (8), word `REJECTD`: the SMSC or network refused the message.
    Rejected = 8,
    /// `SKIPPED` (9, SMPP 5.0): skipped, e.g. for a broadcast to an area with
    /// no cells.
    Skipped = 9,
}

impl MessageState {
    /// Every state, in `message_state` order.
    pub const ALL: [MessageState; 9] = [
        MessageState::Enroute,
        MessageState::Delivered,
        MessageState::Expired,
        MessageState::Deleted,
        MessageState::Undeliverable,
        MessageState::Accepted,
        MessageState::Unknown,
        MessageState::Rejected,
        MessageState::Skipped,
    ];

    /// The state for a `message_state` TLV value, or `None` for values the
    /// spec does not define (0 and 10..=255).
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Enroute,
            2 => Self::Delivered,
            3 => Self::Expired,
            4 => Self::Deleted,
            5 => Self::Undeliverable,
            6 => Self::Accepted,
            7 => Self::Unknown,
            8 => Self::Rejected,
            9 => Self::Skipped,
            _ => return None,
        })
    }

    /// The `message_state` TLV value.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The canonical seven-letter word written after `stat:` in a receipt
    /// (Appendix B): `ENROUTE`, `DELIVRD`, `EXPIRED`, `DELETED`, `UNDELIV`,
    /// `ACCEPTD`, `UNKNOWN`, `REJECTD`; `SKIPPED` for the 5.0 state.
    pub const fn stat_word(self) -> &'static str {
        match self {
            Self::Enroute => "ENROUTE",
            Self::Delivered => "DELIVRD",
            Self::Expired => "EXPIRED",
            Self::Deleted => "DELETED",
            Self::Undeliverable => "UNDELIV",
            Self::Accepted => "ACCEPTD",
            Self::Unknown => "UNKNOWN",
            Self::Rejected => "REJECTD",
            Self::Skipped => "SKIPPED",
        }
    }

    /// The state named by a receipt's `stat:` word, or `None` if the word is
    /// not recognised.
    ///
    /// Matching ignores ASCII case and surrounding whitespace/NULs. Besides
    /// the canonical words it accepts the spellings carriers are seen to send:
    /// the full enum names (`DELIVERED`, `UNDELIVERABLE`, `ACCEPTED`,
    /// `REJECTED`, ...), `UNDELIVERED`, `EN_ROUTE`, and a lone digit `1`..`9`
    /// (the numeric `message_state`).
    ///
    /// `FAILED`/`FAIL` map to [`MessageState::Undeliverable`]: carriers use it
    /// for a permanent delivery failure, which is what UNDELIV means, and
    /// reading it as `None` would leave the message waiting for a receipt that
    /// will never come.
    pub fn from_stat(word: &[u8]) -> Option<Self> {
        let word = super::trim_field(word);
        // The longest accepted word is "UNDELIVERABLE" (13 bytes); anything
        // longer cannot match, so it never needs upper-casing.
        let mut buf = [0u8; 13];
        let upper = buf.get_mut(..word.len())?;
        upper.copy_from_slice(word);
        upper.make_ascii_uppercase();
        Some(match &*upper {
            b"ENROUTE" | b"EN_ROUTE" | b"1" => Self::Enroute,
            b"DELIVRD" | b"DELIVERED" | b"2" => Self::Delivered,
            b"EXPIRED" | b"3" => Self::Expired,
            b"DELETED" | b"4" => Self::Deleted,
            b"UNDELIV" | b"UNDELIVERABLE" | b"UNDELIVERED" | b"FAILED" | b"FAIL" | b"5" => {
                Self::Undeliverable
            }
            b"ACCEPTD" | b"ACCEPTED" | b"6" => Self::Accepted,
            b"UNKNOWN" | b"7" => Self::Unknown,
            b"REJECTD" | b"REJECTED" | b"8" => Self::Rejected,
            b"SKIPPED" | b"9" => Self::Skipped,
            _ => return None,
        })
    }

    /// Whether no further receipt is expected for the message.
    ///
    /// Everything but [`MessageState::Enroute`] is final. ACCEPTED and UNKNOWN
    /// count as final because SMPP 3.4 §5.3.2.35 describes no way out of them
    /// and waiting on them would keep a message pending forever. Beware that a
    /// few carriers misuse `ACCEPTD` as an intermediate "accepted by the SMSC"
    /// notice and send `DELIVRD` later, so a final state need not be the last
    /// receipt actually received.
    pub const fn is_final(self) -> bool {
        !matches!(self, Self::Enroute)
    }
}

impl fmt::Display for MessageState {
    /// Writes the canonical `stat:` word.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.stat_word())
    }
}
