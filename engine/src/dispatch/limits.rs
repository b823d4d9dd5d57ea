//! Rate limits the dispatcher applies when it hands out credit (blueprint §4.4): the global
//! token bucket shared by every provider (layer 4) and per-organization limits per minute and
//! per day (layer 2). Providers keep their own TPS bucket (layer 3) on top.
//!
//! Both count **messages** leased from the queue, not segments: the dispatcher does not know how
//! a provider will split a text (that depends on its data_coding and concatenation settings),
//! and the provider's own TPS bucket already paces the segments it writes. A message leased
//! again after a retry counts again; a failover to another provider within one attempt does not.
//!
//! A message is never failed for lack of a token: the dispatcher only leases fewer (none) for
//! an organization over its limit, so its messages stay queued while other organizations send.

use std::collections::HashMap;

use sairex_store::model::{Id, Millis};
use tokio::time::Instant;

use crate::provider::token_bucket::TokenBucket;

/// One organization's limits; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrgLimits {
    /// Most messages leased in one calendar minute (UTC, fixed window).
    pub per_minute: Option<u32>,
    /// Most messages leased in one calendar day (UTC, fixed window).
    pub per_day: Option<u32>,
}

/// Rate limits above the providers' own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RateLimits {
    /// Messages per second handed to all providers together; `None` is no global limit.
    pub global_tps: Option<u32>,
    /// The global bucket's burst (default: one second's worth, `global_tps`).
    pub global_burst: Option<u32>,
    /// Per-organization limits; organizations not listed have `default_org`.
    pub per_org: HashMap<Id, OrgLimits>,
    /// Limits of every organization not in `per_org` (none by default).
    pub default_org: OrgLimits,
}

const MINUTE_MS: Millis = 60_000;
const DAY_MS: Millis = 86_400_000;

/// A count within a fixed window of `len` ms.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    index: Millis,
    used: u32,
}

impl Window {
    fn used(&mut self, len: Millis, now: Millis) -> u32 {
        let index = now / len;
        if index != self.index {
            *self = Self { index, used: 0 };
        }
        self.used
    }
}

#[derive(Debug, Default)]
struct OrgState {
    minute: Window,
    day: Window,
}

/// The dispatcher's limiter state.
#[derive(Debug)]
pub(crate) struct Limiter {
    global: Option<TokenBucket>,
    per_org: HashMap<Id, OrgLimits>,
    default_org: Option<OrgLimits>,
    orgs: HashMap<Id, OrgState>,
}

impl Limiter {
    pub(crate) fn new(limits: &RateLimits) -> Self {
        let global = limits
            .global_tps
            .map(|tps| TokenBucket::new(tps, limits.global_burst.unwrap_or(tps), Instant::now()));
        Self {
            global,
            per_org: limits.per_org.clone(),
            default_org: (limits.default_org != OrgLimits::default()).then_some(limits.default_org),
            orgs: HashMap::new(),
        }
    }

    /// Messages the global bucket allows now (`u64::MAX` without a global limit).
    pub(crate) fn global_available(&mut self) -> u64 {
        match &mut self.global {
            Some(bucket) => u64::from(bucket.available(Instant::now())),
            None => u64::MAX,
        }
    }

    /// Messages `org` may still lease now (`u64::MAX` without a limit).
    pub(crate) fn org_available(&mut self, org: Id, now: Millis) -> u64 {
        let Some(limits) = self.limits_of(org) else {
            return u64::MAX;
        };
        let state = self.orgs.entry(org).or_default();
        let mut available = u64::MAX;
        if let Some(limit) = limits.per_minute {
            let used = state.minute.used(MINUTE_MS, now);
            available = available.min(u64::from(limit.saturating_sub(used)));
        }
        if let Some(limit) = limits.per_day {
            let used = state.day.used(DAY_MS, now);
            available = available.min(u64::from(limit.saturating_sub(used)));
        }
        available
    }

    fn limits_of(&self, org: Id) -> Option<OrgLimits> {
        self.per_org.get(&org).copied().or(self.default_org)
    }

    /// Counts `n` messages leased for `org`.
    pub(crate) fn charge(&mut self, org: Id, n: u32, now: Millis) {
        if n == 0 {
            return;
        }
        if let Some(bucket) = &mut self.global {
            // Never more than `global_available` said: the take succeeds.
            let _ = bucket.take(n, Instant::now());
        }
        if self.limits_of(org).is_some() {
            let state = self.orgs.entry(org).or_default();
            state.minute.used(MINUTE_MS, now);
            state.day.used(DAY_MS, now);
            state.minute.used = state.minute.used.saturating_add(n);
            state.day.used = state.day.used.saturating_add(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_windows_reset_on_the_minute_and_the_day() {
        let limits = RateLimits {
            per_org: HashMap::from([(
                7,
                OrgLimits {
                    per_minute: Some(3),
                    per_day: Some(5),
                },
            )]),
            ..RateLimits::default()
        };
        let mut l = Limiter::new(&limits);
        assert_eq!(l.org_available(8, 0), u64::MAX, "not limited");
        assert_eq!(l.org_available(7, 0), 3);
        l.charge(7, 3, 10);
        assert_eq!(l.org_available(7, 59_999), 0);
        assert_eq!(l.org_available(7, 60_000), 2, "the day's limit is nearer");
        l.charge(7, 2, 60_001);
        assert_eq!(l.org_available(7, 120_000), 0);
        assert_eq!(l.org_available(7, DAY_MS), 3);
    }

    #[test]
    fn the_default_applies_to_organizations_not_listed() {
        let limits = RateLimits {
            per_org: HashMap::from([(7, OrgLimits::default())]),
            default_org: OrgLimits {
                per_minute: Some(2),
                per_day: None,
            },
            ..RateLimits::default()
        };
        let mut l = Limiter::new(&limits);
        assert_eq!(l.org_available(7, 0), u64::MAX, "its own: unlimited");
        assert_eq!(l.org_available(8, 0), 2);
        l.charge(8, 2, 0);
        assert_eq!(l.org_available(8, 1), 0);
        assert_eq!(l.org_available(9, 1), 2, "counted per organization");
    }
}
