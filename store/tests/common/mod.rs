//! The model-based store test's operations, model and checker, shared by `model.rs` (random
//! sequences) and `regression.rs` (pinned shrunk failures).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sairex_store::model::{Message, MessageStatus, Priority, QueuePlace};
use sairex_store::{
    PartsAccepted, Store, StoreError, StoreOptions, Submitted, SyncPolicy, Transition, now_ms,
};

/// Organizations the ops use (1..=ORGS).
pub const ORGS: u64 = 3;

/// When a new message may be sent.
#[derive(Debug, Clone, Copy)]
pub enum Sched {
    /// No `scheduledAt`.
    Now,
    /// `scheduledAt` in the past: ready at once.
    Past,
    /// `scheduledAt` this many ms after the test's base time: waits in the due index.
    Future(u64),
}

/// Which message an op acts on: the `index`th (modulo) of the in-flight messages when
/// `in_flight` and there are some, else of all messages, in id order.
#[derive(Debug, Clone, Copy)]
pub struct Pick {
    pub in_flight: bool,
    pub index: usize,
}

/// One step, applied to the store and to the model.
#[derive(Debug, Clone)]
pub enum Op {
    Enqueue {
        org: u64,
        priority: u8,
        idempotency_key: Option<u8>,
        sched: Sched,
    },
    Lease {
        org: u64,
        max: usize,
    },
    Ack(Pick),
    Retry {
        pick: Pick,
        delay: u64,
    },
    Requeue(Pick),
    /// A provider accepted part 1 of 2 of an in-flight message (a partial send).
    AcceptParts(Pick),
    Finalize {
        pick: Pick,
        status: MessageStatus,
    },
    /// Advance the virtual clock by `advance` ms and promote at most `max` due messages.
    PromoteDue {
        advance: u64,
        max: usize,
    },
    /// Drop the store (a clean shutdown) and open it again: recovery requeues in-flight ones.
    Reopen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Ready(u64),
    Due(u64),
    InFlight,
    Done,
}

#[derive(Debug, Clone)]
struct ModelMessage {
    org: u64,
    priority: u8,
    status: MessageStatus,
    place: Place,
    retry_count: u32,
    events: Vec<String>,
    /// Whether part 1 was recorded accepted.
    partial: bool,
}

/// What the store should hold: a few maps and a counter for ready order.
#[derive(Debug, Default)]
struct Model {
    messages: BTreeMap<u64, ModelMessage>,
    idempotency: BTreeMap<(u64, u8), u64>,
    next_seq: u64,
}

impl Model {
    fn ready(&mut self, id: u64) {
        self.next_seq += 1;
        let seq = self.next_seq;
        if let Some(m) = self.messages.get_mut(&id) {
            m.place = Place::Ready(seq);
        }
    }

    /// Ready messages of `org` in lease order: priority, then the order they became ready.
    fn ready_order(&self, org: u64) -> Vec<u64> {
        let mut ready: Vec<(u8, u64, u64)> = self
            .messages
            .iter()
            .filter(|(_, m)| m.org == org)
            .filter_map(|(&id, m)| match m.place {
                Place::Ready(seq) => Some((m.priority, seq, id)),
                _ => None,
            })
            .collect();
        ready.sort_unstable();
        ready.into_iter().map(|(_, _, id)| id).collect()
    }

    fn in_flight(&self, org: Option<u64>) -> Vec<u64> {
        self.messages
            .iter()
            .filter(|(_, m)| m.place == Place::InFlight && org.is_none_or(|o| m.org == o))
            .map(|(&id, _)| id)
            .collect()
    }

    fn pick(&self, pick: Pick) -> Option<u64> {
        let in_flight = self.in_flight(None);
        let from: Vec<u64> = if pick.in_flight && !in_flight.is_empty() {
            in_flight
        } else {
            self.messages.keys().copied().collect()
        };
        (!from.is_empty()).then(|| from[pick.index % from.len()])
    }
}

