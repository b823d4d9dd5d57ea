//! Server-originated deliver_sm: the [`Registry`] of bound sessions and the deliverer task that
//! sends receipts and MOs to receivers and transceivers, waits for their deliver_sm_resp, and
//! retries or gives up.
//!
//! One task owns all pending deliveries in a `DelayQueue`: each pending delivery has exactly one
//! entry there, either "due" (waiting for its time or for a receiver) or "in flight" (waiting
//! for its response), so `deliveries_pending` is the queue's length. Sessions talk to it over a
//! bounded channel; it only ever `try_send`s to sessions, so it can never block on one.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use sairex_pdu::{Command, CommandStatus, DeliverSm, Pdu};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::time::{DelayQueue, delay_queue};

use crate::sim::config::SimConfig;
use crate::sim::stats::{Counters, DeliveryCounters, inc};

/// Capacity of the deliverer's inbox. Sessions wait when it is full, which slows their reading.
pub(crate) const DELIVERER_INBOX: usize = 4096;

/// Bind types (SMPP 3.4 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindKind {
    Transmitter,
    Receiver,
    Transceiver,
}

impl BindKind {
    /// Whether the ESME may submit on this bind.
    pub fn can_submit(self) -> bool {
        matches!(self, Self::Transmitter | Self::Transceiver)
    }

    /// Whether the SMSC may deliver on this bind.
    pub fn can_receive(self) -> bool {
        matches!(self, Self::Receiver | Self::Transceiver)
    }
}

/// A PDU for a connection's writer.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub command: Command,
    /// Not before this instant (response latency).
    pub not_before: Option<Instant>,
    /// Whether this answers a request of the peer (it then leaves the outstanding count).
    pub answers_request: bool,
}

/// Sequence numbers for requests the simulator sends on one connection: 1 to 0x7FFF_FFFF,
/// wrapping (SMPP 3.4 §5.1.4).
#[derive(Debug, Default)]
pub(crate) struct SequenceNumbers(AtomicU32);

impl SequenceNumbers {
    pub fn next(&self) -> u32 {
        let prev = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(if n >= 0x7FFF_FFFF { 1 } else { n + 1 })
            })
            .unwrap_or(0);
        if prev >= 0x7FFF_FFFF { 1 } else { prev + 1 }
    }
}

/// A bound session, as the deliverer sees it.
#[derive(Debug, Clone)]
pub(crate) struct SessionEntry {
    pub kind: BindKind,
    pub tx: mpsc::Sender<Outbound>,
    pub sequence: Arc<SequenceNumbers>,
}

/// The bound sessions. A std mutex: lookups are short and never await.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Debug, Default)]
struct RegistryInner {
    sessions: BTreeMap<u64, SessionEntry>,
    /// Round-robin cursor over receivers: the last session id picked.
    last_pick: u64,
}

impl Registry {
    pub fn register(&self, id: u64, entry: SessionEntry) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.sessions.insert(id, entry);
        }
    }

    pub fn deregister(&self, id: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.sessions.remove(&id);
        }
    }

    pub fn has_receiver(&self) -> bool {
        self.inner
            .lock()
            .map(|inner| inner.sessions.values().any(|s| s.kind.can_receive()))
            .unwrap_or(false)
    }

    /// The next receiver or transceiver after the last one picked (round robin).
    pub fn pick_receiver(&self) -> Option<(u64, SessionEntry)> {
        let mut inner = self.inner.lock().ok()?;
        let after = inner.last_pick;
        let pick = inner
            .sessions
            .range(after.saturating_add(1)..)
            .chain(inner.sessions.range(..=after))
            .find(|(_, s)| s.kind.can_receive())
            .map(|(&id, s)| (id, s.clone()));
        if let Some((id, _)) = &pick {
            inner.last_pick = *id;
        }
        pick
    }
}

/// Receipt or MO: they are counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliveryKind {
    Receipt,
    Mo,
}

/// One deliver_sm to get acknowledged.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub kind: DeliveryKind,
    /// Boxed: pending deliveries sit in queues and maps where a small entry keeps moves cheap.
    pub pdu: Box<DeliverSm>,
    /// Sends so far.
    pub attempts: u32,
    /// Given up if not acknowledged by then.
    pub give_up_at: Instant,
}

/// What sessions tell the deliverer.
#[derive(Debug)]
pub(crate) enum DelivererMsg {
    /// Deliver after `delay`.
    Schedule { delivery: Delivery, delay: Duration },
    /// A deliver_sm_resp (or generic_nack) arrived for `sequence` on `session`.
    RespReceived {
        session: u64,
        sequence: u32,
        status: CommandStatus,
    },
    /// A session ended; its in-flight deliveries must go elsewhere.
    SessionClosed { session: u64 },
}

enum Timer {
    Due(Delivery),
    InFlight { session: u64, sequence: u32 },
}

struct InFlight {
    delivery: Delivery,
    key: delay_queue::Key,
}

struct Deliverer {
    config: Arc<SimConfig>,
    counters: Arc<Counters>,
    registry: Arc<Registry>,
    queue: DelayQueue<Timer>,
    in_flight: HashMap<(u64, u32), InFlight>,
}

