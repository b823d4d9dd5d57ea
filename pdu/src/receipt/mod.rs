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
//! [`Receipt::from_deliver_sm`] merges both into one [`Receipt`];
//! [`ids_match`] correlates its id with the `submit_sm_resp` one.

mod date;
mod id;
mod parse;
mod state;

pub use date::ReceiptDate;
pub use id::{id_candidates, ids_match, same_spelling};
pub use state::MessageState;

/// How many characters of the original message the receipt `text:` field
/// repeats (Appendix B: "the first 20 characters of the short message").
pub const TEXT_LIMIT: usize = 20;

/// A delivery receipt, normalised from the receipt text and TLVs.
///
/// Fields the text did not carry (or carried unreadably) are `None`/empty;
/// only [`id`](Self::id) and a stat are required. Fields are public so the
/// SMSC simulator can build receipts; [`Receipt::format`] writes whatever is
/// there, so keep `id`, `stat` and `err` free of whitespace for the result to
/// parse back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// Message id as sent (receipted_message_id TLV, else `id:`), printable
    /// ASCII, not normalised: compare it with [`ids_match`].
    pub id: String,
    /// `sub:` — number of messages originally submitted (usually 1).
    pub sub: Option<u32>,
    /// `dlvrd:` — number of messages delivered.
    pub dlvrd: Option<u32>,
    /// `submit date:` — when the message was submitted.
    pub submit_date: Option<ReceiptDate>,
    /// `done date:` — when the message reached the reported state.
    pub done_date: Option<ReceiptDate>,
    /// The `stat:` word exactly as sent (e.g. `DELIVRD`, `delivered`); the
    /// canonical word of the TLV state if the text had none.
    pub stat: String,
    /// The state: from the message_state TLV if present and valid, else from
    /// the `stat:` word; `None` if the word is not recognised.
    pub state: Option<MessageState>,
    /// `err:` as sent (`000`, `0x0B`, ...); its meaning is carrier-specific.
    pub err: Option<String>,
    /// `text:` bytes as sent, in whatever encoding the SMSC used.
    pub text: Vec<u8>,
}

/// Why a delivery receipt could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// No `id:` field and no receipted_message_id TLV.
    #[error("delivery receipt has no message id (no `id:` field and no receipted_message_id TLV)")]
    MissingId,
    /// The id is not printable ASCII; holds it, lossily decoded.
    #[error("delivery receipt message id {0:?} is not printable ASCII")]
    InvalidId(String),
    /// No `stat:` field and no message_state TLV.
    #[error("delivery receipt has no state (no `stat:` field and no message_state TLV)")]
    MissingStat,
    /// The message_state TLV holds a value SMPP does not define and the text
    /// has no `stat:` to fall back on.
    #[error(
        "message_state TLV value {0} is not an SMPP message state and the receipt has no `stat:` field"
    )]
    UnknownTlvState(u8),
}

impl Receipt {
    /// A receipt for `id` in `state`, as an SMSC would write it for a single
    /// message: `sub` 1, `dlvrd` 1 if delivered else 0, `err` `000`, the
    /// canonical stat word, no dates, empty text. Set the public fields to
    /// fill in the rest.
    pub fn new(id: impl Into<String>, state: MessageState) -> Self {
        Self {
            id: id.into(),
            sub: Some(1),
            dlvrd: Some(u32::from(state == MessageState::Delivered)),
            submit_date: None,
            done_date: None,
            stat: state.stat_word().to_owned(),
            state: Some(state),
            err: Some("000".to_owned()),
            text: Vec::new(),
        }
    }

    /// Parses receipt text on its own (no TLVs); see
    /// [`Receipt::from_deliver_sm`].
    pub fn parse(text: &[u8]) -> Result<Self, ReceiptError> {
        Self::from_deliver_sm(text, None, None)
    }

