//! Receipt correlation helpers: the spellings under which a receipt's id may have been
//! recorded, and the bounded hold for receipts that arrive before their submit response.
//!
//! A held receipt keeps its deliver_sm unanswered for a short while (`ack_hold`): matched in
//! that time (the usual case: its submit_sm_resp was being written), it is answered ESME_ROK
//! once applied. Past it, or when the gateway stops, it is answered ESME_RX_T_APPN, so the
//! SMSC keeps it and delivers it again: a crash never loses a receipt we had only in memory.
//! The receipt itself stays held (up to the TTL) to be applied as soon as its id is recorded.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use sairex_pdu::receipt::{Receipt, id_candidates, same_spelling};
use sairex_store::model::{Id, Millis};

use crate::provider::{DeliverAck, DeliverStatus};

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
    /// The deliver_sm's answer, while it is held back.
    ack: Option<DeliverAck>,
    /// Its id belongs to a message already final: a duplicate, unless a new submission that
    /// reuses the id is recorded within the hold (it is then that message's receipt).
    duplicate: bool,
}

/// Receipts whose message is not known yet, matched again when an ack records the id.
/// Bounded: past `capacity` the oldest is dropped; past `ttl_ms` entries are swept.
///
/// A receipt the SMSC delivers again while it is held replaces the held one (one entry per
/// id). One swept unmatched is remembered, and when it comes again it is answered OK and
/// dropped: its id was never recorded (the process stopped between the submit_sm_resp and
/// its store write, and the message went again under a new id), and "retry" would keep the
/// SMSC redelivering it until its own limit.
#[derive(Debug)]
pub(crate) struct EarlyReceipts {
    capacity: usize,
    ttl_ms: Millis,
    ack_hold_ms: Millis,
    next: u64,
    entries: BTreeMap<u64, Held>,
    by_key: HashMap<(Id, String), Vec<u64>>,
    /// The held entry of each (provider, id as written).
    by_id: HashMap<(Id, String), u64>,
    /// Ids swept unmatched, oldest first, at most `capacity`.
    expired: VecDeque<(Id, String)>,
    expired_set: HashSet<(Id, String)>,
    /// Duplicates answered since the last [`EarlyReceipts::release_acks`].
    duplicates_answered: usize,
}

/// What [`EarlyReceipts::hold`] did with a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Held; this many older receipts were dropped to make room.
    Held { dropped: usize },
    /// Held already: the new delivery took the place of the old one.
    Redelivered,
    /// Its id expired unmatched before: answered OK and dropped.
    GaveUp,
}

/// What [`EarlyReceipts::release_acks`] answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Released {
    /// Unknown ids answered "retry".
    pub(crate) retry: usize,
    /// Duplicates of final messages answered OK.
    pub(crate) duplicates: usize,
}

impl Held {
    fn unmatched_answer(&self) -> DeliverStatus {
        if self.duplicate {
            DeliverStatus::Done
        } else {
            DeliverStatus::Retry
        }
    }
}

fn id_key(provider: Id, id: &str) -> (Id, String) {
    let id = id.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
    (provider, id.to_owned())
}

impl EarlyReceipts {
    pub(crate) fn new(capacity: usize, ttl_ms: Millis, ack_hold_ms: Millis) -> Self {
        Self {
            capacity: capacity.max(1),
            ttl_ms,
            ack_hold_ms,
            next: 0,
            entries: BTreeMap::new(),
            by_key: HashMap::new(),
            by_id: HashMap::new(),
            expired: VecDeque::new(),
            expired_set: HashSet::new(),
            duplicates_answered: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Holds a receipt and its deliver_sm's answer (see [`Hold`]; answers of receipts dropped
    /// to make room: retry).
    pub(crate) fn hold(
        &mut self,
        provider: Id,
        receipt: Receipt,
        ack: DeliverAck,
        now: Millis,
    ) -> Hold {
        self.hold_as(provider, receipt, ack, now, false)
    }

    /// Holds a receipt whose id belongs to a message already final, for the ack hold only:
    /// SMSCs reuse ids (a restart resets their counter), and a new message's receipt can
    /// overtake its submit_sm_resp, so it is matched against acks recorded meanwhile and
    /// otherwise answered OK as the duplicate it then is.
    pub(crate) fn hold_duplicate(
        &mut self,
        provider: Id,
        receipt: Receipt,
        ack: DeliverAck,
        now: Millis,
    ) -> Hold {
        self.hold_as(provider, receipt, ack, now, true)
    }

    fn hold_as(
        &mut self,
        provider: Id,
        receipt: Receipt,
        ack: DeliverAck,
        now: Millis,
        duplicate: bool,
    ) -> Hold {
        let id = id_key(provider, &receipt.id);
        if self.expired_set.contains(&id) {
            ack.complete(DeliverStatus::Done);
            return Hold::GaveUp;
        }
        if let Some(held) = self
            .by_id
            .get(&id)
            .and_then(|seq| self.entries.get_mut(seq))
        {
            // Still first seen at `at`: its answer is due at the next release.
            if let Some(old) = held.ack.replace(ack) {
                old.complete(held.unmatched_answer());
                self.duplicates_answered += usize::from(held.duplicate);
            }
            held.receipt = receipt;
            return Hold::Redelivered;
        }
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
        self.by_id.insert(id, seq);
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
                ack: Some(ack),
                duplicate,
            },
        );
        Hold::Held { dropped }
    }

