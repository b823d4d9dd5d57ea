//! Request rate limits (blueprint §4.4 layers 1 and 2): per API key and per organization, each
//! per minute and per day, in fixed windows aligned to the UTC minute and day (so the reset
//! time is exact and the same for every client). A refused request is not counted.
//!
//! One short critical section per request: the counters of the key and of its organization are
//! checked and moved together, so a request is either counted everywhere or nowhere.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use sairex_store::model::{ApiKey, Id, Millis};

const MINUTE_MS: Millis = 60_000;
const DAY_MS: Millis = 86_400_000;

/// Most counters kept before those of past days are dropped.
const MAX_ENTRIES: usize = 200_000;

#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    minute: u64,
    minute_count: u64,
    day: u64,
    day_count: u64,
}

impl Counters {
    fn roll(&mut self, now: Millis) {
        let minute = now / MINUTE_MS;
        if self.minute != minute {
            self.minute = minute;
            self.minute_count = 0;
        }
        let day = now / DAY_MS;
        if self.day != day {
            self.day = day;
            self.day_count = 0;
        }
    }
}

/// Whose limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Owner {
    Key(Id),
    /// A web console user: limited like a key, and counted in its organization's limits.
    User(Id),
    Org(Id),
}

/// The outcome of [`Limiter::check`], with what the X-RateLimit-* headers say: the limit that
/// is closest to running out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Counted.
    Allowed {
        limit: u64,
        remaining: u64,
        /// Unix seconds when that window resets.
        reset: u64,
    },
    /// Over a limit; nothing counted.
    Limited {
        /// "API key" or "organization".
        scope: &'static str,
        limit: u64,
        reset: u64,
        /// Seconds until the window resets.
        retry_after: u64,
    },
}

impl Verdict {
    /// (X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset).
    pub(crate) fn headers(&self) -> (u64, u64, u64) {
        match *self {
            Self::Allowed {
                limit,
                remaining,
                reset,
            } => (limit, remaining, reset),
            Self::Limited { limit, reset, .. } => (limit, 0, reset),
        }
    }
}

/// The counters of every key and organization seen.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    counters: Mutex<HashMap<Owner, Counters>>,
}

struct Check {
    owner: Owner,
    daily: bool,
    limit: u64,
}

impl Check {
    /// What this check's window has counted.
    fn count(&self, key: &Counters, org: &Counters) -> u64 {
        let counters = match self.owner {
            Owner::Key(_) | Owner::User(_) => key,
            Owner::Org(_) => org,
        };
        if self.daily {
            counters.day_count
        } else {
            counters.minute_count
        }
    }
}

impl Limiter {
    /// Counts one request of `key` (of organization `org`) unless a limit is reached. A limit
    /// of 0 means none.
    pub(crate) fn check(
        &self,
        key: &ApiKey,
        org: Id,
        org_per_minute: Option<u32>,
        org_per_day: Option<u32>,
        now: Millis,
    ) -> Verdict {
        self.check_owner(
            Owner::Key(key.id),
            (key.rate_limit_per_min, key.rate_limit_per_day),
            org,
            (org_per_minute, org_per_day),
            now,
        )
    }

    /// Counts one state-changing request of a web console user (of organization `org`) unless
    /// a limit is reached: the user's own limits (`per_minute`, `per_day`) and the
    /// organization's, which its API keys share.
    pub(crate) fn check_user(
        &self,
        user: Id,
        (per_minute, per_day): (u32, u32),
        org: Id,
        org_limits: (Option<u32>, Option<u32>),
        now: Millis,
    ) -> Verdict {
        self.check_owner(
            Owner::User(user),
            (per_minute, per_day),
            org,
            org_limits,
            now,
        )
    }

