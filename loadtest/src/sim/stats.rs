//! Counters: the atomics the connections bump, and [`SimStats`], their JSON-ready
//! snapshot.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sairex_pdu::CommandStatus;
use serde::{Deserialize, Serialize};

/// A point-in-time copy of the simulator's counters. Serializes to the JSON summary that
/// `sairex smsc-sim` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// TCP (and TLS) connections.
    pub connections: ConnectionStats,
    /// Bind outcomes and unbinds.
    pub binds: BindStats,
    /// submit_sm, data_sm and submit_multi, and how they were answered.
    pub submits: SubmitStats,
    /// Delivery receipts (deliver_sm with esm_class 0x04).
    pub receipts: DeliveryStats,
    /// Mobile-originated messages (deliver_sm with esm_class 0).
    pub mo: DeliveryStats,
    /// Receipts and MOs waiting for their time, for a receiver, or for their deliver_sm_resp.
    pub deliveries_pending: u64,
    /// Requests received beyond the configured window.
    pub window_violations: u64,
    /// The most requests of one connection seen unanswered at once.
    pub max_outstanding: u64,
    /// enquire_link requests answered.
    pub enquire_links: u64,
    /// generic_nack PDUs sent (malformed bodies, unknown commands, requests in the wrong state).
    pub generic_nacks_sent: u64,
    /// generic_nack PDUs received from ESMEs.
    pub generic_nacks_received: u64,
    /// PDUs whose header parsed but whose body did not (answered with generic_nack).
    pub malformed_pdus: u64,
    /// Connections closed for corrupt framing (command_length below 16 or over the maximum).
    pub framing_errors: u64,
    /// Submitted messages no longer kept for `received()` because the log was full.
    pub received_evicted: u64,
}

/// Connection counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStats {
    /// Connections accepted (after the TLS handshake, when TLS is on).
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections refused because `max_connections` were open.
    pub rejected: u64,
    /// TLS handshakes that failed or timed out.
    pub tls_failures: u64,
}

/// Bind counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindStats {
    /// Successful bind_transmitter.
    pub transmitter: u64,
    /// Successful bind_receiver.
    pub receiver: u64,
    /// Successful bind_transceiver.
    pub transceiver: u64,
    /// Binds refused (bad system_id or password, or already bound).
    pub failures: u64,
    /// Binds open now.
    pub bound: u64,
    /// unbind requests received from ESMEs.
    pub unbinds_received: u64,
    /// unbind requests sent to ESMEs on shutdown.
    pub unbinds_sent: u64,
}

/// Submit counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitStats {
    /// submit_sm, data_sm and submit_multi received on a bind allowed to submit.
    pub received: u64,
    /// Of which submit_sm.
    pub submit_sm: u64,
    /// Of which data_sm.
    pub data_sm: u64,
    /// Of which submit_multi.
    pub submit_multi: u64,
    /// Their responses by status name (`"ESME_ROK"`, `"ESME_RTHROTTLED"`, …; a status without
    /// a name as `"0x00000401"`).
    pub responses: BTreeMap<String, u64>,
}

/// Counters of one kind of server-originated deliver_sm (receipts or MOs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStats {
    /// Accepted for delivery.
    pub scheduled: u64,
    /// deliver_sm PDUs written (retries included).
    pub sent: u64,
    /// Answered by deliver_sm_resp with ESME_ROK.
    pub acked: u64,
    /// Answered with an error status or generic_nack.
    pub nacked: u64,
    /// Not answered within `delivery_resp_timeout`.
    pub timed_out: u64,
    /// Sent again after a nack, a timeout or a lost bind.
    pub retried: u64,
    /// Given up: attempts spent, or no receiver bound within `delivery_hold`.
    pub unacked: u64,
    /// Not accepted because `max_pending_deliveries` were pending.
    pub dropped: u64,
}

/// Atomic counters of one kind of delivery.
#[derive(Debug, Default)]
pub(crate) struct DeliveryCounters {
    pub scheduled: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub nacked: AtomicU64,
    pub timed_out: AtomicU64,
    pub retried: AtomicU64,
    pub unacked: AtomicU64,
    pub dropped: AtomicU64,
}

