//! The engine's metrics: names (blueprint §8.3 and issue 4) and small recording functions, over
//! the [`metrics`] facade. The engine installs no recorder: the binary installs the Prometheus
//! exporter; with none installed every call here is a no-op.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | [`MESSAGES_TOTAL`] | counter | `status`, `direction`, `provider` | each status change the dispatcher makes (outbound) and each inbound message stored (`RECEIVED`, `inbound`) |
//! | [`QUEUE_DEPTH`] | gauge | `org` | ready messages, read from the store by the dispatcher every second |
//! | [`DISPATCH_DURATION`] | histogram | `provider` | handed to a provider → its answer (seconds) |
//! | [`DELIVERY_RATE`] | gauge | | delivered / (delivered + failed) over the last [`DELIVERY_RATE_WINDOW`] |
//! | [`PROVIDER_HEALTH`] | gauge | `provider` | the health monitor's status: 1 HEALTHY, 0.5 DEGRADED, 0 DOWN |
//! | [`BINDS_UP`] | gauge | `provider` | SMPP binds bound now |
//! | [`WINDOW_OCCUPANCY`] | gauge | `provider` | parts outstanding (sent, not answered) over all binds |
//! | [`RECONNECTS`] | counter | `provider` | sessions restarted after they died |
//! | [`THROTTLE_EVENTS`] | counter | `provider` | `ESME_RTHROTTLED` / `ESME_RMSGQFUL` answers |
//! | [`POSSIBLE_DUPLICATES`] | counter | `provider` | in-doubt messages resubmitted (may reach the handset twice) |
//! | [`QUEUED_TO_SUBMIT_RESP`] | histogram | `provider` | queued → accepted by submit_sm_resp (seconds, store clock) |
//! | [`SUBMIT_TO_RECEIPT`] | histogram | `provider` | accepted → final receipt (seconds, store clock) |
//!
//! `provider` is the provider's store id in decimal, `org` the organization's.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use tokio::time::{Duration, Instant};

use metrics::{Counter, Gauge, counter, gauge, histogram};
use sairex_store::Store;
use sairex_store::model::{Direction, Id, Message, MessageStatus, Millis};

/// Messages by status, direction and provider (counter).
pub const MESSAGES_TOTAL: &str = "sms_messages_total";
/// Ready messages per organization (gauge).
pub const QUEUE_DEPTH: &str = "sms_queue_depth";
/// Handed to a provider → its answer, seconds (histogram).
pub const DISPATCH_DURATION: &str = "sms_dispatch_duration_seconds";
/// Rolling delivered / (delivered + failed) (gauge, 0–1).
pub const DELIVERY_RATE: &str = "sms_delivery_rate";
/// Provider health: 1 HEALTHY, 0.5 DEGRADED, 0 DOWN (gauge).
pub const PROVIDER_HEALTH: &str = "sms_provider_health";
/// SMPP binds bound now (gauge).
pub const BINDS_UP: &str = "sms_smpp_binds_up";
/// Parts outstanding on a provider's binds (gauge).
pub const WINDOW_OCCUPANCY: &str = "sms_smpp_window_occupancy";
/// Session restarts (counter).
pub const RECONNECTS: &str = "sms_smpp_reconnects_total";
/// Throttle answers (counter).
pub const THROTTLE_EVENTS: &str = "sms_smpp_throttle_events_total";
/// In-doubt resubmissions (counter).
pub const POSSIBLE_DUPLICATES: &str = "sms_possible_duplicates_total";
/// Queued → submit_sm_resp accepted, seconds (histogram).
pub const QUEUED_TO_SUBMIT_RESP: &str = "sms_queued_to_submit_resp_seconds";
/// Submitted → final receipt, seconds (histogram).
pub const SUBMIT_TO_RECEIPT: &str = "sms_submit_to_receipt_seconds";

/// The window [`DELIVERY_RATE`] is computed over.
pub const DELIVERY_RATE_WINDOW: Duration = Duration::from_secs(300);

