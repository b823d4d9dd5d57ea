//! A token bucket (rate and burst) for provider TPS and the global limit. Pure: the caller
//! passes `now`, so tests control time.

use tokio::time::{Duration, Instant};

/// `rate` tokens per second, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `rate` per second (both at least 1).
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes `n` tokens, or says how long until they are there (nothing is taken then).
    ///
    /// # Errors
    /// The wait until `n` tokens will be available.
    pub fn take(&mut self, n: u32, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        let n = f64::from(n);
        if self.tokens >= n {
            self.tokens -= n;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((n - self.tokens) / self.rate))
        }
    }

    /// Whole tokens available now.
    pub fn available(&mut self, now: Instant) -> u32 {
        self.refill(now);
        // tokens is within [0, burst] and burst came from a u32.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = self.tokens.floor() as u32;
        whole
    }

    /// Changes the rate (throttling back-off and recovery) keeping the tokens there are.
    pub fn set_rate(&mut self, rate: u32, now: Instant) {
        self.refill(now);
        self.rate = f64::from(rate.max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_exceeds_burst_and_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5, t0);
        for _ in 0..5 {
            b.take(1, t0).unwrap();
        }
        assert_eq!(b.take(1, t0), Err(Duration::from_millis(100)));
        assert_eq!(b.available(t0 + Duration::from_millis(250)), 2);
        assert_eq!(
            b.available(t0 + Duration::from_secs(60)),
            5,
            "capped at the burst"
        );
        b.set_rate(1, t0 + Duration::from_secs(60));
        for _ in 0..5 {
            b.take(1, t0 + Duration::from_secs(60)).unwrap();
        }
        assert_eq!(
            b.take(1, t0 + Duration::from_secs(60)),
            Err(Duration::from_secs(1))
        );
    }
}
