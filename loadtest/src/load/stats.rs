//! Latency recording (hdrhistogram, microseconds), rates over a measured interval, and error
//! counts by kind.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency recorded exactly: one hour. Longer samples are clamped to it (and still
/// counted), so a pathological stall cannot make recording fail.
const MAX_TRACKABLE_US: u64 = 3_600_000_000;

/// Latencies in microseconds, with 3 significant digits (hdrhistogram): cheap to record on a hot
/// path, one per worker, merged at the end.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
    clamped: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, MAX_TRACKABLE_US, 3)
            .expect("1 µs ..= 1 h at 3 significant digits is a valid histogram");
        Self {
            histogram,
            clamped: 0,
        }
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.record_us(us);
    }

    /// Records one latency given in microseconds.
    pub fn record_us(&mut self, us: u64) {
        // hdrhistogram's lowest trackable value is 1: a sub-microsecond sample counts as 1 µs.
        let mut value = us.max(1);
        if value > MAX_TRACKABLE_US {
            value = MAX_TRACKABLE_US;
            self.clamped += 1;
        }
        // Within bounds by construction; a failure would only lose one sample.
        let _ = self.histogram.record(value);
    }

    /// Adds another recorder's samples.
    pub fn merge(&mut self, other: &LatencyRecorder) {
        let _ = self.histogram.add(&other.histogram);
        self.clamped += other.clamped;
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// The summary: count, mean, p50, p90, p99, p99.9 and max, in microseconds.
    pub fn percentiles(&self) -> Percentiles {
        let h = &self.histogram;
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            clamped: self.clamped,
        }
    }
}

/// A latency summary in microseconds. Values are hdrhistogram's: exact to 3 significant digits
/// (a value is the highest equivalent of its bucket).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Mean, µs.
    pub mean: f64,
    /// Median, µs.
    pub p50: u64,
    /// 90th percentile, µs.
    pub p90: u64,
    /// 99th percentile, µs.
    pub p99: u64,
    /// 99.9th percentile, µs.
    pub p999: u64,
    /// Largest sample, µs.
    pub max: u64,
    /// Samples longer than an hour, counted as one hour.
    pub clamped: u64,
}

/// Events per second over `interval`; 0 for an empty interval (nothing was measured).
pub fn per_second(count: u64, interval: Duration) -> f64 {
    let secs = interval.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// Counts by kind (an HTTP status with its error code, a transport failure, a final status):
/// sorted, so reports are stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Counts(BTreeMap<String, u64>);

impl Counts {
    /// No counts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one of `kind`.
    pub fn add(&mut self, kind: &str) {
        self.add_n(kind, 1);
    }

    /// Counts `n` of `kind`.
    pub fn add_n(&mut self, kind: &str, n: u64) {
        if let Some(c) = self.0.get_mut(kind) {
            *c += n;
        } else {
            self.0.insert(kind.to_owned(), n);
        }
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &Counts) {
        for (kind, n) in &other.0 {
            self.add_n(kind, *n);
        }
    }

    /// The count of `kind` (0 if never seen).
    pub fn get(&self, kind: &str) -> u64 {
        self.0.get(kind).copied().unwrap_or(0)
    }

    /// The sum over all kinds.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Kinds and counts, sorted by kind.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_ten_thousand() {
        let mut r = LatencyRecorder::new();
        for us in 1..=10_000u64 {
            r.record_us(us);
        }
        let p = r.percentiles();
        assert_eq!(p.count, 10_000);
        // 3 significant digits: each value is within 0.1 % of the exact quantile.
        let near = |got: u64, want: u64| got.abs_diff(want) * 1000 <= want;
        assert!(near(p.p50, 5_000), "p50 {}", p.p50);
        assert!(near(p.p90, 9_000), "p90 {}", p.p90);
        assert!(near(p.p99, 9_900), "p99 {}", p.p99);
        assert!(near(p.p999, 9_990), "p99.9 {}", p.p999);
        assert!(near(p.max, 10_000), "max {}", p.max);
        assert!((p.mean - 5_000.5).abs() < 5.0, "mean {}", p.mean);
    }

    #[test]
    fn a_few_slow_samples_show_in_the_tail_only() {
        let mut r = LatencyRecorder::new();
        for _ in 0..990 {
            r.record(Duration::from_micros(100));
        }
        for _ in 0..10 {
            r.record(Duration::from_millis(50));
        }
        let p = r.percentiles();
        assert_eq!(p.p50, 100);
        assert_eq!(p.p90, 100);
        // 1 % of samples are slow: p99 is the last fast one, p99.9 a slow one.
        assert_eq!(p.p99, 100);
        assert!(p.p999 >= 49_950 && p.p999 <= 50_050, "p99.9 {}", p.p999);
        assert!(p.max >= 50_000);
    }

    #[test]
    fn merge_adds_samples_and_extremes_are_clamped() {
        let mut a = LatencyRecorder::new();
        let mut b = LatencyRecorder::new();
        a.record(Duration::ZERO);
        b.record(Duration::from_secs(7_200));
        a.merge(&b);
        let p = a.percentiles();
        assert_eq!(p.count, 2);
        assert_eq!(p.clamped, 1);
        assert!(p.max >= MAX_TRACKABLE_US && p.max <= MAX_TRACKABLE_US + MAX_TRACKABLE_US / 500);
        assert_eq!(LatencyRecorder::new().percentiles(), Percentiles::default());
    }

    #[test]
    fn rates_over_an_interval() {
        assert_eq!(per_second(5_000, Duration::from_millis(250)), 20_000.0);
        assert_eq!(per_second(3, Duration::from_secs(2)), 1.5);
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
    }

    #[test]
    fn counts_merge_and_sort() {
        let mut a = Counts::new();
        a.add("503 QUEUE_FULL");
        a.add("429 RATE_LIMITED");
        let mut b = Counts::new();
        b.add_n("429 RATE_LIMITED", 4);
        b.add("connect");
        a.merge(&b);
        assert_eq!(a.get("429 RATE_LIMITED"), 5);
        assert_eq!(a.total(), 7);
        let kinds: Vec<&str> = a.iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, ["429 RATE_LIMITED", "503 QUEUE_FULL", "connect"]);
        assert_eq!(
            serde_json::to_string(&a).unwrap_or_default(),
            r#"{"429 RATE_LIMITED":5,"503 QUEUE_FULL":1,"connect":1}"#
        );
    }
}