impl DeliveryCounters {
    fn snapshot(&self) -> DeliveryStats {
        DeliveryStats {
            scheduled: get(&self.scheduled),
            sent: get(&self.sent),
            acked: get(&self.acked),
            nacked: get(&self.nacked),
            timed_out: get(&self.timed_out),
            retried: get(&self.retried),
            unacked: get(&self.unacked),
            dropped: get(&self.dropped),
        }
    }
}

/// The live counters. Relaxed atomics: each counter is independent and a snapshot need not be
/// a consistent cut.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    pub open: AtomicU64,
    pub rejected: AtomicU64,
    pub tls_failures: AtomicU64,
    pub bind_transmitter: AtomicU64,
    pub bind_receiver: AtomicU64,
    pub bind_transceiver: AtomicU64,
    pub bind_failures: AtomicU64,
    pub bound: AtomicU64,
    pub unbinds_received: AtomicU64,
    pub unbinds_sent: AtomicU64,
    pub submits: AtomicU64,
    pub submit_sm: AtomicU64,
    pub data_sm: AtomicU64,
    pub submit_multi: AtomicU64,
    /// By raw status; a std mutex because the section is a map increment and never awaits.
    pub responses: Mutex<BTreeMap<u32, u64>>,
    pub receipts: DeliveryCounters,
    pub mo: DeliveryCounters,
    pub deliveries_pending: AtomicU64,
    pub window_violations: AtomicU64,
    pub max_outstanding: AtomicU64,
    pub enquire_links: AtomicU64,
    pub generic_nacks_sent: AtomicU64,
    pub generic_nacks_received: AtomicU64,
    pub malformed_pdus: AtomicU64,
    pub framing_errors: AtomicU64,
    pub received_evicted: AtomicU64,
}

/// Adds one.
pub(crate) fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Subtracts one, never below zero.
pub(crate) fn dec(counter: &AtomicU64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Counters {
    /// Counts one submit response.
    pub fn count_response(&self, status: CommandStatus) {
        if let Ok(mut map) = self.responses.lock() {
            *map.entry(status.0).or_insert(0) += 1;
        }
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> SimStats {
        let responses = self
            .responses
            .lock()
            .map(|map| {
                map.iter()
                    .map(|(&status, &n)| {
                        let status = CommandStatus(status);
                        let name = status
                            .name()
                            .map_or_else(|| format!("{:#010x}", status.0), str::to_owned);
                        (name, n)
                    })
                    .collect()
            })
            .unwrap_or_default();
        SimStats {
            connections: ConnectionStats {
                accepted: get(&self.accepted),
                open: get(&self.open),
                rejected: get(&self.rejected),
                tls_failures: get(&self.tls_failures),
            },
            binds: BindStats {
                transmitter: get(&self.bind_transmitter),
                receiver: get(&self.bind_receiver),
                transceiver: get(&self.bind_transceiver),
                failures: get(&self.bind_failures),
                bound: get(&self.bound),
                unbinds_received: get(&self.unbinds_received),
                unbinds_sent: get(&self.unbinds_sent),
            },
            submits: SubmitStats {
                received: get(&self.submits),
                submit_sm: get(&self.submit_sm),
                data_sm: get(&self.data_sm),
                submit_multi: get(&self.submit_multi),
                responses,
            },
            receipts: self.receipts.snapshot(),
            mo: self.mo.snapshot(),
            deliveries_pending: get(&self.deliveries_pending),
            window_violations: get(&self.window_violations),
            max_outstanding: get(&self.max_outstanding),
            enquire_links: get(&self.enquire_links),
            generic_nacks_sent: get(&self.generic_nacks_sent),
            generic_nacks_received: get(&self.generic_nacks_received),
            malformed_pdus: get(&self.malformed_pdus),
            framing_errors: get(&self.framing_errors),
            received_evicted: get(&self.received_evicted),
        }
    }
}

impl SimStats {
    /// Submit responses with this status so far.
    pub fn responses_with(&self, status: CommandStatus) -> u64 {
        let key = status
            .name()
            .map_or_else(|| format!("{:#010x}", status.0), str::to_owned);
        self.submits.responses.get(&key).copied().unwrap_or(0)
    }
}