/// Runs the deliverer until `cancel` fires or every sender is gone.
pub(crate) async fn run(
    config: Arc<SimConfig>,
    counters: Arc<Counters>,
    registry: Arc<Registry>,
    mut inbox: mpsc::Receiver<DelivererMsg>,
    cancel: CancellationToken,
) {
    let mut d = Deliverer {
        config,
        counters,
        registry,
        queue: DelayQueue::new(),
        in_flight: HashMap::new(),
    };
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            msg = inbox.recv() => match msg {
                Some(msg) => d.on_message(msg),
                None => break,
            },
            Some(expired) = d.queue.next(), if !d.queue.is_empty() => d.on_timer(expired.into_inner()),
        }
        d.publish();
    }
}

impl Deliverer {
    fn counters(&self, kind: DeliveryKind) -> &DeliveryCounters {
        match kind {
            DeliveryKind::Receipt => &self.counters.receipts,
            DeliveryKind::Mo => &self.counters.mo,
        }
    }

    fn publish(&self) {
        let n = u64::try_from(self.queue.len()).unwrap_or(u64::MAX);
        self.counters.deliveries_pending.store(n, Ordering::Relaxed);
    }

    fn on_message(&mut self, msg: DelivererMsg) {
        match msg {
            DelivererMsg::Schedule { delivery, delay } => {
                if self.queue.len() >= self.config.max_pending_deliveries {
                    inc(&self.counters(delivery.kind).dropped);
                    return;
                }
                inc(&self.counters(delivery.kind).scheduled);
                self.queue.insert(Timer::Due(delivery), delay);
            }
            DelivererMsg::RespReceived {
                session,
                sequence,
                status,
            } => {
                let Some(flight) = self.in_flight.remove(&(session, sequence)) else {
                    // A late answer to a delivery already timed out, or a stray response.
                    return;
                };
                self.queue.try_remove(&flight.key);
                if status.is_ok() {
                    inc(&self.counters(flight.delivery.kind).acked);
                } else {
                    inc(&self.counters(flight.delivery.kind).nacked);
                    self.retry(flight.delivery);
                }
            }
            DelivererMsg::SessionClosed { session } => {
                let lost: Vec<(u64, u32)> = self
                    .in_flight
                    .keys()
                    .filter(|(s, _)| *s == session)
                    .copied()
                    .collect();
                for key in lost {
                    if let Some(flight) = self.in_flight.remove(&key) {
                        self.queue.try_remove(&flight.key);
                        self.retry(flight.delivery);
                    }
                }
            }
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::Due(delivery) => self.send(delivery),
            Timer::InFlight { session, sequence } => {
                if let Some(flight) = self.in_flight.remove(&(session, sequence)) {
                    inc(&self.counters(flight.delivery.kind).timed_out);
                    self.retry(flight.delivery);
                }
            }
        }
    }

    fn send(&mut self, mut delivery: Delivery) {
        let now = Instant::now();
        if now >= delivery.give_up_at {
            inc(&self.counters(delivery.kind).unacked);
            return;
        }
        let Some((session, entry)) = self.registry.pick_receiver() else {
            // Like an SMSC storing the message until a receiver binds.
            self.queue
                .insert(Timer::Due(delivery), self.config.delivery_retry_interval);
            return;
        };
        let sequence = entry.sequence.next();
        let out = Outbound {
            command: Command::new(sequence, Pdu::DeliverSm((*delivery.pdu).clone())),
            not_before: None,
            answers_request: false,
        };
        if entry.tx.try_send(out).is_err() {
            // That connection's queue is full or closing: try again later, not counted as an
            // attempt because the ESME never saw it.
            self.queue
                .insert(Timer::Due(delivery), self.config.delivery_retry_interval);
            return;
        }
        delivery.attempts += 1;
        inc(&self.counters(delivery.kind).sent);
        let key = self.queue.insert(
            Timer::InFlight { session, sequence },
            self.config.delivery_resp_timeout,
        );
        self.in_flight
            .insert((session, sequence), InFlight { delivery, key });
    }

    fn retry(&mut self, delivery: Delivery) {
        let counters = self.counters(delivery.kind);
        if delivery.attempts >= self.config.delivery_max_attempts
            || Instant::now() >= delivery.give_up_at
        {
            inc(&counters.unacked);
            return;
        }
        inc(&counters.retried);
        self.queue
            .insert(Timer::Due(delivery), self.config.delivery_retry_interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_wrap_inside_the_spec_range() {
        let seq = SequenceNumbers(AtomicU32::new(0x7FFF_FFFE));
        assert_eq!(seq.next(), 0x7FFF_FFFF);
        assert_eq!(seq.next(), 1);
        assert_eq!(seq.next(), 2);
        assert_eq!(SequenceNumbers::default().next(), 1);
    }

    #[test]
    fn receivers_are_picked_round_robin_and_transmitters_never() {
        let registry = Registry::default();
        let (tx, _rx) = mpsc::channel(1);
        let entry = |kind| SessionEntry {
            kind,
            tx: tx.clone(),
            sequence: Arc::default(),
        };
        registry.register(1, entry(BindKind::Transmitter));
        assert!(!registry.has_receiver());
        assert!(registry.pick_receiver().is_none());
        registry.register(2, entry(BindKind::Receiver));
        registry.register(3, entry(BindKind::Transceiver));
        let picks: Vec<u64> = (0..4)
            .filter_map(|_| registry.pick_receiver().map(|(id, _)| id))
            .collect();
        assert_eq!(picks, [2, 3, 2, 3]);
        registry.deregister(2);
        assert_eq!(registry.pick_receiver().map(|(id, _)| id), Some(3));
    }
}
