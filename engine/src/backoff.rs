//! Reconnect back-off: exponential, capped, with full jitter so a fleet of binds that dropped
//! together does not reconnect together.

use tokio::time::Duration;

/// Why a back-off cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBackoff {
    /// `min` is zero or above `max`.
    #[error("back-off minimum must be above zero and at most the maximum")]
    Bounds,
}

/// `min * 2^attempt`, capped at `max`, then a random point in its upper half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExponentialBackoff {
    min: Duration,
    max: Duration,
}

/// Default first reconnect delay.
pub const DEFAULT_MIN: Duration = Duration::from_millis(500);
/// Default longest reconnect delay: long enough not to hammer a carrier that is down for
/// maintenance, short enough to be back within a minute of it returning.
pub const DEFAULT_MAX: Duration = Duration::from_secs(60);

impl Default for ExponentialBackoff {
    /// [`DEFAULT_MIN`] doubling to [`DEFAULT_MAX`].
    fn default() -> Self {
        Self {
            min: DEFAULT_MIN,
            max: DEFAULT_MAX,
        }
    }
}

impl ExponentialBackoff {
    /// A back-off from `min` to `max`.
    ///
    /// # Errors
    /// [`InvalidBackoff::Bounds`] when `min` is zero or above `max`.
    pub fn try_new(min: Duration, max: Duration) -> Result<Self, InvalidBackoff> {
        if min.is_zero() || min > max {
            return Err(InvalidBackoff::Bounds);
        }
        Ok(Self { min, max })
    }

    /// The un-jittered delay before attempt `attempt` (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// The delay before attempt `attempt`, jittered by `unit` (a random number in `[0, 1)`):
    /// between half the ceiling and the ceiling, never below `min`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        (half + (ceiling - half).mul_f64(unit.clamp(0.0, 1.0))).max(self.min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubling_and_stops_at_the_cap() {
        let b = ExponentialBackoff::try_new(Duration::from_millis(500), Duration::from_secs(30))
            .unwrap();
        let ceilings: Vec<u64> = (0..8).map(|a| b.ceiling(a).as_millis() as u64).collect();
        assert_eq!(
            ceilings,
            vec![500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(30));
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(2));
        assert_eq!(b.delay(3, 0.999_999).as_millis(), 3999);
        assert_eq!(
            b.delay(0, 0.0),
            Duration::from_millis(500),
            "never below the minimum"
        );
        assert!(ExponentialBackoff::try_new(Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(
            ExponentialBackoff::try_new(Duration::from_secs(2), Duration::from_secs(1)).is_err()
        );
    }
}