/// The store, the model, and the virtual clock the due index is driven by.
pub struct Harness {
    dir: PathBuf,
    store: Option<Store>,
    model: Model,
    rt: tokio::runtime::Runtime,
    /// Far in the future of the wall clock, so `Sched::Future` is always in the future for
    /// the store's own `now` at enqueue, while promotion runs on this virtual clock.
    base: u64,
    now: u64,
}

fn options(dir: &Path) -> StoreOptions {
    // Durability is the crash test's business; this one checks semantics, and a clean drop
    // flushes, so skipping the per-op fsync keeps 64 cases fast.
    StoreOptions {
        sync: SyncPolicy::None,
        ..StoreOptions::new(dir)
    }
}

impl Harness {
    pub fn new(dir: &Path) -> Self {
        let base = now_ms() + 10 * 24 * 3600 * 1000;
        Self {
            dir: dir.to_path_buf(),
            store: Some(Store::open(options(dir)).unwrap()),
            model: Model::default(),
            rt: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            base,
            now: base,
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    fn event(&mut self, id: u64, event: &str) {
        self.model
            .messages
            .get_mut(&id)
            .unwrap()
            .events
            .push(event.to_owned());
    }

    /// Applies `op` to both and compares what it returned; then [`Harness::check`].
    pub fn apply(&mut self, op: &Op) {
        match *op {
            Op::Enqueue {
                org,
                priority,
                idempotency_key,
                sched,
            } => self.enqueue(org, priority, idempotency_key, sched),
            Op::Lease { org, max } => {
                let got: Vec<u64> = self
                    .rt
                    .block_on(self.store().lease(org, max))
                    .unwrap()
                    .iter()
                    .map(|m| m.id)
                    .collect();
                let want: Vec<u64> = self.model.ready_order(org).into_iter().take(max).collect();
                assert_eq!(got, want, "lease({org}, {max}) order");
                for id in want {
                    self.model.messages.get_mut(&id).unwrap().place = Place::InFlight;
                }
            }
            Op::Ack(pick) => self.in_flight_op(pick, "SUBMITTED", |store, org, id| async move {
                let submitted = Submitted {
                    provider_id: 1,
                    provider_msg_ids: vec![format!("P{id}")],
                    ..Submitted::default()
                };
                store.ack_submitted(org, id, submitted).await
            }),
            Op::Retry { pick, delay } => {
                let due = self.now + delay;
                self.in_flight_op(pick, "RETRY", move |store, org, id| async move {
                    store.retry_at(org, id, due, "throttled".into()).await
                });
            }
            Op::Requeue(pick) => self.in_flight_op(pick, "REQUEUED", |store, org, id| async move {
                store
                    .requeue(org, id, "REQUEUED", "session lost".into())
                    .await
            }),
            Op::AcceptParts(pick) => {
                self.in_flight_op(pick, "PARTS_ACCEPTED", |store, org, id| async move {
                    let accepted = PartsAccepted {
                        provider_id: 2,
                        total: 2,
                        reference: 7,
                        layout: "model".into(),
                        parts: vec![(0, format!("Q{id}"))],
                        detail: None,
                    };
                    store.record_accepted_parts(org, id, accepted).await
                });
            }
            Op::Finalize { pick, status } => {
                let Some(id) = self.model.pick(pick) else {
                    return;
                };
                let org = self.model.messages[&id].org;
                let before = self.model.messages[&id].status;
                let outcome = self
                    .rt
                    .block_on(self.store().finalize(org, id, status, None, None))
                    .unwrap();
                // A final status is never left for another: the same one is a duplicate,
                // another one stale, and neither writes anything.
                if before == status {
                    assert!(matches!(outcome, Transition::Duplicate(_)), "{outcome:?}");
                    return;
                }
                if before.is_final() {
                    assert!(matches!(outcome, Transition::Stale(_)), "{outcome:?}");
                    return;
                }
                let Transition::Applied(m) = outcome else {
                    panic!("finalize of {id} ({before:?}): {outcome:?}");
                };
                assert_eq!((m.status, m.queue), (status, QueuePlace::Done));
                let mm = self.model.messages.get_mut(&id).unwrap();
                mm.status = status;
                mm.place = Place::Done;
                self.event(id, status.as_str());
            }
            Op::PromoteDue { advance, max } => self.promote(advance, max),
            Op::Reopen => self.reopen(),
        }
        self.check();
    }

    fn enqueue(&mut self, org: u64, priority: u8, key: Option<u8>, sched: Sched) {
        let scheduled_at = match sched {
            Sched::Now => None,
            Sched::Past => Some(1),
            Sched::Future(offset) => Some(self.base + offset),
        };
        let message = Message {
            organization_id: org,
            to_number: format!("+9230000000{priority:02}"),
            body: "model".into(),
            priority: Priority(priority),
            idempotency_key: key.map(|k| format!("key-{k}")),
            scheduled_at,
            ..Message::default()
        };
        let enqueued = self.store().enqueue_blocking(message).unwrap();
        let id = enqueued.message().id;
        if let Some(&existing) = key.and_then(|k| self.model.idempotency.get(&(org, k))) {
            assert!(enqueued.is_duplicate(), "key {key:?} of org {org} was used");
            assert_eq!(id, existing);
            return;
        }
        assert!(!enqueued.is_duplicate(), "key {key:?} of org {org} is new");
        if let Some(&last) = self.model.messages.keys().next_back() {
            assert!(id > last, "ids grow: {id} after {last}");
        }
        if let Some(k) = key {
            self.model.idempotency.insert((org, k), id);
        }
        self.model.messages.insert(
            id,
            ModelMessage {
                org,
                priority,
                status: MessageStatus::Queued,
                place: Place::Done,
                retry_count: 0,
                events: vec!["QUEUED".into()],
                partial: false,
            },
        );
        match scheduled_at {
            Some(at) if at > now_ms() => {
                self.model.messages.get_mut(&id).unwrap().place = Place::Due(at)
            }
            _ => self.model.ready(id),
        }
    }

    /// An op that needs the message in flight: the model predicts whether it applies or is
    /// stale.
    fn in_flight_op<F, Fut>(&mut self, pick: Pick, event: &str, op: F)
    where
        F: FnOnce(Store, u64, u64) -> Fut,
        Fut: std::future::Future<Output = Result<Transition, StoreError>>,
    {
        let Some(id) = self.model.pick(pick) else {
            return;
        };
        let org = self.model.messages[&id].org;
        let result = self.rt.block_on(op(self.store().clone(), org, id));
        if self.model.messages[&id].place != Place::InFlight {
            // Not an error: the transition no longer applies, and nothing was written.
            assert!(
                matches!(result, Ok(Transition::Stale(_))),
                "{event} of message {id} not in flight: {result:?}"
            );
            return;
        }
        let Ok(Transition::Applied(m)) = result else {
            panic!("{event} of in-flight message {id}: {result:?}");
        };
        let now = self.now;
        match event {
            "SUBMITTED" => {
                let mm = self.model.messages.get_mut(&id).unwrap();
                mm.status = MessageStatus::Submitted;
                mm.place = Place::Done;
            }
            "RETRY" => {
                let mm = self.model.messages.get_mut(&id).unwrap();
                mm.retry_count += 1;
                let QueuePlace::Due { at } = m.queue else {
                    panic!("retry left {m:?}");
                };
                assert!(at >= now);
                mm.place = Place::Due(at);
            }
            "PARTS_ACCEPTED" => {
                assert!(matches!(m.queue, QueuePlace::InFlight { .. }), "{m:?}");
                self.model.messages.get_mut(&id).unwrap().partial = true;
            }
            _ => self.model.ready(id),
        }
        self.event(id, event);
    }

    fn promote(&mut self, advance: u64, max: usize) {
        self.now += advance;
        let now = self.now;
        let got = self
            .rt
            .block_on(self.store().promote_due(now, max))
            .unwrap();
        let mut due: Vec<(u64, u64, u64)> = self
            .model
            .messages
            .iter()
            .filter_map(|(&id, m)| match m.place {
                Place::Due(at) if at <= now => Some((at, m.org, id)),
                _ => None,
            })
            .collect();
        due.sort_unstable();
        let mut orgs = Vec::new();
        for &(_, org, id) in due.iter().take(max) {
            self.model.ready(id);
            self.event(id, "READY");
            if !orgs.contains(&org) {
                orgs.push(org);
            }
        }
        assert_eq!(got, orgs, "promote_due({now}, {max})");
    }

    fn reopen(&mut self) {
        drop(self.store.take());
        self.store = Some(Store::open(options(&self.dir)).unwrap());
        // Recovery walks the in-flight keyspace: organization, then id.
        let mut in_flight: Vec<(u64, u64)> = self
            .model
            .in_flight(None)
            .into_iter()
            .map(|id| (self.model.messages[&id].org, id))
            .collect();
        in_flight.sort_unstable();
        assert_eq!(self.store().recovery().requeued, in_flight);
        for (_, id) in in_flight {
            self.model.messages.get_mut(&id).unwrap().status = MessageStatus::Queued;
            self.model.ready(id);
            self.event(id, "RESUBMITTED_AFTER_RESTART");
        }
    }

    /// Everything the store exposes about the queue and each message equals the model, and
    /// the store's own consistency check is clean.
    pub fn check(&self) {
        let store = self.store();
        for (&id, want) in &self.model.messages {
            let m = store.message(want.org, id).unwrap();
            let place = match m.queue {
                QueuePlace::Ready { .. } => "ready",
                QueuePlace::Due { .. } => "due",
                QueuePlace::InFlight { .. } => "in flight",
                QueuePlace::Done => "done",
            };
            let want_place = match want.place {
                Place::Ready(_) => "ready",
                Place::Due(_) => "due",
                Place::InFlight => "in flight",
                Place::Done => "done",
            };
            assert_eq!(
                (m.status, place, m.retry_count, m.priority.0),
                (want.status, want_place, want.retry_count, want.priority),
                "message {id}"
            );
            if let (Place::Due(at), QueuePlace::Due { at: got }) = (want.place, m.queue) {
                assert_eq!(got, at, "message {id} due time");
            }
            let events: Vec<String> = store
                .events(want.org, id)
                .unwrap()
                .into_iter()
                .map(|e| e.event_type)
                .collect();
            assert_eq!(events, want.events, "message {id}'s trail");
            assert_eq!(m.partial.is_some(), want.partial, "message {id}'s parts");
            if want.partial {
                let found = store.message_by_provider_id(2, &format!("Q{id}")).unwrap();
                assert_eq!(found.map(|f| f.id), Some(id), "part 1 of {id} indexed");
            }
            assert_eq!(m.event_count as usize, want.events.len());
            let other = want.org % ORGS + 1;
            assert!(
                matches!(store.message(other, id), Err(StoreError::NotFound { .. })),
                "message {id} of org {} seen from org {other}",
                want.org
            );
        }
        let mut ready_orgs = Vec::new();
        for org in 1..=ORGS {
            let ready = self.model.ready_order(org).len() as u64;
            assert_eq!(
                store.ready_count(org).unwrap(),
                ready,
                "ready count of {org}"
            );
            if ready > 0 {
                ready_orgs.push(org);
            }
            assert_eq!(
                store.in_flight(org).unwrap(),
                self.model.in_flight(Some(org))
            );
        }
        assert_eq!(store.ready_orgs().unwrap(), ready_orgs);
        let next_due = self
            .model
            .messages
            .values()
            .filter_map(|m| match m.place {
                Place::Due(at) => Some(at),
                _ => None,
            })
            .min();
        assert_eq!(store.next_due().unwrap(), next_due);
        let report = store.check_consistency().unwrap();
        assert!(report.is_consistent(), "{report}");
        assert_eq!(report.messages, self.model.messages.len() as u64);
    }
}

/// Runs a whole sequence on a fresh store.
pub fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::new(dir.path());
    for op in ops {
        harness.apply(op);
    }
}
