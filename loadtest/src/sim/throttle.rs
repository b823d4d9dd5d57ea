//! [`TokenBucket`]: the submit throttle. Pure: the caller passes `now`, so tests step time by
//! hand.

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket holding at most one second's worth of tokens (`tps`), refilled continuously
/// at `tps` per second. A submit takes one token or is throttled.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tps: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(tps: u32, now: Instant) -> Self {
        let tps = f64::from(tps.max(1));
        Self {
            tps,
            tokens: tps,
            last: now,
        }
    }

    /// Takes a token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed: Duration = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.tps).min(self.tps);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_of_tps_then_refills_at_tps() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(5, t0);
        assert_eq!((0..10).filter(|_| bucket.try_take(t0)).count(), 5);
        assert!(!bucket.try_take(t0 + Duration::from_millis(100)));
        assert!(bucket.try_take(t0 + Duration::from_millis(200)));
        assert!(!bucket.try_take(t0 + Duration::from_millis(200)));
        // A long pause refills to capacity, never past it.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.try_take(later)).count(), 5);
        // Time going backwards (it cannot with Instant, but be safe) adds nothing.
        assert!(!bucket.try_take(t0));
    }
}
