//! Mobile-originated messages: decoding, reassembly of concatenated parts, opt-out keywords and
//! the routing of shared short codes to organizations.

use std::collections::{BTreeMap, HashMap};

use sairex_pdu::DeliverSm;
use sairex_pdu::esm_class;
use sairex_pdu::text::{self, TextError};
use sairex_store::model::{Id, Millis};

/// What a whole inbound message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    /// STOP, UNSUBSCRIBE, CANCEL, END, QUIT.
    OptOut,
    /// START, UNSTOP.
    OptIn,
}

/// The keyword the whole message is, in any case, ignoring surrounding whitespace.
pub(crate) fn keyword(body: &str) -> Option<Keyword> {
    let word = body.trim().to_uppercase();
    match word.as_str() {
        "STOP" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => Some(Keyword::OptOut),
        "START" | "UNSTOP" => Some(Keyword::OptIn),
        _ => None,
    }
}

/// An address as E.164 when the TON says international (1) and the `+` is missing.
pub(crate) fn normalize_address(ton: u8, addr: &str) -> String {
    if ton == 1 && !addr.starts_with('+') && !addr.is_empty() {
        format!("+{addr}")
    } else {
        addr.to_owned()
    }
}

/// The organization a destination number belongs to, by the routing table: exact, then with
/// or without a leading `+`.
pub(crate) fn route(routes: &HashMap<String, Id>, to: &str) -> Option<Id> {
    routes
        .get(to)
        .copied()
        .or_else(|| match to.strip_prefix('+') {
            Some(bare) => routes.get(bare).copied(),
            None => routes.get(&format!("+{to}")).copied(),
        })
}

/// Concatenation of one part: (reference, 16-bit reference, total, sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Concat {
    pub(crate) reference: u16,
    pub(crate) wide: bool,
    pub(crate) total: u8,
    pub(crate) seq: u8,
}

/// One decoded deliver_sm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) text: String,
    pub(crate) encoding: &'static str,
    pub(crate) concat: Option<Concat>,
    /// Something to note about the decoding (binary body, unsupported alphabet, bad UDH).
    pub(crate) note: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes a mobile-originated deliver_sm: UDH (when UDHI is set) or SAR TLVs give the
/// concatenation; `message_payload` is used when `short_message` is empty. Binary bodies are
/// kept as hex, alphabets we cannot decode as Latin-1, each with a note.
pub(crate) fn decode(deliver: &DeliverSm) -> Decoded {
    let raw: &[u8] = match deliver.tlvs.message_payload() {
        Some(payload) if deliver.short_message.is_empty() => payload,
        _ => deliver.short_message.as_bytes(),
    };
    let mut note = None;
    let mut concat = None;
    let mut body = raw;
    if deliver.esm_class & esm_class::UDHI != 0 {
        match text::parse_udh(raw) {
            Ok(ud) => {
                body = ud.payload;
                concat = ud.concat.map(|c| Concat {
                    reference: c.reference,
                    wide: c.wide_reference,
                    total: c.total,
                    seq: c.seq,
                });
            }
            Err(e) => note = Some(format!("malformed UDH kept in the body: {e}")),
        }
    }
    if concat.is_none()
        && let (Some(reference), Some(total), Some(seq)) = (
            deliver.tlvs.sar_msg_ref_num(),
            deliver.tlvs.sar_total_segments(),
            deliver.tlvs.sar_segment_seqnum(),
        )
        && total > 1
        && seq >= 1
        && seq <= total
    {
        concat = Some(Concat {
            reference,
            wide: true,
            total,
            seq,
        });
    }
    let encoding = match text::Alphabet::from_data_coding(deliver.data_coding) {
        Ok(text::Alphabet::Ucs2) => "UCS-2",
        Ok(text::Alphabet::Latin1 | text::Alphabet::Ascii) => "LATIN-1",
        Ok(text::Alphabet::Binary) => "BINARY",
        _ => "GSM-7",
    };
    let text = match text::decode(deliver.data_coding, body) {
        Ok(t) => t,
        Err(TextError::Binary { .. }) => {
            note = Some("binary body, stored as hex".into());
            hex(body)
        }
        Err(e) => {
            note = Some(format!("{e}; decoded as Latin-1"));
            text::latin1::decode(body)
        }
    };
    Decoded {
        text,
        encoding,
        concat,
        note,
    }
}

/// Identifies one concatenated message in flight.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PartsKey {
    pub(crate) provider: Id,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) reference: u16,
    pub(crate) wide: bool,
}

/// Parts collected so far.
#[derive(Debug)]
pub(crate) struct Partial {
    pub(crate) key: PartsKey,
    pub(crate) parts: Vec<Option<String>>,
    /// The store's hold id of each part received (see `Store::hold_inbound_part`).
    pub(crate) held: Vec<Option<Id>>,
    pub(crate) encoding: &'static str,
    pub(crate) first_at: Millis,
}