/// The `provider` label of a message without one.
const NO_PROVIDER: &str = "none";

fn provider_label(provider: Option<Id>) -> String {
    provider.map_or_else(|| NO_PROVIDER.to_owned(), |p| p.to_string())
}

fn direction_label(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

fn seconds_between(from: Millis, to: Millis) -> f64 {
    to.saturating_sub(from) as f64 / 1_000.0
}

/// The health monitor changed a provider's status.
pub fn provider_health(provider: Id, status: sairex_store::model::HealthStatus) {
    gauge!(PROVIDER_HEALTH, "provider" => provider.to_string())
        .set(crate::dispatch::health::gauge_value(status));
}

/// A message's status changed (or an inbound message was stored): [`MESSAGES_TOTAL`] + 1.
pub fn status_changed(m: &Message) {
    counter!(
        MESSAGES_TOTAL,
        "status" => m.status.as_str(),
        "direction" => direction_label(m.direction),
        "provider" => provider_label(m.provider_id),
    )
    .increment(1);
}

/// A provider accepted `m` (its `submitted_at` set): [`QUEUED_TO_SUBMIT_RESP`].
pub fn submitted(m: &Message) {
    if let Some(at) = m.submitted_at {
        histogram!(QUEUED_TO_SUBMIT_RESP, "provider" => provider_label(m.provider_id))
            .record(seconds_between(m.queued_at, at));
    }
}

/// A final receipt applied to `m` at `now` (store clock): [`SUBMIT_TO_RECEIPT`].
pub fn receipt_final(m: &Message, now: Millis) {
    if let Some(at) = m.submitted_at {
        histogram!(SUBMIT_TO_RECEIPT, "provider" => provider_label(m.provider_id))
            .record(seconds_between(at, now));
    }
}

/// An in-doubt message is resubmitted: [`POSSIBLE_DUPLICATES`] + 1.
pub fn possible_duplicate(provider: Id) {
    counter!(POSSIBLE_DUPLICATES, "provider" => provider.to_string()).increment(1);
}

/// [`QUEUE_DEPTH`] of one organization.
pub fn queue_depth(org: Id, ready: u64) {
    gauge!(QUEUE_DEPTH, "org" => org.to_string()).set(ready as f64);
}

/// The dispatcher's metric state: send times by token and the delivery-rate window.
#[derive(Debug, Default)]
pub struct DispatchMetrics {
    inner: Mutex<DispatchInner>,
}

#[derive(Debug, Default)]
struct DispatchInner {
    sent: HashMap<u64, Instant>,
    rate: RollingRate,
    /// Organizations whose depth was last reported non-zero (reported 0 once they empty).
    depth_orgs: Vec<Id>,
}

impl DispatchMetrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, DispatchInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The message of `token` was handed to a provider now.
    pub fn sent(&self, token: u64) {
        self.lock().sent.insert(token, Instant::now());
    }

    /// The answer for `token` came from `provider`: [`DISPATCH_DURATION`].
    pub fn answered(&self, token: u64, provider: Id) {
        if let Some(at) = self.lock().sent.remove(&token) {
            histogram!(DISPATCH_DURATION, "provider" => provider.to_string())
                .record(at.elapsed().as_secs_f64());
        }
    }

    /// A status change: [`MESSAGES_TOTAL`], and [`DELIVERY_RATE`] on DELIVERED / FAILED.
    pub fn status_changed(&self, m: &Message) {
        status_changed(m);
        let delivered = match m.status {
            MessageStatus::Delivered => true,
            MessageStatus::Failed => false,
            _ => return,
        };
        let rate = self.lock().rate.add(Instant::now(), delivered);
        gauge!(DELIVERY_RATE).set(rate);
    }

    /// Reads the ready count of each organization with ready messages from `store` and
    /// reports it ([`Self::queue_depths`]). A failed read reports nothing.
    pub fn read_queue_depths(&self, store: &Store) {
        let Ok(orgs) = store.ready_orgs() else { return };
        let depths: Vec<(Id, u64)> = orgs
            .into_iter()
            .filter_map(|org| Some((org, store.ready_count(org).ok()?)))
            .collect();
        self.queue_depths(&depths);
    }

    /// Reports [`QUEUE_DEPTH`] for `depths` (organization, ready count); organizations
    /// reported before and absent now are set to 0.
    pub fn queue_depths(&self, depths: &[(Id, u64)]) {
        let mut inner = self.lock();
        for org in &inner.depth_orgs {
            if !depths.iter().any(|(o, _)| o == org) {
                queue_depth(*org, 0);
            }
        }
        for &(org, ready) in depths {
            queue_depth(org, ready);
        }
        inner.depth_orgs = depths.iter().map(|(o, _)| *o).collect();
    }
}