    /// Answers the receipts held back longer than `ack_hold`: ESME_RX_T_APPN for unknown ids
    /// (the SMSC will deliver them again; they stay held for matching), OK for duplicates (no
    /// longer held). Returns how many of each.
    pub(crate) fn release_acks(&mut self, now: Millis) -> Released {
        let mut released = Released {
            duplicates: std::mem::take(&mut self.duplicates_answered),
            ..Released::default()
        };
        let mut done = Vec::new();
        for (seq, held) in &mut self.entries {
            if now.saturating_sub(held.at) < self.ack_hold_ms {
                // Entries are in arrival order: the rest are younger.
                break;
            }
            if held.duplicate {
                done.push(*seq);
            } else if let Some(ack) = held.ack.take() {
                ack.complete(DeliverStatus::Retry);
                released.retry += 1;
            }
        }
        for seq in done {
            if let Some(ack) = self.remove(seq).and_then(|held| held.ack) {
                ack.complete(DeliverStatus::Done);
            }
            released.duplicates += 1;
        }
        released
    }

    /// Takes every held receipt of `provider` whose id matches `msg_id` (written the same way
    /// when `same_only`), oldest first, with its deliver_sm's answer if still held back.
    pub(crate) fn take(
        &mut self,
        provider: Id,
        msg_id: &str,
        same_only: bool,
    ) -> Vec<(Receipt, Option<DeliverAck>)> {
        let mut seqs: Vec<u64> = id_candidates(msg_id)
            .into_iter()
            .filter_map(|key| self.by_key.get(&(provider, key)).cloned())
            .flatten()
            .filter(|seq| {
                !same_only
                    || self
                        .entries
                        .get(seq)
                        .is_some_and(|held| same_spelling(&held.receipt.id, msg_id))
            })
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        seqs.into_iter()
            .filter_map(|seq| self.remove(seq))
            .map(|held| (held.receipt, held.ack))
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
            if let Some(mut held) = self.remove(*seq) {
                if let Some(ack) = held.ack.take() {
                    ack.complete(held.unmatched_answer());
                }
                if held.duplicate {
                    continue;
                }
                tracing::warn!(
                    provider = held.provider,
                    receipt_id = %held.receipt.id,
                    "receipt for an unknown message id expired unmatched; dropped when it comes again"
                );
                let id = id_key(held.provider, &held.receipt.id);
                if self.expired_set.insert(id.clone()) {
                    self.expired.push_back(id);
                }
                while self.expired.len() > self.capacity {
                    if let Some(oldest) = self.expired.pop_front() {
                        self.expired_set.remove(&oldest);
                    }
                }
            }
        }
        expired.len()
    }

    fn remove(&mut self, seq: u64) -> Option<Held> {
        let held = self.entries.remove(&seq)?;
        let id = id_key(held.provider, &held.receipt.id);
        if self.by_id.get(&id) == Some(&seq) {
            self.by_id.remove(&id);
        }
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
        let mut early = EarlyReceipts::new(2, 1_000, 500);
        let ack = DeliverAck::detached;
        assert_eq!(
            early.hold(1, Receipt::new("1234", MessageState::Delivered), ack(), 0),
            Hold::Held { dropped: 0 }
        );
        assert!(early.take(2, "4D2", false).is_empty(), "other provider");
        assert_eq!(early.take(1, "4D2", false).len(), 1);
        assert_eq!(early.len(), 0);

        early.hold(1, Receipt::new("a1", MessageState::Delivered), ack(), 0);
        early.hold(1, Receipt::new("a2", MessageState::Delivered), ack(), 10);
        assert_eq!(
            early.hold(1, Receipt::new("a3", MessageState::Delivered), ack(), 20),
            Hold::Held { dropped: 1 }
        );
        assert!(early.take(1, "a1", false).is_empty(), "oldest dropped");
        assert_eq!(early.sweep(1_015), 1);
        assert_eq!(early.len(), 1);
        assert_eq!(early.take(1, "A3", false).len(), 1);
    }

    #[test]
    fn a_redelivered_receipt_replaces_the_held_one_and_an_expired_id_is_given_up() {
        let mut early = EarlyReceipts::new(8, 1_000, 500);
        let (first, mut first_answer) = DeliverAck::channel();
        early.hold(1, Receipt::new("lost", MessageState::Delivered), first, 0);
        let (again, mut again_answer) = DeliverAck::channel();
        assert_eq!(
            early.hold(1, Receipt::new("lost", MessageState::Delivered), again, 300),
            Hold::Redelivered
        );
        assert_eq!(early.len(), 1, "one entry per id");
        assert_eq!(first_answer.try_recv().ok(), Some(DeliverStatus::Retry));
        assert!(again_answer.try_recv().is_err(), "the new delivery waits");

        assert_eq!(early.sweep(1_001), 1);
        assert_eq!(again_answer.try_recv().ok(), Some(DeliverStatus::Retry));
        let (late, mut late_answer) = DeliverAck::channel();
        assert_eq!(
            early.hold(
                1,
                Receipt::new("lost", MessageState::Delivered),
                late,
                2_000
            ),
            Hold::GaveUp
        );
        assert_eq!(late_answer.try_recv().ok(), Some(DeliverStatus::Done));
        assert_eq!(early.len(), 0);
        let (other, _) = DeliverAck::channel();
        assert_eq!(
            early.hold(
                2,
                Receipt::new("lost", MessageState::Delivered),
                other,
                2_000
            ),
            Hold::Held { dropped: 0 },
            "another provider's id is another id"
        );
    }

    #[test]
    fn a_receipt_for_a_final_message_waits_the_hold_for_a_new_message_reusing_the_id() {
        let mut early = EarlyReceipts::new(8, 60_000, 500);
        let (reused, _reused_answer) = DeliverAck::channel();
        early.hold_duplicate(1, Receipt::new("r1", MessageState::Delivered), reused, 0);
        let taken = early.take(1, "r1", true);
        assert_eq!(
            taken.len(),
            1,
            "a new submission recorded with the id takes it"
        );
        let (dup, mut dup_answer) = DeliverAck::channel();
        early.hold_duplicate(1, Receipt::new("r2", MessageState::Delivered), dup, 0);
        assert_eq!(early.release_acks(499), Released::default());
        assert!(dup_answer.try_recv().is_err());
        assert_eq!(
            early.release_acks(500),
            Released {
                retry: 0,
                duplicates: 1
            }
        );
        assert_eq!(dup_answer.try_recv().ok(), Some(DeliverStatus::Done));
        assert_eq!(early.len(), 0, "a duplicate is not kept past the hold");
        assert!(
            taken[0].1.is_some(),
            "its deliver_sm answer goes with it, to be given once applied"
        );
    }

    #[test]
    fn a_provider_that_repeats_its_spelling_gets_only_same_spelling_matches() {
        let mut early = EarlyReceipts::new(8, 1_000, 500);
        // 0x197's receipt waits for its submit_sm_resp; 0xc5 (197) is another message.
        early.hold(
            1,
            Receipt::new("00000197", MessageState::Delivered),
            DeliverAck::detached(),
            0,
        );
        assert!(early.take(1, "000000c5", true).is_empty());
        assert_eq!(early.take(1, "00000197", true).len(), 1);
        early.hold(
            1,
            Receipt::new("197", MessageState::Delivered),
            DeliverAck::detached(),
            0,
        );
        assert_eq!(
            early.take(1, "000000c5", false).len(),
            1,
            "in another base while the provider's spelling is not known"
        );
    }

    #[test]
    fn a_held_back_answer_is_ok_once_matched_and_retry_past_the_hold() {
        let mut early = EarlyReceipts::new(10, 60_000, 2_000);
        let (ack, mut answer) = DeliverAck::channel();
        early.hold(1, Receipt::new("m1", MessageState::Delivered), ack, 0);
        let (late, mut late_answer) = DeliverAck::channel();
        early.hold(1, Receipt::new("m2", MessageState::Delivered), late, 1_500);
        assert_eq!(early.release_acks(1_999), Released::default());
        assert!(answer.try_recv().is_err(), "still held back");
        assert_eq!(
            early.release_acks(2_000),
            Released {
                retry: 1,
                duplicates: 0
            }
        );
        assert_eq!(answer.try_recv().ok(), Some(DeliverStatus::Retry));
        // Still matched later, with no answer left to give.
        let taken = early.take(1, "m1", false);
        assert_eq!(taken.len(), 1);
        assert!(taken[0].1.is_none());
        // m2 is matched in time: its answer comes back to the caller to complete.
        let taken = early.take(1, "m2", false);
        let (_, Some(ack)) = taken.into_iter().next().expect("held") else {
            panic!("its answer is held back");
        };
        ack.complete(DeliverStatus::Done);
        assert_eq!(late_answer.try_recv().ok(), Some(DeliverStatus::Done));
    }
}
