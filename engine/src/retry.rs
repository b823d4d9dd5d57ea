//! The retry schedule of blueprint §4.3.3: `delay = 30 s × 4^(retry − 1)` (30 s, 2 min, 8 min,
//! …), up to the message's `maxRetries`; then the message is FAILED.

use tokio::time::Duration;

/// The first retry's delay.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(30);

/// What to do after a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this long.
    RetryAfter(Duration),
    /// Retries are used up: FAILED.
    GiveUp,
}

/// The decision for a message that has been retried `retries_done` times and allows
/// `max_retries`.
pub fn next_retry(retries_done: u32, max_retries: u32) -> Next {
    if retries_done >= max_retries {
        return Next::GiveUp;
    }
    let factor = 4u32.checked_pow(retries_done).unwrap_or(u32::MAX);
    Next::RetryAfter(FIRST_RETRY_DELAY.saturating_mul(factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_blueprint_schedule_and_stops_at_max_retries() {
        assert_eq!(next_retry(0, 3), Next::RetryAfter(Duration::from_secs(30)));
        assert_eq!(next_retry(1, 3), Next::RetryAfter(Duration::from_secs(120)));
        assert_eq!(next_retry(2, 3), Next::RetryAfter(Duration::from_secs(480)));
        assert_eq!(next_retry(3, 3), Next::GiveUp);
        assert_eq!(next_retry(0, 0), Next::GiveUp);
        assert!(matches!(next_retry(30, 40), Next::RetryAfter(d) if d >= Duration::from_secs(30)));
    }
}
