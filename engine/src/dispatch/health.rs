//! The health monitor (blueprint §4.3.4): each provider's health from its recent failures.
//!
//! - A failure is an answer that says the provider, not the message, is the problem: a
//!   temporary refusal, an in-doubt answer (no response), or a message it could not send.
//!   Throttling and permanent refusals of one message are not failures.
//! - More than [`HealthRules::degraded_after`] failures within [`HealthRules::window`] make
//!   it DEGRADED (tried after its healthy peers of the same priority), more than
//!   [`HealthRules::down_after`] make it DOWN (left out of routing).
//! - Failures within [`HealthRules::coalesce`] of the previous one count once: a bind that
//!   drops with a full window fails dozens of messages in one incident, and that alone must
//!   not take a provider DOWN while it reconnects in a second.
//! - An accepted message resets the count and makes it HEALTHY.
//! - A DOWN provider gets no traffic, so nothing could prove it well again: after
//!   [`HealthRules::probe_after`] it becomes DEGRADED, so the next messages probe it.
//!
//! Pure state; time is passed in (store clock, ms).

use std::collections::{HashMap, VecDeque};

use sairex_store::model::{HealthStatus, Id, Millis};

/// Thresholds (defaults from the blueprint: >5 failures in 5 minutes DEGRADED, >20 DOWN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthRules {
    /// How far back failures count (ms).
    pub window: Millis,
    /// More failures than this in the window: DEGRADED.
    pub degraded_after: u32,
    /// More failures than this in the window: DOWN.
    pub down_after: u32,
    /// How long a provider stays DOWN before it is probed again (ms).
    pub probe_after: Millis,
    /// Failures closer than this to the previous one are the same incident (ms).
    pub coalesce: Millis,
}

impl Default for HealthRules {
    fn default() -> Self {
        Self {
            window: 5 * 60 * 1_000,
            degraded_after: 5,
            down_after: 20,
            probe_after: 60 * 1_000,
            coalesce: 1_000,
        }
    }
}

#[derive(Debug, Default)]
struct Tracker {
    failures: VecDeque<Millis>,
    status: Option<HealthStatus>,
    down_since: Millis,
}

/// A change to record: the provider's new status and its failure count now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthChange {
    /// The provider.
    pub provider: Id,
    /// Its new status.
    pub status: HealthStatus,
    /// Failures in the window.
    pub failures: u32,
}

/// Health of every provider the dispatcher sends through.
#[derive(Debug, Default)]
pub struct HealthMonitor {
    rules: HealthRules,
    trackers: HashMap<Id, Tracker>,
}

impl HealthMonitor {
    /// A monitor with these rules.
    pub fn new(rules: HealthRules) -> Self {
        Self {
            rules,
            trackers: HashMap::new(),
        }
    }

    /// The status the monitor last gave `provider` (`None` before any answer).
    pub fn status(&self, provider: Id) -> Option<HealthStatus> {
        self.trackers.get(&provider).and_then(|t| t.status)
    }

    /// Starts from a status read from the store (a provider stored DOWN is probed after the
    /// delay, counted from `now`).
    pub fn seed(&mut self, provider: Id, status: HealthStatus, now: Millis) {
        let t = self.trackers.entry(provider).or_default();
        match status {
            HealthStatus::Unknown => {}
            HealthStatus::Down => {
                t.status = Some(status);
                t.down_since = now;
            }
            _ => t.status = Some(status),
        }
    }

    /// Forgets a provider that was removed.
    pub fn forget(&mut self, provider: Id) {
        self.trackers.remove(&provider);
    }

    /// The provider accepted a message.
    pub fn success(&mut self, provider: Id) -> Option<HealthChange> {
        let t = self.trackers.entry(provider).or_default();
        t.failures.clear();
        Self::set(provider, t, HealthStatus::Healthy)
    }

    /// The provider failed a message (see the module docs for what counts).
    pub fn failure(&mut self, provider: Id, now: Millis) -> Option<HealthChange> {
        let rules = self.rules;
        let t = self.trackers.entry(provider).or_default();
        if t.failures
            .back()
            .is_some_and(|&last| now.saturating_sub(last) < rules.coalesce)
        {
            return None;
        }
        t.failures.push_back(now);
        Self::expire(t, now, rules.window);
        // Only the count matters beyond `down_after`; keep memory bounded.
        let cap = usize::try_from(rules.down_after)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        while t.failures.len() > cap {
            t.failures.pop_front();
        }
        let count = u32::try_from(t.failures.len()).unwrap_or(u32::MAX);
        let status = if count > rules.down_after {
            HealthStatus::Down
        } else if count > rules.degraded_after {
            HealthStatus::Degraded
        } else {
            t.status.unwrap_or(HealthStatus::Healthy)
        };
        // Failures alone never improve a status (a DEGRADED probe that fails stays at most
        // DEGRADED until the count says DOWN).
        let status = worse(t.status.unwrap_or(HealthStatus::Healthy), status);
        if t.status.is_none() && status == HealthStatus::Healthy {
            // A first failure says nothing new: the store's UNKNOWN stands until a success.
            return None;
        }
        if status == HealthStatus::Down && t.status != Some(HealthStatus::Down) {
            t.down_since = now;
        }
        Self::set(provider, t, status)
    }

