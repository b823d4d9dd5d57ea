//! Receipt correlation helpers: the spellings under which a receipt's id may have been
//! recorded, and the bounded hold for receipts that arrive before their submit response.
//!
//! A held receipt keeps its deliver_sm unanswered for a short while (`ack_hold`): matched in
//! that time (the usual case: its submit_sm_resp was being written), it is answered ESME_ROK
//! once applied. Past it, it is written to the store (`Store::hold_receipts`) and answered
//! ESME_ROK once that is durable (ESME_RX_T_APPN if the write fails, so the SMSC keeps it). When
//! the gateway stops, receipts still held back only in memory are answered ESME_RX_T_APPN: a
//! crash never loses a receipt that was answered OK. The receipt stays held (up to the TTL),
//! and is read back from the store at start, to be applied as soon as its id is recorded.
//! A full hold answers a new receipt ESME_RX_T_APPN rather than dropping one already answered.

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
    /// Its id in the store, once written there.
    stored: Option<Id>,
    /// Its id belongs to a message already final: a duplicate, unless a new submission that
    /// reuses the id is recorded within the hold (it is then that message's receipt).
    duplicate: bool,
}

/// Receipts whose message is not known yet, matched again when an ack records the id.
/// Bounded: past `capacity` a new one is refused (answered "retry"); past `ttl_ms` entries are
/// swept.
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
    /// Held.
    Held,
    /// The hold is full: answered "retry", not held.
    Full,
    /// Held already: the new delivery took the place of the old one.
    Redelivered,
    /// Its id expired unmatched before: answered OK and dropped.
    GaveUp,
}

/// What [`EarlyReceipts::release_acks`] did.
#[derive(Debug, Default)]
pub(crate) struct Released {
    /// Receipts of unknown ids held back past the ack hold: to write to the store, then answer
    /// with [`EarlyReceipts::stored`].
    pub(crate) to_store: Vec<(u64, Id, Receipt, Millis)>,
    /// Duplicates of final messages answered OK.
    pub(crate) duplicates: usize,
}

/// What [`EarlyReceipts::sweep`] dropped.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Swept {
    /// Receipts dropped.
    pub(crate) dropped: usize,
    /// Their store ids, to remove.
    pub(crate) stored: Vec<Id>,
}

