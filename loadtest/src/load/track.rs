//! End-to-end tracking: matches each accepted message with its final status, whichever is seen
//! first (an event can overtake the answer that names its message), and records the time
//! between them.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

use serde::Serialize;
use tokio::time::Instant;

use super::stats::{Counts, LatencyRecorder, Percentiles, per_second};

/// Final statuses other than DELIVERED kept without a partner before the oldest are dropped:
/// events of messages this run did not send (another client of the organization) must not grow
/// memory without bound.
const MAX_UNMATCHED_FINALS: usize = 1 << 20;

/// A message's id as the API gives it: a number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(untagged)]
pub enum MessageKey {
    /// A numeric id.
    Num(u64),
    /// Any other id.
    Text(String),
}

/// Whether a status (as the API spells it) is final: no change follows it.
pub fn is_final(status: &str) -> bool {
    matches!(
        status,
        "DELIVERED" | "FAILED" | "REJECTED" | "EXPIRED" | "UNDELIVERED" | "CANCELLED" | "RECEIVED"
    )
}

#[derive(Debug)]
enum Seen {
    Accepted(Instant),
    /// A final status seen before the acceptance; `status` is `None` for DELIVERED.
    Final {
        status: Option<Box<str>>,
        at: Instant,
    },
}

/// The tracker's state: one entry per message seen only once so far.
#[derive(Debug)]
pub struct Tracker<K> {
    seen: HashMap<K, Seen>,
    unmatched_finals: usize,
    accepted: u64,
    delivered: u64,
    other_final: Counts,
    latency: LatencyRecorder,
    last_final: Option<Instant>,
    lagged: u64,
}

impl<K: Hash + Eq> Default for Tracker<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq> Tracker<K> {
    /// Nothing seen.
    pub fn new() -> Self {
        Self {
            seen: HashMap::new(),
            unmatched_finals: 0,
            accepted: 0,
            delivered: 0,
            other_final: Counts::new(),
            latency: LatencyRecorder::new(),
            last_final: None,
            lagged: 0,
        }
    }

    /// `key` was accepted at `at`.
    pub fn accepted(&mut self, key: K, at: Instant) {
        self.accepted += 1;
        match self.seen.entry(key) {
            Entry::Vacant(v) => {
                v.insert(Seen::Accepted(at));
            }
            // Accepted twice (the server reused an id): keep the first time.
            Entry::Occupied(o) if matches!(o.get(), Seen::Accepted(_)) => {}
            Entry::Occupied(o) => {
                if let Seen::Final { status, at: end } = o.remove() {
                    self.unmatched_finals -= 1;
                    // The event overtook the answer: accept → final is as good as zero.
                    self.complete(status.as_deref(), at, end);
                }
            }
        }
    }

    /// `key` reached `status` at `at`; statuses that are not final are ignored.
    pub fn finished(&mut self, key: K, status: &str, at: Instant) {
        if !is_final(status) {
            return;
        }
        let status = (status != "DELIVERED").then_some(status);
        match self.seen.entry(key) {
            Entry::Occupied(o) => {
                if let Seen::Accepted(start) = o.get() {
                    let start = *start;
                    o.remove();
                    self.complete(status, start, at);
                }
                // Else a second final status before the acceptance: the first one stands.
            }
            Entry::Vacant(v) => {
                if self.unmatched_finals < MAX_UNMATCHED_FINALS {
                    v.insert(Seen::Final {
                        status: status.map(Into::into),
                        at,
                    });
                    self.unmatched_finals += 1;
                }
            }
        }
    }

    /// `key` is known (from elsewhere than the event stream: a store read after the stream
    /// lagged) to be in `status`; counted like [`Tracker::finished`] but without a latency
    /// sample, since when it got there is not known. Ignored unless `key` is outstanding.
    pub fn resolved(&mut self, key: &K, status: &str) {
        if !is_final(status) {
            return;
        }
        if let Some(Seen::Accepted(_)) = self.seen.get(key) {
            self.seen.remove(key);
            match status {
                "DELIVERED" => self.delivered += 1,
                other => self.other_final.add(other),
            }
        }
    }

    /// Accepted messages whose final status has not been seen.
    pub fn outstanding_keys(&self) -> impl Iterator<Item = &K> {
        self.seen.iter().filter_map(|(k, s)| match s {
            Seen::Accepted(_) => Some(k),
            Seen::Final { .. } => None,
        })
    }