    /// Periodic pass: failures leave the window; DOWN providers past the probe delay become
    /// DEGRADED.
    pub fn tick(&mut self, now: Millis) -> Vec<HealthChange> {
        let rules = self.rules;
        let mut changes = Vec::new();
        for (&provider, t) in &mut self.trackers {
            Self::expire(t, now, rules.window);
            if t.status == Some(HealthStatus::Down)
                && now.saturating_sub(t.down_since) >= rules.probe_after
            {
                // Probing: a few more failures put it straight back DOWN.
                let keep = usize::try_from(rules.degraded_after).unwrap_or(0);
                while t.failures.len() > keep.saturating_add(1) {
                    t.failures.pop_front();
                }
                changes.extend(Self::set(provider, t, HealthStatus::Degraded));
            }
        }
        changes
    }

    fn expire(t: &mut Tracker, now: Millis, window: Millis) {
        while t
            .failures
            .front()
            .is_some_and(|&at| now.saturating_sub(at) > window)
        {
            t.failures.pop_front();
        }
    }

    fn set(provider: Id, t: &mut Tracker, status: HealthStatus) -> Option<HealthChange> {
        if t.status == Some(status) {
            return None;
        }
        t.status = Some(status);
        Some(HealthChange {
            provider,
            status,
            failures: u32::try_from(t.failures.len()).unwrap_or(u32::MAX),
        })
    }
}

fn rank(s: HealthStatus) -> u8 {
    match s {
        HealthStatus::Unknown | HealthStatus::Healthy => 0,
        HealthStatus::Degraded => 1,
        HealthStatus::Down => 2,
    }
}

fn worse(a: HealthStatus, b: HealthStatus) -> HealthStatus {
    if rank(b) > rank(a) { b } else { a }
}

/// The [`crate::metrics::PROVIDER_HEALTH`] value of a status: 1 healthy, 0.5 degraded, 0 down.
pub fn gauge_value(status: HealthStatus) -> f64 {
    match status {
        HealthStatus::Unknown | HealthStatus::Healthy => 1.0,
        HealthStatus::Degraded => 0.5,
        HealthStatus::Down => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Id = 3;

    #[test]
    fn six_failures_degrade_twenty_one_take_it_down_a_success_heals() {
        let mut h = HealthMonitor::new(HealthRules::default());
        let mut changes = Vec::new();
        for i in 0..21 {
            changes.extend(h.failure(P, 1_000 * (i + 1)));
        }
        assert_eq!(
            changes,
            vec![
                HealthChange {
                    provider: P,
                    status: HealthStatus::Degraded,
                    failures: 6
                },
                HealthChange {
                    provider: P,
                    status: HealthStatus::Down,
                    failures: 21
                },
            ]
        );
        assert_eq!(
            h.success(P),
            Some(HealthChange {
                provider: P,
                status: HealthStatus::Healthy,
                failures: 0
            })
        );
        assert_eq!(h.success(P), None);
    }

    #[test]
    fn a_burst_of_failures_is_one_incident() {
        let mut h = HealthMonitor::new(HealthRules::default());
        h.success(P);
        // A bind dropping with 64 messages in its window.
        for i in 0..64 {
            assert_eq!(h.failure(P, 10_000 + i), None);
        }
        assert_eq!(h.status(P), Some(HealthStatus::Healthy));
        // Failures that go on, second after second, are not one incident.
        let mut changes = Vec::new();
        for s in 1..=6 {
            changes.extend(h.failure(P, 10_000 + s * 1_000));
        }
        assert_eq!(
            changes.last().map(|c| c.status),
            Some(HealthStatus::Degraded)
        );
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let rules = HealthRules::default();
        let mut h = HealthMonitor::new(rules);
        h.success(P);
        for i in 0..5 {
            h.failure(P, i * 1_000);
        }
        // Five failures long ago, one now: one in the window, not six (which is DEGRADED).
        assert_eq!(h.failure(P, rules.window + 10), None);
        assert_eq!(h.status(P), Some(HealthStatus::Healthy));
    }

    #[test]
    fn a_down_provider_is_probed_after_the_delay_and_goes_down_again_quickly() {
        let rules = HealthRules::default();
        let mut h = HealthMonitor::new(rules);
        for i in 0..21 {
            h.failure(P, i * 1_000);
        }
        assert_eq!(h.status(P), Some(HealthStatus::Down));
        assert!(h.tick(20_000 + rules.probe_after - 1).is_empty());
        let t = 20_000 + rules.probe_after;
        assert_eq!(
            h.tick(t).first().map(|c| c.status),
            Some(HealthStatus::Degraded)
        );
        // Still failing: it is not DOWN again at once, but well before another 21 failures.
        let mut n = 0;
        while h.status(P) != Some(HealthStatus::Down) {
            h.failure(P, t + n * 1_000);
            n += 1;
        }
        assert!(n <= 20, "{n} failures to go down again");
    }
}