    fn check_owner(
        &self,
        owner: Owner,
        (per_minute, per_day): (u32, u32),
        org: Id,
        (org_per_minute, org_per_day): (Option<u32>, Option<u32>),
        now: Millis,
    ) -> Verdict {
        let checks = [
            Check {
                owner,
                daily: false,
                limit: u64::from(per_minute),
            },
            Check {
                owner,
                daily: true,
                limit: u64::from(per_day),
            },
            Check {
                owner: Owner::Org(org),
                daily: false,
                limit: org_per_minute.map_or(0, u64::from),
            },
            Check {
                owner: Owner::Org(org),
                daily: true,
                limit: org_per_day.map_or(0, u64::from),
            },
        ];
        let reset_of = |daily: bool| {
            let span = if daily { DAY_MS } else { MINUTE_MS };
            (now / span + 1) * span
        };
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if counters.len() >= MAX_ENTRIES {
            let today = now / DAY_MS;
            counters.retain(|_, c| c.day == today);
        }
        let mut key_counters = counters.get(&owner).copied().unwrap_or_default();
        let mut org_counters = counters.get(&Owner::Org(org)).copied().unwrap_or_default();
        key_counters.roll(now);
        org_counters.roll(now);
        for c in checks.iter().filter(|c| c.limit > 0) {
            if c.count(&key_counters, &org_counters) >= c.limit {
                let reset_ms = reset_of(c.daily);
                return Verdict::Limited {
                    scope: match c.owner {
                        Owner::Key(_) => "API key",
                        Owner::User(_) => "console user",
                        Owner::Org(_) => "organization",
                    },
                    limit: c.limit,
                    reset: reset_ms / 1000,
                    retry_after: reset_ms.saturating_sub(now).div_ceil(1000).max(1),
                };
            }
        }
        key_counters.minute_count += 1;
        key_counters.day_count += 1;
        org_counters.minute_count += 1;
        org_counters.day_count += 1;
        counters.insert(owner, key_counters);
        counters.insert(Owner::Org(org), org_counters);
        drop(counters);
        // The binding limit: the one with the fewest requests left.
        let binding = checks
            .iter()
            .filter(|c| c.limit > 0)
            .map(|c| {
                (
                    c.limit
                        .saturating_sub(c.count(&key_counters, &org_counters)),
                    c,
                )
            })
            .min_by_key(|(remaining, _)| *remaining);
        match binding {
            Some((remaining, c)) => Verdict::Allowed {
                limit: c.limit,
                remaining,
                reset: reset_of(c.daily) / 1000,
            },
            None => Verdict::Allowed {
                limit: 0,
                remaining: 0,
                reset: reset_of(false) / 1000,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: Id, per_min: u32, per_day: u32) -> ApiKey {
        ApiKey {
            id,
            rate_limit_per_min: per_min,
            rate_limit_per_day: per_day,
            ..ApiKey::default()
        }
    }

    #[test]
    fn minute_window_limits_and_resets() {
        let limiter = Limiter::default();
        let k = key(1, 2, 100);
        let t = 10 * MINUTE_MS + 5_000;
        assert_eq!(
            limiter.check(&k, 7, None, None, t),
            Verdict::Allowed {
                limit: 2,
                remaining: 1,
                reset: 11 * 60
            }
        );
        assert!(matches!(
            limiter.check(&k, 7, None, None, t),
            Verdict::Allowed { remaining: 0, .. }
        ));
        match limiter.check(&k, 7, None, None, t) {
            Verdict::Limited {
                scope, retry_after, ..
            } => {
                assert_eq!(scope, "API key");
                assert_eq!(retry_after, 55);
            }
            other => panic!("not limited: {other:?}"),
        }
        // The next minute starts afresh.
        assert!(matches!(
            limiter.check(&k, 7, None, None, 11 * MINUTE_MS),
            Verdict::Allowed { remaining: 1, .. }
        ));
    }

    #[test]
    fn organization_limit_spans_its_keys() {
        let limiter = Limiter::default();
        let (a, b) = (key(1, 100, 1000), key(2, 100, 1000));
        let t = 5 * MINUTE_MS;
        assert!(matches!(
            limiter.check(&a, 9, Some(2), None, t),
            Verdict::Allowed { .. }
        ));
        assert!(matches!(
            limiter.check(&b, 9, Some(2), None, t),
            Verdict::Allowed { .. }
        ));
        assert!(matches!(
            limiter.check(&b, 9, Some(2), None, t),
            Verdict::Limited {
                scope: "organization",
                ..
            }
        ));
        // Another organization's key is not affected.
        assert!(matches!(
            limiter.check(&key(3, 100, 1000), 10, Some(2), None, t),
            Verdict::Allowed { .. }
        ));
    }
}