/// A receipt taken out of the hold for its message, with its deliver_sm's answer if still held
/// back and its store id if written there.
pub(crate) type Taken = (Receipt, Option<DeliverAck>, Option<Id>);

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
            if held.stored.is_some() {
                // Durable already: the SMSC did not hear our OK; say it again.
                ack.complete(DeliverStatus::Done);
                return Hold::Redelivered;
            }
            // Still first seen at `at`: its answer is due at the next release.
            if let Some(old) = held.ack.replace(ack) {
                old.complete(held.unmatched_answer());
                self.duplicates_answered += usize::from(held.duplicate);
            }
            held.receipt = receipt;
            return Hold::Redelivered;
        }
        if self.entries.len() >= self.capacity {
            // Dropping an older one would lose a receipt answered OK; this one the SMSC keeps.
            ack.complete(DeliverStatus::Retry);
            return Hold::Full;
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
                stored: None,
                duplicate,
            },
        );
        Hold::Held
    }

    /// Puts back a receipt read from the store at start (answered before the restart), past
    /// the capacity if need be: it was accepted within it.
    pub(crate) fn restore(&mut self, provider: Id, receipt: Receipt, at: Millis, stored: Id) {
        let id = id_key(provider, &receipt.id);
        let keys = id_candidates(&receipt.id);
        let seq = self.next;
        self.next += 1;
        // The same id stored twice (a crash before the first was released) keeps both
        // entries, so both records are released: matching takes every entry of the id.
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
                at,
                ack: None,
                stored: Some(stored),
                duplicate: false,
            },
        );
    }

    /// Ends the ack hold of receipts held back longer than `ack_hold`: unknown ids are
    /// returned to be written to the store (then answered by [`EarlyReceipts::stored`]; they
    /// stay held for matching), duplicates are answered OK and no longer held.
    pub(crate) fn release_acks(&mut self, now: Millis) -> Released {
        let mut released = Released {
            duplicates: std::mem::take(&mut self.duplicates_answered),
            ..Released::default()
        };
        let mut done = Vec::new();
        for (seq, held) in &mut self.entries {
            if now.saturating_sub(held.at) < self.ack_hold_ms {
                // Entries are in arrival order (restored ones first): the rest are younger.
                break;
            }
            if held.duplicate {
                done.push(*seq);
            } else if held.ack.is_some() && held.stored.is_none() {
                released
                    .to_store
                    .push((*seq, held.provider, held.receipt.clone(), held.at));
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

    /// Answers a receipt released by [`EarlyReceipts::release_acks`]: OK once written to the
    /// store (`stored`), "retry" when that failed (the SMSC keeps it; held in memory still).
    pub(crate) fn stored(&mut self, seq: u64, stored: Option<Id>) {
        let Some(held) = self.entries.get_mut(&seq) else {
            return;
        };
        held.stored = stored;
        if let Some(ack) = held.ack.take() {
            ack.complete(if stored.is_some() {
                DeliverStatus::Done
            } else {
                DeliverStatus::Retry
            });
        }
    }

    /// Takes every held receipt of `provider` whose id matches `msg_id` (written the same way
    /// when `same_only`), oldest first, with its deliver_sm's answer if still held back and
    /// its store id if written there.
    pub(crate) fn take(&mut self, provider: Id, msg_id: &str, same_only: bool) -> Vec<Taken> {
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
            .map(|held| (held.receipt, held.ack, held.stored))
            .collect()
    }

    /// Every held receipt that is in the store, with its provider (to match at start).
    pub(crate) fn stored_receipts(&self) -> Vec<(Id, String)> {
        self.entries
            .values()
            .filter(|h| h.stored.is_some())
            .map(|h| (h.provider, h.receipt.id.clone()))
            .collect()
    }

    /// Drops receipts held longer than the TTL: how many, and their store ids to remove.
    pub(crate) fn sweep(&mut self, now: Millis) -> Swept {
        let expired: Vec<u64> = self
            .entries
            .iter()
            .take_while(|(_, h)| now.saturating_sub(h.at) > self.ttl_ms)
            .map(|(seq, _)| *seq)
            .collect();
        let mut swept = Swept {
            dropped: expired.len(),
            stored: Vec::new(),
        };
        for seq in &expired {
            if let Some(mut held) = self.remove(*seq) {
                if let Some(ack) = held.ack.take() {
                    ack.complete(held.unmatched_answer());
                }
                swept.stored.extend(held.stored);
                if held.duplicate {
                    continue;
                }
                tracing::warn!(
                    provider = held.provider,
                    receipt_id = %held.receipt.id,
                    stat = %held.receipt.stat,
                    "receipt for an unknown message id expired unmatched; dropped, and dropped when it comes again"
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
        swept
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
            Hold::Held
        );
        assert!(early.take(2, "4D2", false).is_empty(), "other provider");
        assert_eq!(early.take(1, "4D2", false).len(), 1);
        assert_eq!(early.len(), 0);

        early.hold(1, Receipt::new("a1", MessageState::Delivered), ack(), 0);
        early.hold(1, Receipt::new("a2", MessageState::Delivered), ack(), 10);
        let (full, mut full_answer) = DeliverAck::channel();
        assert_eq!(
            early.hold(1, Receipt::new("a3", MessageState::Delivered), full, 20),
            Hold::Full
        );
        assert_eq!(
            full_answer.try_recv().ok(),
            Some(DeliverStatus::Retry),
            "refused, so the SMSC keeps it; nothing held is dropped"
        );
        assert!(early.take(1, "a3", false).is_empty());
        // a1 (the second receipt held, seq 1) was written to the store as 70.
        early.stored(1, Some(70));
        assert_eq!(
            early.sweep(1_005),
            Swept {
                dropped: 1,
                stored: vec![70]
            },
            "past the TTL, and its record is to be removed"
        );
        assert_eq!(early.len(), 1);
        assert_eq!(early.take(1, "A2", false).len(), 1);
    }

    #[test]
    fn past_the_ack_hold_a_receipt_is_stored_then_answered_ok_and_restored_after_a_restart() {
        let mut early = EarlyReceipts::new(8, 60_000, 500);
        let (ack, mut answer) = DeliverAck::channel();
        early.hold(3, Receipt::new("m9", MessageState::Delivered), ack, 0);
        assert!(early.release_acks(499).to_store.is_empty());
        let released = early.release_acks(500);
        assert_eq!(released.to_store.len(), 1);
        let (seq, provider, receipt, at) = released.to_store[0].clone();
        assert_eq!((provider, receipt.id.as_str(), at), (3, "m9", 0));
        assert!(answer.try_recv().is_err(), "not before it is durable");
        early.stored(seq, Some(41));
        assert_eq!(answer.try_recv().ok(), Some(DeliverStatus::Done));
        assert!(
            early.release_acks(600).to_store.is_empty(),
            "stored once, not again"
        );
        let (again, mut again_answer) = DeliverAck::channel();
        assert_eq!(
            early.hold(3, Receipt::new("m9", MessageState::Delivered), again, 700),
            Hold::Redelivered
        );
        assert_eq!(
            again_answer.try_recv().ok(),
            Some(DeliverStatus::Done),
            "durable already"
        );
        let taken = early.take(3, "m9", false);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].2, Some(41), "its store id, to release");

        // Read back at start, with no answer to give, and taken like any other.
        let mut restarted = EarlyReceipts::new(8, 60_000, 500);
        restarted.restore(3, Receipt::new("m9", MessageState::Delivered), 0, 41);
        assert_eq!(restarted.stored_receipts(), vec![(3, "m9".to_owned())]);
        assert!(restarted.release_acks(10_000).to_store.is_empty());
        let taken = restarted.take(3, "m9", false);
        assert!(taken[0].1.is_none());
        assert_eq!(taken[0].2, Some(41));
        restarted.restore(3, Receipt::new("old", MessageState::Delivered), 0, 42);
        assert_eq!(
            restarted.sweep(60_001),
            Swept {
                dropped: 1,
                stored: vec![42]
            }
        );
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

        assert_eq!(early.sweep(1_001).dropped, 1);
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
            Hold::Held,
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
        assert_eq!(early.release_acks(499).duplicates, 0);
        assert!(dup_answer.try_recv().is_err());
        let released = early.release_acks(500);
        assert_eq!((released.duplicates, released.to_store.len()), (1, 0));
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
    fn a_held_back_answer_is_ok_once_matched_and_retry_if_it_cannot_be_stored() {
        let mut early = EarlyReceipts::new(10, 60_000, 2_000);
        let (ack, mut answer) = DeliverAck::channel();
        early.hold(1, Receipt::new("m1", MessageState::Delivered), ack, 0);
        let (late, mut late_answer) = DeliverAck::channel();
        early.hold(1, Receipt::new("m2", MessageState::Delivered), late, 1_500);
        assert!(early.release_acks(1_999).to_store.is_empty());
        assert!(answer.try_recv().is_err(), "still held back");
        let released = early.release_acks(2_000);
        assert_eq!(released.to_store.len(), 1);
        early.stored(released.to_store[0].0, None);
        assert_eq!(answer.try_recv().ok(), Some(DeliverStatus::Retry));
        // Still matched later, with no answer left to give.
        let taken = early.take(1, "m1", false);
        assert_eq!(taken.len(), 1);
        assert!(taken[0].1.is_none());
        // m2 is matched in time: its answer comes back to the caller to complete.
        let taken = early.take(1, "m2", false);
        let (_, Some(ack), None) = taken.into_iter().next().expect("held") else {
            panic!("its answer is held back");
        };
        ack.complete(DeliverStatus::Done);
        assert_eq!(late_answer.try_recv().ok(), Some(DeliverStatus::Done));
    }
}