impl Partial {
    /// The text of the parts received, in order; missing parts are left out.
    pub(crate) fn text(&self) -> String {
        self.parts.iter().flatten().map(String::as_str).collect()
    }

    /// Which parts (1-based) are missing.
    pub(crate) fn missing(&self) -> Vec<usize> {
        (1..=self.parts.len())
            .filter(|i| self.parts.get(i - 1).is_some_and(Option::is_none))
            .collect()
    }

    /// The hold ids of its parts, to remove once it is stored.
    pub(crate) fn held_ids(&self) -> Vec<Id> {
        self.held.iter().flatten().copied().collect()
    }
}

/// The alphabet names `decode` gives, as `'static` (a held part read back names its own).
pub(crate) fn encoding_name(name: &str) -> &'static str {
    match name {
        "UCS-2" => "UCS-2",
        "LATIN-1" => "LATIN-1",
        "BINARY" => "BINARY",
        _ => "GSM-7",
    }
}

/// Concatenated parts waiting for their siblings. Bounded: past `capacity` messages the oldest
/// is given up (stored incomplete by the caller); past `ttl_ms` the same.
///
/// Each part is in the store too (held, before its deliver_sm is answered): this is the index
/// of those holds, rebuilt from the store at start, and changed only after the store write.
#[derive(Debug)]
pub(crate) struct Reassembly {
    capacity: usize,
    ttl_ms: Millis,
    pending: BTreeMap<PartsKey, Partial>,
}

/// What adding a part led to.
#[derive(Debug, Default)]
pub(crate) struct Added {
    /// The message is whole.
    pub(crate) complete: Option<Partial>,
    /// Messages given up to make room.
    pub(crate) evicted: Vec<Partial>,
}

impl Reassembly {
    pub(crate) fn new(capacity: usize, ttl_ms: Millis) -> Self {
        Self {
            capacity: capacity.max(1),
            ttl_ms,
            pending: BTreeMap::new(),
        }
    }

    /// Whether the part belongs with the parts waiting under its key: same total, and a part
    /// number within it (a carrier that reuses a reference for another message's parts, or
    /// garbles the total, makes parts that do not).
    pub(crate) fn fits(&self, key: &PartsKey, concat: Concat) -> bool {
        let index = usize::from(concat.seq.max(1)) - 1;
        let total = usize::from(concat.total.max(1));
        index < total && self.pending.get(key).is_none_or(|p| p.parts.len() == total)
    }

    /// The hold id of this part when a copy of it is waiting already (an SMSC resends parts).
    pub(crate) fn held_id(&self, key: &PartsKey, concat: Concat) -> Option<Id> {
        let index = usize::from(concat.seq.max(1)) - 1;
        self.pending
            .get(key)
            .and_then(|p| p.held.get(index).copied().flatten())
    }

    /// The whole message this part would complete, without changing anything: the caller
    /// stores it, then [`Reassembly::remove`]s the parts.
    pub(crate) fn would_complete(
        &self,
        key: &PartsKey,
        concat: Concat,
        text: &str,
        encoding: &'static str,
    ) -> Option<Partial> {
        let total = usize::from(concat.total.max(1));
        let index = usize::from(concat.seq.max(1)) - 1;
        let (mut parts, held, encoding, first_at) = match self.pending.get(key) {
            Some(p) => (p.parts.clone(), p.held.clone(), p.encoding, p.first_at),
            None => (vec![None; total], vec![None; total], encoding, 0),
        };
        let slot = parts.get_mut(index)?;
        *slot = Some(text.to_owned());
        if !parts.iter().all(Option::is_some) {
            return None;
        }
        Some(Partial {
            key: key.clone(),
            parts,
            held,
            encoding,
            first_at,
        })
    }

    /// Forgets a message's parts (stored).
    pub(crate) fn remove(&mut self, key: &PartsKey) -> Option<Partial> {
        self.pending.remove(key)
    }

