//! Receipt correlation helpers: the spellings under which a receipt's id may have been
//! recorded, and the bounded hold for receipts that arrive before their submit response.

use std::collections::{BTreeMap, HashMap};

use sairex_pdu::receipt::{Receipt, id_candidates};
use sairex_store::model::{Id, Millis};

/// The spellings of `id` worth looking up in the store's exact-match provider id index: the id
/// as given, then the same number in decimal and in hex (both cases, unpadded and padded to the
/// widths SMSCs commonly use). A hit is confirmed with `ids_match` by the caller.
pub(crate) fn spellings(id: &str) -> Vec<String> {
    let trimmed = id.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
    let mut out = vec![trimmed.to_owned()];
    let mut push = |s: String| {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    for key in id_candidates(trimmed) {
        if let Some(n) = key.strip_prefix("n:") {
            let Ok(value) = n.parse::<u128>() else {
                push(n.to_owned());
                continue;
            };
            push(value.to_string());
            for width in [0usize, 8, 10, 16] {
                push(format!("{value:0width$x}"));
                push(format!("{value:0width$X}"));
            }
            push(format!("{value:010}"));
        } else if let Some(h) = key.strip_prefix("h:") {
            push(h.to_owned());
            push(h.to_ascii_uppercase());
        }
    }
    out
}

#[derive(Debug)]
struct Held {
    provider: Id,
    keys: Vec<String>,
    receipt: Receipt,
    at: Millis,
}

/// Receipts whose message is not known yet, matched again when an ack records the id.
/// Bounded: past `capacity` the oldest is dropped; past `ttl_ms` entries are swept.
#[derive(Debug)]
pub(crate) struct EarlyReceipts {
    capacity: usize,
    ttl_ms: Millis,
    next: u64,
    entries: BTreeMap<u64, Held>,
    by_key: HashMap<(Id, String), Vec<u64>>,
}

impl EarlyReceipts {
    pub(crate) fn new(capacity: usize, ttl_ms: Millis) -> Self {
        Self {
            capacity: capacity.max(1),
            ttl_ms,
            next: 0,
            entries: BTreeMap::new(),
            by_key: HashMap::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Holds a receipt; returns how many older ones were dropped to make room.
    pub(crate) fn hold(&mut self, provider: Id, receipt: Receipt, now: Millis) -> usize {
        let mut dropped = 0;
        while self.entries.len() >= self.capacity {
            let Some(oldest) = self.entries.keys().next().copied() else {
                break;
            };
            self.remove(oldest);
            dropped += 1;
        }
        let keys = id_candidates(&receipt.id);
        let seq = self.next;
        self.next += 1;
        for key in &keys {
            self.by_key
                .entry((provider, key.clone()))
                .or_default()
                .push(seq);
        }
        self.entries.insert(
            seq,
            Held {
                provider,
                keys,
                receipt,
                at: now,
            },
        );
        dropped
    }

    /// Takes every held receipt of `provider` whose id matches `msg_id`, oldest first.
    pub(crate) fn take(&mut self, provider: Id, msg_id: &str) -> Vec<Receipt> {
        let mut seqs: Vec<u64> = id_candidates(msg_id)
            .into_iter()
            .filter_map(|key| self.by_key.get(&(provider, key)).cloned())
            .flatten()
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        seqs.into_iter()
            .filter_map(|seq| self.remove(seq))
            .map(|held| held.receipt)
            .collect()
    }

    /// Drops receipts held longer than the TTL; returns how many.
    pub(crate) fn sweep(&mut self, now: Millis) -> usize {
        let expired: Vec<u64> = self
            .entries
            .iter()
            .take_while(|(_, h)| now.saturating_sub(h.at) > self.ttl_ms)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in &expired {
            if let Some(held) = self.remove(*seq) {
                tracing::warn!(
                    provider = held.provider,
                    receipt_id = %held.receipt.id,
                    "receipt for an unknown message id expired unmatched"
                );
            }
        }
        expired.len()
    }

    fn remove(&mut self, seq: u64) -> Option<Held> {
        let held = self.entries.remove(&seq)?;
        for key in &held.keys {
            let k = (held.provider, key.clone());
            if let Some(list) = self.by_key.get_mut(&k) {
                list.retain(|s| *s != seq);
                if list.is_empty() {
                    self.by_key.remove(&k);
                }
            }
        }
        Some(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sairex_pdu::receipt::MessageState;

    #[test]
    fn spellings_cover_hex_and_decimal_forms() {
        let s = spellings("1234");
        assert_eq!(s[0], "1234");
        assert!(s.contains(&"4d2".to_owned()));
        assert!(s.contains(&"000004D2".to_owned()));
        let s = spellings("00004d2");
        assert!(s.contains(&"1234".to_owned()));
        let s = spellings("abc-XYZ");
        assert_eq!(s, vec!["abc-XYZ".to_owned()]);
    }

    #[test]
    fn held_receipts_match_by_number_are_bounded_and_expire() {
        let mut early = EarlyReceipts::new(2, 1_000);
        assert_eq!(
            early.hold(1, Receipt::new("1234", MessageState::Delivered), 0),
            0
        );
        assert!(early.take(2, "4D2").is_empty(), "other provider");
        assert_eq!(early.take(1, "4D2").len(), 1);
        assert_eq!(early.len(), 0);

        early.hold(1, Receipt::new("a1", MessageState::Delivered), 0);
        early.hold(1, Receipt::new("a2", MessageState::Delivered), 10);
        assert_eq!(
            early.hold(1, Receipt::new("a3", MessageState::Delivered), 20),
            1
        );
        assert!(early.take(1, "a1").is_empty(), "oldest dropped");
        assert_eq!(early.sweep(1_015), 1);
        assert_eq!(early.len(), 1);
        assert_eq!(early.take(1, "A3").len(), 1);
    }
}
