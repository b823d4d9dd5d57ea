//! Per-provider throughput for `GET /api/admin/status` and the console's operator view: the
//! change of each provider's sent count (what the engine reports in
//! [`ProviderRuntime::sent_total`](crate::ProviderRuntime::sent_total)) between two looks at
//! the status, over up to the last minute. Nothing samples in the background: the first look
//! has no rate yet, and the view that shows it refreshes itself.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use sairex_store::model::{Id, Millis};

/// The span a rate is measured over, at most (older samples are dropped, but one is kept as
/// the baseline).
const WINDOW_MS: Millis = 60_000;
/// The shortest span a rate is given for: looks closer together reuse the last sample.
const MIN_SPAN_MS: Millis = 1_000;

/// Samples of the providers' sent counts.
#[derive(Debug, Default)]
pub(crate) struct Throughput {
    samples: Mutex<VecDeque<(Millis, HashMap<Id, u64>)>>,
}

impl Throughput {
    /// Records `totals` seen at `now` and answers each provider's messages per second since
    /// the oldest sample of the window (none for a provider without an earlier count, or when
    /// no sample is [`MIN_SPAN_MS`] old yet).
    pub(crate) fn sample(&self, now: Millis, totals: HashMap<Id, u64>) -> HashMap<Id, f64> {
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        // Keep the newest sample at or before the window's start as the baseline.
        while samples.len() > 1 && samples[1].0 <= now.saturating_sub(WINDOW_MS) {
            samples.pop_front();
        }
        let mut rates = HashMap::new();
        if let Some((then, old)) = samples.front() {
            let span = now.saturating_sub(*then);
            if span >= MIN_SPAN_MS {
                for (provider, total) in &totals {
                    if let Some(before) = old.get(provider) {
                        // A restarted count (fewer than before) reads as no progress.
                        #[allow(clippy::cast_precision_loss)] // Rates for display.
                        let rate = total.saturating_sub(*before) as f64 * 1_000.0 / span as f64;
                        rates.insert(*provider, rate);
                    }
                }
            }
        }
        let recent = samples
            .back()
            .is_some_and(|(at, _)| now.saturating_sub(*at) < MIN_SPAN_MS);
        if !recent {
            samples.push_back((now, totals));
        }
        rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_change_over_the_window_and_absent_before_a_second_look() {
        let t = Throughput::default();
        assert!(t.sample(10_000, HashMap::from([(1, 100)])).is_empty());
        // Too soon after the first look: no rate, and no new baseline.
        assert!(t.sample(10_500, HashMap::from([(1, 150)])).is_empty());
        let r = t.sample(12_000, HashMap::from([(1, 300), (2, 5)]));
        assert_eq!(r.get(&1), Some(&100.0));
        assert_eq!(r.get(&2), None, "no earlier count of provider 2");
        // 70 s later the window starts at 22 s: the baseline is the 12 s sample, the newest
        // at or before it.
        let r = t.sample(82_000, HashMap::from([(1, 300), (2, 705)]));
        assert_eq!(r.get(&1), Some(&0.0));
        assert!((r[&2] - 10.0).abs() < 1e-9, "{r:?}");
        let r = t.sample(84_000, HashMap::from([(1, 302), (2, 705)]));
        assert!((r[&1] - 2.0 / 72.0).abs() < 1e-9, "baseline kept: {r:?}");
        // A count that went back (a restart) is no progress, never negative.
        let r = t.sample(86_000, HashMap::from([(1, 1), (2, 705)]));
        assert_eq!(r.get(&1), Some(&0.0));
    }
}