    /// Adds a part held under `held` (its store id).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add(
        &mut self,
        key: PartsKey,
        concat: Concat,
        text: String,
        encoding: &'static str,
        now: Millis,
        held: Option<Id>,
    ) -> Added {
        let mut added = Added::default();
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= self.capacity {
                let oldest = self
                    .pending
                    .iter()
                    .min_by_key(|(_, p)| p.first_at)
                    .map(|(k, _)| k.clone());
                match oldest.and_then(|k| self.pending.remove(&k)) {
                    Some(p) => added.evicted.push(p),
                    None => break,
                }
            }
        }
        let total = usize::from(concat.total.max(1));
        let partial = self.pending.entry(key.clone()).or_insert_with(|| Partial {
            key: key.clone(),
            parts: vec![None; total],
            held: vec![None; total],
            encoding,
            first_at: now,
        });
        // Read back after a restart, parts come in id order, not arrival order.
        partial.first_at = partial.first_at.min(now);
        let index = usize::from(concat.seq.max(1)) - 1;
        if let Some(slot) = partial.parts.get_mut(index) {
            // A repeated part replaces the earlier copy: SMSCs resend parts.
            *slot = Some(text);
            if let Some(h) = partial.held.get_mut(index) {
                *h = held.or(*h);
            }
        }
        if partial.parts.iter().all(Option::is_some) {
            added.complete = self.pending.remove(&key);
        }
        added
    }

    /// Gives up messages whose parts have waited longer than the TTL.
    pub(crate) fn sweep(&mut self, now: Millis) -> Vec<Partial> {
        let stale: Vec<PartsKey> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.first_at) > self.ttl_ms)
            .map(|(k, _)| k.clone())
            .collect();
        stale
            .into_iter()
            .filter_map(|k| self.pending.remove(&k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sairex_pdu::ShortMessage;

    #[test]
    fn keywords_are_whole_message_any_case() {
        assert_eq!(keyword("  stop \n"), Some(Keyword::OptOut));
        assert_eq!(keyword("Unsubscribe"), Some(Keyword::OptOut));
        assert_eq!(keyword("quit"), Some(Keyword::OptOut));
        assert_eq!(keyword("START"), Some(Keyword::OptIn));
        assert_eq!(keyword("unstop"), Some(Keyword::OptIn));
        assert_eq!(keyword("please stop"), None);
        assert_eq!(keyword(""), None);
    }

    #[test]
    fn routes_with_or_without_plus() {
        let routes = HashMap::from([("8080".to_owned(), 5), ("+923001112223".to_owned(), 6)]);
        assert_eq!(route(&routes, "8080"), Some(5));
        assert_eq!(route(&routes, "+8080"), Some(5));
        assert_eq!(route(&routes, "923001112223"), Some(6));
        assert_eq!(route(&routes, "9999"), None);
    }

    #[test]
    fn udh_parts_decode_and_reassemble() {
        let mut sm = text::concat_udh8(9, 2, 2).to_vec();
        sm.extend_from_slice(b"world");
        let deliver = DeliverSm {
            esm_class: esm_class::UDHI,
            short_message: ShortMessage::new(sm).unwrap_or_default(),
            ..DeliverSm::default()
        };
        let d = decode(&deliver);
        assert_eq!(d.text, "world");
        let c = d.concat.unwrap_or(Concat {
            reference: 0,
            wide: false,
            total: 0,
            seq: 0,
        });
        assert_eq!((c.reference, c.total, c.seq), (9, 2, 2));

        let key = PartsKey {
            provider: 1,
            from: "+1".into(),
            to: "8080".into(),
            reference: 9,
            wide: false,
        };
        let mut r = Reassembly::new(4, 1000);
        assert!(r.would_complete(&key, c, &d.text, "GSM-7").is_none());
        let added = r.add(key.clone(), c, d.text, "GSM-7", 0, Some(11));
        assert!(added.complete.is_none());
        let first = Concat { seq: 1, ..c };
        assert_eq!(r.held_id(&key, c), Some(11));
        assert_eq!(r.held_id(&key, first), None);
        let whole = r
            .would_complete(&key, first, "hello ", "GSM-7")
            .expect("complete");
        assert_eq!(whole.text(), "hello world");
        assert_eq!(
            whole.held_ids(),
            vec![11],
            "the held sibling is released with it"
        );
        assert!(r.remove(&key).is_some());
    }

    #[test]
    fn a_part_with_another_total_or_out_of_range_does_not_fit() {
        let key = PartsKey {
            provider: 1,
            from: "a".into(),
            to: "b".into(),
            reference: 5,
            wide: false,
        };
        let part = |total: u8, seq: u8| Concat {
            reference: 5,
            wide: false,
            total,
            seq,
        };
        let mut r = Reassembly::new(4, 1_000);
        assert!(r.fits(&key, part(3, 1)));
        r.add(key.clone(), part(3, 1), "x".into(), "GSM-7", 0, Some(1));
        assert!(r.fits(&key, part(3, 3)));
        assert!(!r.fits(&key, part(2, 2)), "another part count");
        assert!(!r.fits(&key, part(3, 4)), "past the total");
    }

    #[test]
    fn incomplete_messages_are_given_up_by_ttl_and_capacity() {
        let c = Concat {
            reference: 1,
            wide: false,
            total: 3,
            seq: 2,
        };
        let key = |r: u16| PartsKey {
            provider: 1,
            from: "a".into(),
            to: "b".into(),
            reference: r,
            wide: false,
        };
        let mut r = Reassembly::new(1, 100);
        r.add(key(1), c, "x".into(), "GSM-7", 0, Some(1));
        let added = r.add(key(2), c, "y".into(), "GSM-7", 1, Some(2));
        assert_eq!(added.evicted.len(), 1);
        assert_eq!(added.evicted[0].missing(), vec![1, 3]);
        assert!(r.sweep(50).is_empty());
        assert_eq!(r.sweep(200).len(), 1);
    }
}
