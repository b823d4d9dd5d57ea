//! An offline consistency check of messages, their audit trails, their indexes and the queue.
//!
//! The store keeps every index and queue entry of a message in step with its record by writing
//! them in one batch ([`derived_entries`] is the single definition of what a record implies).
//! [`Store::check_consistency`] re-derives that from the records and compares it with what is on
//! disk, in both directions, so an operator (or a test, after a crash) can tell whether a store is
//! sound without trusting the code that wrote it.
//!
//! Memory stays bounded whatever the store's size: the check walks the records once (point
//! lookups for the entries each implies) and then the index keyspaces once (a point lookup of
//! the record each entry names); only the first [`MAX_LISTED`] problems are kept.

use crate::Store;
use crate::error::{Result, StoreError as E};
use crate::keys::{Key, prefix_end, space, trailing_id, u64_at};
use crate::messages::{derived_entries, message_key};
use crate::model::{Direction, Id, Message, MessageEvent, MessageStatus, QueuePlace};
use crate::value::{decode, hex};

/// Most problems a [`ConsistencyReport`] lists; the rest are only counted.
pub const MAX_LISTED: usize = 100;

/// Keyspaces whose every entry is derived from a message record (see `derived_entries`).
const DERIVED_SPACES: [u8; 9] = [
    space::MSG_BY_DIR,
    space::MSG_BY_STATUS,
    space::MSG_BY_TO,
    space::MSG_BY_CAMPAIGN,
    space::MSG_BY_PROVIDER_ID,
    space::IDEMPOTENCY,
    space::READY,
    space::DUE,
    space::RECEIPT_DUE,
];

/// What kind of inconsistency a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A message or event record that does not decode (or has a newer format).
    Undecodable,
    /// A record implies an index or queue entry that is missing.
    MissingEntry,
    /// An index or queue entry exists but its value names another message.
    WrongEntryValue,
    /// An index or queue entry that no record implies (its message is gone or has moved on).
    OrphanEntry,
    /// An event `0..eventCount` of a message is missing.
    MissingEvent,
    /// An event at or past `eventCount`, or of a message that does not exist.
    UnexpectedEvent,
    /// An event whose `seq` or `messageId` disagrees with its key, or whose status disagrees
    /// with the record (the last event's status is the message's status).
    EventMismatch,
    /// The record's `status` and `queue` contradict each other (a queued message out of the
    /// queue, or a submitted or final one still in it).
    StatusQueueMismatch,
}

/// One inconsistency found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// The key concerned, hex.
    pub key: String,
    /// The message concerned, when known.
    pub message_id: Option<Id>,
    /// Human-readable detail.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} at {}: {}", self.kind, self.key, self.detail)
    }
}

/// The outcome of [`Store::check_consistency`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsistencyReport {
    /// Message records read (including undecodable ones).
    pub messages: u64,
    /// Event records read.
    pub events: u64,
    /// Index and queue entries read.
    pub entries: u64,
    /// Messages in the ready queue.
    pub ready: u64,
    /// Messages waiting for a time (scheduled sends and retries).
    pub due: u64,
    /// Messages in flight.
    pub in_flight: u64,
    /// The first [`MAX_LISTED`] problems, in key order within each pass.
    pub problems: Vec<Problem>,
    /// How many problems there are in all.
    pub problem_count: u64,
}

impl ConsistencyReport {
    /// Whether no problem was found.
    pub fn is_consistent(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, kind: ProblemKind, key: &[u8], message_id: Option<Id>, detail: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(Problem {
                kind,
                key: hex(key),
                message_id,
                detail,
            });
        }
    }
}

impl std::fmt::Display for ConsistencyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages ({} ready, {} due, {} in flight), {} events, {} index entries: ",
            self.messages, self.ready, self.due, self.in_flight, self.events, self.entries
        )?;
        if self.is_consistent() {
            return write!(f, "consistent");
        }
        write!(f, "{} problems", self.problem_count)?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        if self.problem_count > self.problems.len() as u64 {
            write!(f, "\n  …")?;
        }
        Ok(())
    }
}