    /// Events the stream said it dropped.
    pub fn lagged_events(&self) -> u64 {
        self.lagged
    }

    /// `status` is `None` for DELIVERED.
    fn complete(&mut self, status: Option<&str>, start: Instant, end: Instant) {
        self.last_final = Some(self.last_final.map_or(end, |l| l.max(end)));
        match status {
            None => {
                self.delivered += 1;
                self.latency.record(end.saturating_duration_since(start));
            }
            Some(status) => self.other_final.add(status),
        }
    }

    /// The event stream said it dropped `missed` events.
    pub fn lagged(&mut self, missed: u64) {
        self.lagged += missed;
    }

    /// Accepted messages whose final status has not been seen.
    pub fn outstanding(&self) -> u64 {
        self.accepted - self.delivered - self.other_final.total()
    }

    /// The summary; `start` is when the run started (the rate is measured from there to the
    /// last final status).
    pub fn report(&self, start: Instant) -> E2eReport {
        let interval = self
            .last_final
            .map(|l| l.saturating_duration_since(start))
            .unwrap_or_default();
        E2eReport {
            accepted: self.accepted,
            delivered: self.delivered,
            other_final: self.other_final.clone(),
            missing: self.outstanding(),
            lagged_events: self.lagged,
            delivered_per_second: per_second(self.delivered, interval),
            seconds: interval.as_secs_f64(),
            latency_us: self.latency.percentiles(),
        }
    }
}

/// End-to-end results: accept → final status.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct E2eReport {
    /// Messages accepted.
    pub accepted: u64,
    /// Of them, DELIVERED.
    pub delivered: u64,
    /// Of them, in another final status, by status.
    pub other_final: Counts,
    /// Of them, with no final status seen (still on their way at the end, or their event lost).
    pub missing: u64,
    /// Events the server said it dropped (the stream lagged): their messages count as missing.
    pub lagged_events: u64,
    /// DELIVERED per second, from the start to the last final status.
    pub delivered_per_second: f64,
    /// Seconds from the start to the last final status.
    pub seconds: f64,
    /// Accept → DELIVERED, µs.
    pub latency_us: Percentiles,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn matches_in_either_order_and_measures_from_the_acceptance() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut t = Tracker::new();
        t.accepted(1u64, ms(10));
        t.accepted(2, ms(20));
        t.accepted(3, ms(30));
        t.finished(1, "SUBMITTED", ms(12));
        assert_eq!(t.outstanding(), 3);
        t.finished(1, "DELIVERED", ms(15));
        t.finished(2, "FAILED", ms(40));
        // 4's event overtakes its acceptance.
        t.finished(4, "DELIVERED", ms(50));
        t.accepted(4, ms(51));
        // Not ours: never matched, not counted.
        t.finished(99, "DELIVERED", ms(60));
        t.lagged(2);
        assert_eq!(t.outstanding(), 1);
        let r = t.report(t0);
        assert_eq!(r.accepted, 4);
        assert_eq!(r.delivered, 2);
        assert_eq!(r.other_final.get("FAILED"), 1);
        assert_eq!(r.missing, 1);
        assert_eq!(r.lagged_events, 2);
        assert_eq!(r.latency_us.count, 2);
        // hdrhistogram: within 0.1 %.
        assert!((5_000..=5_005).contains(&r.latency_us.max));
        assert_eq!(r.latency_us.p50, 1);
        // From the start to the last final status of ours (4's, at 50 ms).
        assert!((r.seconds - 0.050).abs() < 1e-9);
        assert!((r.delivered_per_second - 40.0).abs() < 1e-6);

        assert_eq!(t.outstanding_keys().collect::<Vec<_>>(), [&3]);
        t.resolved(&3, "DELIVERED");
        t.resolved(&3, "DELIVERED");
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.report(t0).delivered, 3);
        // Resolved without a time: no latency sample.
        assert_eq!(t.report(t0).latency_us.count, 2);
    }

    #[test]
    fn keys_are_numbers_or_strings() {
        let keys: Vec<MessageKey> = serde_json::from_str(r#"[98765, "msg_1"]"#).unwrap();
        assert_eq!(
            keys,
            [MessageKey::Num(98765), MessageKey::Text("msg_1".into())]
        );
        assert!(is_final("EXPIRED") && !is_final("QUEUED") && !is_final("SENT"));
    }
}
