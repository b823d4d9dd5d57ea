//! When each request is due: open loop (a fixed arrival rate) or closed loop (workers back to
//! back), and when the run stops.
//!
//! Open loop is free of coordinated omission: request `i` is due at `start + i / rate` whatever
//! happened to earlier requests, and its latency is measured from that intended time. When the
//! server stalls, the workers fall behind, later requests start late, and the lateness is part
//! of their latency, as a real client population would see it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::LoadError;

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Fixed arrival rate, requests per second; latency from each request's intended time.
    Open {
        /// Requests per second (finite, > 0).
        rate: f64,
    },
    /// Each worker sends its next request as soon as the previous one is answered; latency
    /// from the actual send.
    Closed,
}

impl Pacing {
    /// Open loop at `rate` requests per second.
    ///
    /// # Errors
    /// [`LoadError::Invalid`] unless `rate` is finite and positive.
    pub fn open(rate: f64) -> Result<Self, LoadError> {
        if rate.is_finite() && rate > 0.0 {
            Ok(Self::Open { rate })
        } else {
            Err(LoadError::invalid(
                "--rate",
                format!("must be a positive number of requests per second, not {rate}"),
            ))
        }
    }
}

/// When the run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this many requests.
    Count(u64),
    /// Requests due (open loop) or started (closed loop) before this much time has passed.
    After(Duration),
}

/// One request to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Its index, from 0, in the order slots were claimed.
    pub index: u64,
    /// When it is meant to start: its latency is measured from here.
    pub intended: Instant,
}

/// The shared schedule workers claim slots from. Claiming is one atomic add, so it costs
/// nothing next to a request.
#[derive(Debug)]
pub struct Schedule {
    pacing: Pacing,
    stop: Stop,
    start: Instant,
    next: AtomicU64,
}

impl Schedule {
    /// A schedule starting at `start`.
    pub fn new(pacing: Pacing, stop: Stop, start: Instant) -> Self {
        Self {
            pacing,
            stop,
            start,
            next: AtomicU64::new(0),
        }
    }

    /// When it started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The pacing.
    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// Offset of request `index` from the start under an open loop at `rate`.
    pub fn offset(rate: f64, index: u64) -> Duration {
        // Whole nanoseconds, rounded: exact for every rate that divides a second evenly.
        Duration::from_nanos((index as f64 * 1e9 / rate).round() as u64)
    }

    /// How many requests the run will make, when that is known in advance.
    pub fn planned(&self) -> Option<u64> {
        match (self.stop, self.pacing) {
            (Stop::Count(n), _) => Some(n),
            // Due times i / rate < d: i < d * rate.
            (Stop::After(d), Pacing::Open { rate }) => Some((d.as_secs_f64() * rate).ceil() as u64),
            (Stop::After(_), Pacing::Closed) => None,
        }
    }

    /// The next slot, or `None` when the run is over. `now` is the time of the claim: the
    /// closed loop's intended time, and what a duration limit is checked against.
    pub fn claim(&self, now: Instant) -> Option<Slot> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        if let Stop::Count(n) = self.stop
            && index >= n
        {
            return None;
        }
        let intended = match self.pacing {
            Pacing::Open { rate } => self.start + Self::offset(rate, index),
            Pacing::Closed => now,
        };
        if let Stop::After(d) = self.stop
            && intended.saturating_duration_since(self.start) >= d
        {
            return None;
        }
        Some(Slot { index, intended })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_intended_times_are_start_plus_i_over_rate() {
        let start = Instant::now();
        let s = Schedule::new(Pacing::Open { rate: 4_000.0 }, Stop::Count(5), start);
        // Claimed late (as a stalled worker would): the intended times do not move.
        let late = start + Duration::from_secs(10);
        let times: Vec<Duration> = std::iter::from_fn(|| s.claim(late))
            .map(|slot| slot.intended - start)
            .collect();
        let us = |n| Duration::from_micros(n);
        assert_eq!(times, [us(0), us(250), us(500), us(750), us(1000)]);
        assert_eq!(s.claim(late), None);
        assert_eq!(s.planned(), Some(5));
    }

    #[test]
    fn open_loop_duration_stops_at_the_last_due_time() {
        let start = Instant::now();
        let s = Schedule::new(
            Pacing::Open { rate: 1_000.0 },
            Stop::After(Duration::from_millis(100)),
            start,
        );
        let slots: Vec<Slot> = std::iter::from_fn(|| s.claim(start)).collect();
        // Due at 0, 1, ..., 99 ms: 100 requests.
        assert_eq!(slots.len(), 100);
        assert_eq!(s.planned(), Some(100));
        assert_eq!(slots.last().map(|s| s.index), Some(99));
        assert_eq!(slots[99].intended - start, Duration::from_millis(99));
    }

    #[test]
    fn closed_loop_is_due_at_the_claim_and_stops_on_time() {
        let start = Instant::now();
        let s = Schedule::new(Pacing::Closed, Stop::After(Duration::from_secs(1)), start);
        let at = start + Duration::from_millis(300);
        assert_eq!(
            s.claim(at),
            Some(Slot {
                index: 0,
                intended: at
            })
        );
        assert_eq!(s.claim(start + Duration::from_secs(1)), None);
        assert_eq!(s.planned(), None);
        let counted = Schedule::new(Pacing::Closed, Stop::Count(2), start);
        assert!(counted.claim(at).is_some());
        assert!(counted.claim(at).is_some());
        assert!(counted.claim(at).is_none());
    }

    #[test]
    fn a_rate_must_be_positive_and_finite() {
        assert!(Pacing::open(0.0).is_err());
        assert!(Pacing::open(-1.0).is_err());
        assert!(Pacing::open(f64::NAN).is_err());
        assert!(Pacing::open(f64::INFINITY).is_err());
        assert_eq!(Pacing::open(2.5).ok(), Some(Pacing::Open { rate: 2.5 }));
    }
}
