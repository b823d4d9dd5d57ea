//! Wall-clock time for the dispatcher, injectable so tests can run the retry schedule under
//! tokio's paused time instead of waiting minutes.

use std::fmt::Debug;

use sairex_store::model::Millis;
use tokio::time::Instant;

/// The dispatcher's notion of "now", in milliseconds since the Unix epoch (the store's unit).
///
/// The dispatcher sleeps on tokio timers and compares against this clock: the two must advance
/// together, which they do for [`SystemClock`] in production and [`TokioClock`] in tests.
pub trait Clock: Send + Sync + Debug {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> Millis;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        sairex_store::now_ms()
    }
}

/// Wall-clock time at creation plus tokio time elapsed since: under `tokio::time::pause` it
/// moves only when tokio's clock does.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: Millis,
    start: Instant,
}

impl TokioClock {
    /// A clock reading the wall clock now and advancing with tokio's.
    pub fn new() -> Self {
        Self {
            base: sairex_store::now_ms(),
            start: Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> Millis {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.base.saturating_add(elapsed)
    }
}
