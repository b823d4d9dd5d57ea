//! Lock-out after repeated wrong passwords, per system id and per source address: a bounded
//! table of failure streaks (a flood of random names cannot grow it past [`MAX_ENTRIES`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use tokio::time::{Duration, Instant};

/// Most streaks remembered; past it, expired ones are dropped, then the table is cleared (a
/// locked name may then bind again early, which is the safe direction for memory).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    SystemId(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Streak {
    failures: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

/// The failure streaks.
#[derive(Debug)]
pub(crate) struct Lockout {
    after: u32,
    duration: Duration,
    streaks: Mutex<HashMap<Subject, Streak>>,
}

/// Which subject a lock-out is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Locked {
    SystemId,
    Ip,
}

impl Lockout {
    pub(crate) fn new(after: u32, duration: Duration) -> Self {
        Self {
            after: after.max(1),
            duration,
            streaks: Mutex::new(HashMap::new()),
        }
    }

    /// Whether binds of `system_id` or from `ip` are locked out now.
    pub(crate) fn check(&self, system_id: &str, ip: IpAddr) -> Option<Locked> {
        let now = Instant::now();
        let streaks = self.streaks.lock().unwrap_or_else(PoisonError::into_inner);
        let locked = |s: &Subject| {
            streaks
                .get(s)
                .and_then(|st| st.locked_until)
                .is_some_and(|until| until > now)
        };
        if locked(&Subject::SystemId(system_id.to_owned())) {
            Some(Locked::SystemId)
        } else if locked(&Subject::Ip(ip)) {
            Some(Locked::Ip)
        } else {
            None
        }
    }

    /// Counts a wrong password (or unknown system id, for the address); returns the subjects
    /// this failure locked out.
    pub(crate) fn failed(&self, system_id: Option<&str>, ip: IpAddr) -> Vec<Locked> {
        let now = Instant::now();
        let mut streaks = self.streaks.lock().unwrap_or_else(PoisonError::into_inner);
        if streaks.len() >= MAX_ENTRIES {
            let stale = self.duration;
            streaks.retain(|_, s| now.duration_since(s.last) < stale);
            if streaks.len() >= MAX_ENTRIES {
                streaks.clear();
            }
        }
        let mut locked = Vec::new();
        let subjects = system_id
            .map(|s| (Subject::SystemId(s.to_owned()), Locked::SystemId))
            .into_iter()
            .chain(std::iter::once((Subject::Ip(ip), Locked::Ip)));
        for (subject, which) in subjects {
            let streak = streaks.entry(subject).or_insert(Streak {
                failures: 0,
                locked_until: None,
                last: now,
            });
            if streak.locked_until.is_some_and(|until| until <= now) {
                streak.failures = 0;
                streak.locked_until = None;
            }
            streak.failures = streak.failures.saturating_add(1);
            streak.last = now;
            if streak.failures >= self.after && streak.locked_until.is_none() {
                streak.locked_until = Some(now + self.duration);
                locked.push(which);
            }
        }
        locked
    }

    /// A good bind ends both streaks.
    pub(crate) fn succeeded(&self, system_id: &str, ip: IpAddr) {
        let mut streaks = self.streaks.lock().unwrap_or_else(PoisonError::into_inner);
        streaks.remove(&Subject::SystemId(system_id.to_owned()));
        streaks.remove(&Subject::Ip(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn locks_after_the_streak_and_unlocks_later() {
        let lockout = Lockout::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(lockout.failed(Some("acme"), ip).is_empty());
        assert!(lockout.failed(Some("acme"), ip).is_empty());
        assert_eq!(
            lockout.failed(Some("acme"), ip),
            vec![Locked::SystemId, Locked::Ip]
        );
        assert_eq!(lockout.check("acme", ip), Some(Locked::SystemId));
        assert_eq!(
            lockout.check("other", ip),
            Some(Locked::Ip),
            "the address is locked for every name"
        );
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(lockout.check("acme", ip), None);
    }

    #[test]
    fn success_resets_and_the_table_is_bounded() {
        let lockout = Lockout::new(2, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        lockout.failed(Some("acme"), ip);
        lockout.succeeded("acme", ip);
        assert!(lockout.failed(Some("acme"), ip).is_empty());
        for i in 0..(MAX_ENTRIES + 10) {
            lockout.failed(Some(&format!("n{i}")), ip);
        }
        let len = lockout.streaks.lock().unwrap().len();
        assert!(len <= MAX_ENTRIES, "{len}");
    }
}