    /// Builds the receipt of a `deliver_sm` from its short_message (or
    /// message_payload) and its receipted_message_id and message_state TLV
    /// values.
    ///
    /// The TLVs win where present (SMPP 3.4 §5.3.2.12, §5.3.2.35); the text
    /// fills in the rest, and may be empty when both TLVs are present.
    ///
    /// * `receipted_message_id` is trimmed of whitespace and the C-string
    ///   NUL; if that leaves it empty or not printable ASCII it is ignored in
    ///   favour of the text's `id:` (a corrupt TLV is no reason to drop a
    ///   receipt whose text is fine).
    /// * `message_state` values SMPP does not define are ignored in favour of
    ///   the text's `stat:`. When the TLV is used and the text also has a
    ///   `stat:`, [`Receipt::stat`] keeps the text's word even if it
    ///   disagrees; [`Receipt::state`] follows the TLV.
    ///
    /// Text parsing is lenient: keys in any case, `submit date`,
    /// `submit_date` or `submitdate`, fields in any order and any of them
    /// missing, unknown fields (`dlr_id:`, `mcc:`, ...) and stray words
    /// skipped, runs of whitespace, 10- or 12-digit dates. A date that is not
    /// a valid date becomes `None` rather than failing the receipt, as does a
    /// non-numeric `sub`/`dlvrd`: they are informational, and losing the
    /// state over them would be worse. `text:` takes everything after it to
    /// the end (minus trailing NULs), colons and keywords included, so it
    /// must come last, as the spec has it. The first occurrence of a
    /// repeated field wins.
    pub fn from_deliver_sm(
        short_message: &[u8],
        receipted_message_id: Option<&[u8]>,
        message_state: Option<u8>,
    ) -> Result<Self, ReceiptError> {
        let fields = parse::Fields::parse(short_message);

        let tlv_id = receipted_message_id
            .map(trim_field)
            .filter(|id| !id.is_empty() && is_printable(id));
        let id = match (tlv_id, fields.id) {
            (Some(id), _) => id,
            (None, Some(id)) if is_printable(id) => id,
            (None, Some(id)) => {
                return Err(ReceiptError::InvalidId(
                    String::from_utf8_lossy(id).into_owned(),
                ));
            }
            (None, None) => return Err(ReceiptError::MissingId),
        };

        let tlv_state = message_state.and_then(MessageState::from_u8);
        let (stat, state) = match (tlv_state, fields.stat) {
            (Some(state), Some(word)) => (lossy(word), Some(state)),
            (Some(state), None) => (state.stat_word().to_owned(), Some(state)),
            (None, Some(word)) => (lossy(word), MessageState::from_stat(word)),
            (None, None) => {
                return Err(match message_state {
                    Some(value) => ReceiptError::UnknownTlvState(value),
                    None => ReceiptError::MissingStat,
                });
            }
        };

        Ok(Self {
            id: lossy(id),
            sub: fields.sub.and_then(parse_count),
            dlvrd: fields.dlvrd.and_then(parse_count),
            submit_date: fields.submit_date.and_then(ReceiptDate::parse),
            done_date: fields.done_date.and_then(ReceiptDate::parse),
            stat,
            state,
            err: fields.err.map(lossy),
            text: fields.text.unwrap_or_default().to_vec(),
        })
    }

    /// Whether the receipt reports a final state (see
    /// [`MessageState::is_final`]); `false` if the state is unknown.
    pub fn is_final(&self) -> bool {
        self.state.is_some_and(MessageState::is_final)
    }

    /// Writes the receipt as Appendix B text:
    ///
    /// ```text
    /// id:ID sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD err:000 text:first 20 chars
    /// ```
    ///
    /// `sub`/`dlvrd` are zero-padded to 3 digits; fields that are `None` are
    /// left out; `text:` is always written, last, cut to [`TEXT_LIMIT`]
    /// characters (characters if the text is UTF-8, else bytes, so a
    /// multi-byte character is never split). [`Receipt::parse`] reads the
    /// result back to an equal receipt whenever the text fits the limit and
    /// has no trailing NUL, and `id`, `stat`, `err` are non-empty and without
    /// whitespace, `:` or NUL.
    pub fn format(&self) -> Vec<u8> {
        let mut out = format!("id:{}", self.id);
        if let Some(sub) = self.sub {
            out.push_str(&format!(" sub:{sub:03}"));
        }
        if let Some(dlvrd) = self.dlvrd {
            out.push_str(&format!(" dlvrd:{dlvrd:03}"));
        }
        if let Some(date) = self.submit_date {
            out.push_str(&format!(" submit date:{date}"));
        }
        if let Some(date) = self.done_date {
            out.push_str(&format!(" done date:{date}"));
        }
        out.push_str(" stat:");
        out.push_str(&self.stat);
        if let Some(err) = &self.err {
            out.push_str(" err:");
            out.push_str(err);
        }
        out.push_str(" text:");
        let mut out = out.into_bytes();
        out.extend_from_slice(truncate_text(&self.text));
        out
    }
}

/// The first [`TEXT_LIMIT`] characters of `text` if it is UTF-8, else the
/// first [`TEXT_LIMIT`] bytes.
fn truncate_text(text: &[u8]) -> &[u8] {
    let end = match std::str::from_utf8(text) {
        Ok(s) => s
            .char_indices()
            .nth(TEXT_LIMIT)
            .map_or(s.len(), |(at, _)| at),
        Err(_) => text.len().min(TEXT_LIMIT),
    };
    text.get(..end).unwrap_or(text)
}

/// A `sub:`/`dlvrd:` count: decimal digits only (`001`), else `None`.
fn parse_count(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Printable ASCII without spaces: what an SMPP message_id can hold in
/// practice (the spec only says C-octet string; ids are never sent with
/// spaces, which would also break the receipt text).
fn is_printable(id: &[u8]) -> bool {
    id.iter().all(|b| (0x21..=0x7e).contains(b))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

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