/// Delivered and failed counts in one-second buckets over [`DELIVERY_RATE_WINDOW`].
#[derive(Debug, Default)]
struct RollingRate {
    start: Option<Instant>,
    /// (second since `start`, delivered, failed), oldest first.
    buckets: VecDeque<(u64, u64, u64)>,
    delivered: u64,
    failed: u64,
}

impl RollingRate {
    /// Counts one outcome at `now` and returns the rate over the window.
    fn add(&mut self, now: Instant, delivered: bool) -> f64 {
        let start = *self.start.get_or_insert(now);
        let second = now.saturating_duration_since(start).as_secs();
        let oldest = second.saturating_sub(DELIVERY_RATE_WINDOW.as_secs() - 1);
        while let Some(&(s, d, f)) = self.buckets.front() {
            if s >= oldest {
                break;
            }
            self.delivered -= d;
            self.failed -= f;
            self.buckets.pop_front();
        }
        match self.buckets.back_mut() {
            Some(b) if b.0 == second => {
                if delivered {
                    b.1 += 1;
                } else {
                    b.2 += 1;
                }
            }
            _ => self
                .buckets
                .push_back((second, u64::from(delivered), u64::from(!delivered))),
        }
        if delivered {
            self.delivered += 1;
        } else {
            self.failed += 1;
        }
        self.delivered as f64 / (self.delivered + self.failed) as f64
    }
}

/// One provider's handles, registered once at its start.
#[derive(Debug, Clone)]
pub struct ProviderMetrics {
    window: Gauge,
    binds_up: Gauge,
    reconnects: Counter,
    throttles: Counter,
}

impl ProviderMetrics {
    /// Handles for `provider` (from the recorder installed now).
    pub fn new(provider: Id) -> Self {
        let label = provider.to_string();
        Self {
            window: gauge!(WINDOW_OCCUPANCY, "provider" => label.clone()),
            binds_up: gauge!(BINDS_UP, "provider" => label.clone()),
            reconnects: counter!(RECONNECTS, "provider" => label.clone()),
            throttles: counter!(THROTTLE_EVENTS, "provider" => label),
        }
    }

    /// The provider's state now: parts outstanding, and binds bound.
    pub fn state(&self, in_flight_parts: usize, binds_up: usize) {
        self.window.set(in_flight_parts as f64);
        self.binds_up.set(binds_up as f64);
    }

    /// A session restarted.
    pub fn reconnect(&self) {
        self.reconnects.increment(1);
    }

    /// A throttle answer.
    pub fn throttled(&self) {
        self.throttles.increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_rate_forgets_outside_the_window() {
        let mut r = RollingRate::default();
        let t0 = Instant::now();
        assert!((r.add(t0, false) - 0.0).abs() < 1e-9);
        assert!((r.add(t0, true) - 0.5).abs() < 1e-9);
        assert!((r.add(t0 + Duration::from_secs(1), true) - 2.0 / 3.0).abs() < 1e-9);
        // The failure at t0 leaves the window; the deliveries at t0 too.
        let later = t0 + DELIVERY_RATE_WINDOW + Duration::from_millis(500);
        assert!((r.add(later, true) - 1.0).abs() < 1e-9);
        assert_eq!((r.delivered, r.failed), (2, 0));
    }
}