impl Store {
    /// Checks that every message record, its events, its index entries and its queue entry agree,
    /// in both directions:
    ///
    /// - every record decodes, and every entry it implies exists with the right value (so a
    ///   message is in exactly the queue place its `queue` field says);
    /// - every index and queue entry is implied by the record it names (no orphans, no message
    ///   in two places);
    /// - events `0..eventCount` exist, match their key, and the last one carries the message's
    ///   status; there are no others;
    /// - `status` and `queue` agree (QUEUED exactly when in the queue).
    ///
    /// Damage is reported as [`Problem`]s, not as an error. It reads the whole store, so it is
    /// an operator's and a test's tool, not a hot path. The answer is exact on a store nobody is
    /// writing to (open it for the check, or run it while the gateway is drained); writes that
    /// land during the walk can show up as transient problems.
    ///
    /// # Errors
    /// Storage errors only.
    pub fn check_consistency(&self) -> Result<ConsistencyReport> {
        let mut report = ConsistencyReport::default();
        self.check_records(&mut report)?;
        self.check_entries(&mut report)?;
        self.check_orphan_events(&mut report)?;
        Ok(report)
    }

    /// Pass 1: each record, what it implies, and its events.
    fn check_records(&self, report: &mut ConsistencyReport) -> Result<()> {
        let tree = self.kv();
        let prefix = Key::new(space::MESSAGE).build();
        for entry in tree.scan_prefix(&prefix) {
            let (key, value) = entry?;
            report.messages += 1;
            let message: Message = match decode(&key, &value) {
                Ok(m) => m,
                Err(e @ (E::Corrupt { .. } | E::Format(_))) => {
                    report.problem(
                        ProblemKind::Undecodable,
                        &key,
                        trailing_id(&key),
                        e.to_string(),
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            if key.as_ref() != message_key(message.organization_id, message.id).as_slice() {
                report.problem(
                    ProblemKind::Undecodable,
                    &key,
                    Some(message.id),
                    format!(
                        "record of message {} (organization {}) under another message's key",
                        message.id, message.organization_id
                    ),
                );
                continue;
            }
            match message.queue {
                QueuePlace::Ready { .. } => report.ready += 1,
                QueuePlace::Due { .. } => report.due += 1,
                QueuePlace::InFlight { .. } => report.in_flight += 1,
                QueuePlace::Done => {}
            }
            check_status_queue(&message, &key, report);
            let mut entries = derived_entries(&message);
            // provider_msg_id repeats the first of provider_msg_ids: one key, checked once.
            entries.sort_unstable();
            entries.dedup();
            for (entry_key, expected) in entries {
                match tree.get(&entry_key)? {
                    None => report.problem(
                        ProblemKind::MissingEntry,
                        &entry_key,
                        Some(message.id),
                        format!("implied by message {} ({:?})", message.id, message.queue),
                    ),
                    Some(found)
                        if found.as_ref() != expected.as_slice()
                            && !self.taken_over(entry_key.as_slice(), &found, message.id)? =>
                    {
                        report.problem(
                            ProblemKind::WrongEntryValue,
                            &entry_key,
                            Some(message.id),
                            format!(
                                "message {} expects {}, found {}",
                                message.id,
                                hex(&expected),
                                hex(&found)
                            ),
                        );
                    }
                    Some(_) => {}
                }
            }
            self.check_events(&message, report)?;
        }
        Ok(())
    }

    fn check_events(&self, m: &Message, report: &mut ConsistencyReport) -> Result<()> {
        let prefix = Key::new(space::EVENT).u64(m.id).build();
        let mut expected_seq = 0u32;
        let mut last_status = None;
        for entry in self.kv().scan_prefix(&prefix) {
            let (key, value) = entry?;
            report.events += 1;
            let seq = key
                .get(9..13)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes);
            let Some(seq) = seq.filter(|_| key.len() == 13) else {
                report.problem(
                    ProblemKind::UnexpectedEvent,
                    &key,
                    Some(m.id),
                    "event key of the wrong length".into(),
                );
                continue;
            };
            if seq >= m.event_count {
                report.problem(
                    ProblemKind::UnexpectedEvent,
                    &key,
                    Some(m.id),
                    format!("event {seq} but eventCount is {}", m.event_count),
                );
                continue;
            }
            while expected_seq < seq {
                report.problem(
                    ProblemKind::MissingEvent,
                    &Key::new(space::EVENT).u64(m.id).u32(expected_seq).build(),
                    Some(m.id),
                    format!("event {expected_seq} of {} is missing", m.event_count),
                );
                expected_seq += 1;
            }
            expected_seq = seq + 1;
            let event: MessageEvent = match decode(&key, &value) {
                Ok(e) => e,
                Err(e @ (E::Corrupt { .. } | E::Format(_))) => {
                    report.problem(ProblemKind::Undecodable, &key, Some(m.id), e.to_string());
                    last_status = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if event.seq != seq || event.message_id != m.id {
                report.problem(
                    ProblemKind::EventMismatch,
                    &key,
                    Some(m.id),
                    format!("event says message {} seq {}", event.message_id, event.seq),
                );
            }
            last_status = Some(event.status);
        }
        while expected_seq < m.event_count {
            report.problem(
                ProblemKind::MissingEvent,
                &Key::new(space::EVENT).u64(m.id).u32(expected_seq).build(),
                Some(m.id),
                format!("event {expected_seq} of {} is missing", m.event_count),
            );
            expected_seq += 1;
            last_status = None;
        }
        if let Some(status) = last_status.filter(|s| *s != m.status) {
            report.problem(
                ProblemKind::EventMismatch,
                &prefix,
                Some(m.id),
                format!(
                    "last event says {}, the record {}",
                    status.as_str(),
                    m.status.as_str()
                ),
            );
        }
        Ok(())
    }

    /// Pass 2: each index and queue entry must be implied by the record it names.
    fn check_entries(&self, report: &mut ConsistencyReport) -> Result<()> {
        let tree = self.kv();
        for space in DERIVED_SPACES {
            let start = [space];
            for entry in tree.range(start.to_vec()..prefix_end(&start)) {
                let (key, value) = entry?;
                report.entries += 1;
                let Some((org, id)) = owner(space, &key, &value) else {
                    report.problem(
                        ProblemKind::OrphanEntry,
                        &key,
                        None,
                        "entry does not name a message".into(),
                    );
                    continue;
                };
                let record_key = message_key(org, id);
                let message: Message = match tree.get(&record_key)? {
                    None => {
                        report.problem(
                            ProblemKind::OrphanEntry,
                            &key,
                            Some(id),
                            format!(
                                "names message {id} of organization {org}, which does not exist"
                            ),
                        );
                        continue;
                    }
                    Some(bytes) => match decode(&record_key, &bytes) {
                        Ok(m) => m,
                        // Already reported in pass 1.
                        Err(E::Corrupt { .. } | E::Format(_)) => continue,
                        Err(e) => return Err(e),
                    },
                };
                if !derived_entries(&message)
                    .iter()
                    .any(|(k, _)| k.as_slice() == key.as_ref())
                {
                    report.problem(
                        ProblemKind::OrphanEntry,
                        &key,
                        Some(id),
                        format!(
                            "message {id} does not imply it (status {}, {:?})",
                            message.status.as_str(),
                            message.queue
                        ),
                    );
                }
            }
        }
        // In-flight entries are checked the same way, but keyed (org, id) with no value.
        let start = [space::IN_FLIGHT];
        for entry in tree.range(start.to_vec()..prefix_end(&start)) {
            let (key, _) = entry?;
            report.entries += 1;
            let (Some(org), Some(id)) = (u64_at(&key, 1), u64_at(&key, 9)) else {
                report.problem(
                    ProblemKind::OrphanEntry,
                    &key,
                    None,
                    "in-flight key of the wrong length".into(),
                );
                continue;
            };
            let record_key = message_key(org, id);
            match tree.get(&record_key)? {
                None => report.problem(
                    ProblemKind::OrphanEntry,
                    &key,
                    Some(id),
                    format!("in flight, but message {id} does not exist"),
                ),
                Some(bytes) => match decode::<Message>(&record_key, &bytes) {
                    Ok(m) if !matches!(m.queue, QueuePlace::InFlight { .. }) => report.problem(
                        ProblemKind::OrphanEntry,
                        &key,
                        Some(id),
                        format!("in flight, but message {id} is {:?}", m.queue),
                    ),
                    Ok(_) | Err(E::Corrupt { .. } | E::Format(_)) => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(())
    }

    /// Pass 3: events of messages that do not exist (pass 1 saw every existing message's).
    fn check_orphan_events(&self, report: &mut ConsistencyReport) -> Result<()> {
        let tree = self.kv();
        let start = [space::EVENT];
        let mut current: Option<(Id, bool)> = None;
        for entry in tree.range(start.to_vec()..prefix_end(&start)).keys() {
            let key = entry?;
            let Some(id) = u64_at(&key, 1) else {
                report.problem(
                    ProblemKind::UnexpectedEvent,
                    &key,
                    None,
                    "event key of the wrong length".into(),
                );
                continue;
            };
            let exists = match current {
                Some((seen, exists)) if seen == id => exists,
                _ => {
                    let exists = self.message_exists(id)?;
                    current = Some((id, exists));
                    exists
                }
            };
            if !exists {
                report.events += 1;
                report.problem(
                    ProblemKind::UnexpectedEvent,
                    &key,
                    Some(id),
                    format!("event of message {id}, which does not exist"),
                );
            }
        }
        Ok(())
    }

    /// Whether any organization has a message record with this id. Event keys carry no
    /// organization, so this is a scan of the message keyspace per organization prefix; it
    /// only runs for event keys, once per message.
    /// Whether a provider-id entry that names another message was rightly taken over: a newer
    /// message was submitted with the same provider id (carriers reuse ids) and implies it too.
    fn taken_over(&self, key: &[u8], found: &[u8], id: Id) -> Result<bool> {
        if key.first() != Some(&space::MSG_BY_PROVIDER_ID) {
            return Ok(false);
        }
        let (Some(org), Some(owner)) = (u64_at(found, 0), u64_at(found, 8)) else {
            return Ok(false);
        };
        if owner <= id {
            return Ok(false);
        }
        let record_key = message_key(org, owner);
        let Some(bytes) = self.kv().get(&record_key)? else {
            return Ok(false);
        };
        let newer: Message = decode(&record_key, &bytes)?;
        Ok(derived_entries(&newer)
            .iter()
            .any(|(k, _)| k.as_slice() == key))
    }

    fn message_exists(&self, id: Id) -> Result<bool> {
        let tree = self.kv();
        let mut from = Key::new(space::MESSAGE).build();
        let end = prefix_end(&from);
        // Skip scan over organizations: one seek each.
        while let Some((key, _)) = tree.range(from.clone()..end.clone()).next().transpose()? {
            let Some(org) = u64_at(&key, 1) else {
                return Ok(false);
            };
            if tree.contains_key(message_key(org, id))? {
                return Ok(true);
            }
            from = prefix_end(&Key::new(space::MESSAGE).u64(org).build());
        }
        Ok(false)
    }
}

/// The (organization, message) an entry of a derived keyspace belongs to.
fn owner(space: u8, key: &[u8], value: &[u8]) -> Option<(Id, Id)> {
    match space {
        space::READY | space::IDEMPOTENCY => Some((u64_at(key, 1)?, u64_at(value, 0)?)),
        space::MSG_BY_PROVIDER_ID => Some((u64_at(value, 0)?, u64_at(value, 8)?)),
        space::DUE | space::RECEIPT_DUE => Some((u64_at(key, 9)?, trailing_id(key)?)),
        _ => Some((u64_at(key, 1)?, trailing_id(key)?)),
    }
}

fn check_status_queue(m: &Message, key: &[u8], report: &mut ConsistencyReport) {
    let queued = m.status == MessageStatus::Queued;
    let in_queue = m.queue != QueuePlace::Done;
    let inbound_ok = m.direction == Direction::Outbound || !in_queue;
    if queued != in_queue || !inbound_ok {
        report.problem(
            ProblemKind::StatusQueueMismatch,
            key,
            Some(m.id),
            format!(
                "{} {:?} message is {:?}",
                m.status.as_str(),
                m.direction,
                m.queue
            ),
        );
    }
}
