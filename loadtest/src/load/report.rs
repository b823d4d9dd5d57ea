//! Reports: machine-readable (serde, camelCase JSON) and for people, and the live progress line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::stats::{Counts, Percentiles, per_second};
use super::track::E2eReport;

/// What `sairex loadtest http` was asked to do (the API key is never part of it).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpSettings {
    /// The gateway's base URL.
    pub target: String,
    /// `open` (fixed rate) or `closed` (back to back).
    pub pacing: &'static str,
    /// Requests per second (open loop).
    pub rate: Option<f64>,
    /// Connections, one request in flight on each.
    pub concurrency: usize,
    /// Requests to make, when counted.
    pub count: Option<u64>,
    /// How long to send, when timed.
    pub duration_secs: Option<f64>,
    /// The priority mix.
    pub mix: String,
    /// The segment counts.
    pub segments: String,
    /// Recipients per `send-bulk` request, when bulk.
    pub bulk_size: Option<usize>,
    /// Whether end-to-end latency was measured.
    pub e2e: bool,
}

/// How well the generator kept to its schedule (open loop).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorReport {
    /// Requests that started more than a millisecond after their intended time because every
    /// connection was busy: the server was slower than the rate, or --concurrency too low.
    /// Their wait is part of their latency.
    pub late_starts: u64,
    /// The longest such wait, µs.
    pub max_start_lag_us: u64,
}

/// The result of `sairex loadtest http`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpReport {
    /// Always `http`.
    pub mode: &'static str,
    /// What was asked.
    pub settings: HttpSettings,
    /// From the start to the last answer.
    pub seconds: f64,
    /// Requests made (answered or failed).
    pub requests: u64,
    /// Requests answered 2xx.
    pub accepted: u64,
    /// Requests answered otherwise, or failed.
    pub failed: u64,
    /// Requests made per second.
    pub requests_per_second: f64,
    /// Requests accepted per second.
    pub accepted_per_second: f64,
    /// Messages accepted (one per request, or the bulk answers' `accepted` counts).
    pub messages_accepted: u64,
    /// Messages accepted per second.
    pub messages_per_second: f64,
    /// Failed requests by HTTP status and error code (`429 RATE_LIMITED`), or by transport
    /// failure (`connect`, `io`, `timeout`, `bad response`).
    pub errors: Counts,
    /// Until the 2xx arrived, µs: from the intended start in the open loop.
    pub accept_latency_us: Percentiles,
    /// The generator's own lateness.
    pub generator: GeneratorReport,
    /// Accept → final status, with --e2e.
    pub e2e: Option<E2eReport>,
}

impl HttpReport {
    /// The report for people: throughput, errors, percentiles.
    pub fn human(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let pacing = match s.rate {
            Some(rate) => format!("open loop at {rate} req/s"),
            None => "closed loop".to_owned(),
        };
        let bulk = s
            .bulk_size
            .map(|n| format!(", send-bulk x{n}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "http {} ({pacing}, {} connections, mix {}, segments {}{bulk})",
            s.target, s.concurrency, s.mix, s.segments
        );
        let _ = writeln!(
            out,
            "requests  {} in {:.2} s: {:.0}/s; accepted {} ({:.0}/s), failed {}",
            self.requests,
            self.seconds,
            self.requests_per_second,
            self.accepted,
            self.accepted_per_second,
            self.failed
        );
        if s.bulk_size.is_some() {
            let _ = writeln!(
                out,
                "messages  {} accepted: {:.0}/s",
                self.messages_accepted, self.messages_per_second
            );
        }
        for (kind, n) in self.errors.iter() {
            let _ = writeln!(out, "  error {kind}: {n}");
        }
        out.push_str(&latency_line("accept", &self.accept_latency_us));
        if self.generator.late_starts > 0 {
            let _ = writeln!(
                out,
                "note: {} requests started late (max {:.1} ms behind schedule): the server \
                 could not keep up, or raise --concurrency",
                self.generator.late_starts,
                self.generator.max_start_lag_us as f64 / 1000.0
            );
        }
        if let Some(e) = &self.e2e {
            out.push_str(&e2e_text(e));
        }
        out
    }
}

/// The end-to-end part of a report, for people.
pub fn e2e_text(e: &E2eReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "delivered {} of {} accepted: {:.0}/s over {:.2} s; missing {}",
        e.delivered, e.accepted, e.delivered_per_second, e.seconds, e.missing
    );
    for (status, n) in e.other_final.iter() {
        let _ = writeln!(out, "  final {status}: {n}");
    }
    if e.lagged_events > 0 {
        let _ = writeln!(
            out,
            "  the event stream dropped {} events (its reader lagged)",
            e.lagged_events
        );
    }
    out.push_str(&latency_line("accept->DELIVERED", &e.latency_us));
    out
}

/// One line of percentiles in milliseconds.
pub fn latency_line(name: &str, p: &Percentiles) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "{name:<18} n={:<8} p50={:.3} p90={:.3} p99={:.3} p99.9={:.3} max={:.3} ms\n",
        p.count,
        ms(p.p50),
        ms(p.p90),
        ms(p.p99),
        ms(p.p999),
        ms(p.max)
    )
}

/// One phase of a run (the `store` mode's enqueue, lease, ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseReport {
    /// Its name.
    pub name: String,
    /// Operations (calls).
    pub operations: u64,
    /// Messages the operations moved (a lease moves many).
    pub messages: u64,
    /// Wall time.
    pub seconds: f64,
    /// Operations per second.
    pub operations_per_second: f64,
    /// Messages per second.
    pub messages_per_second: f64,
    /// Latency of one operation, µs.
    pub latency_us: Percentiles,
    /// Failed operations by error.
    pub errors: Counts,
}

impl PhaseReport {
    /// A phase's report from its counts, wall time and latencies.
    pub fn new(
        name: &str,
        operations: u64,
        messages: u64,
        elapsed: Duration,
        latency_us: Percentiles,
        errors: Counts,
    ) -> Self {
        Self {
            name: name.to_owned(),
            operations,
            messages,
            seconds: elapsed.as_secs_f64(),
            operations_per_second: per_second(operations, elapsed),
            messages_per_second: per_second(messages, elapsed),
            latency_us,
            errors,
        }
    }

    /// The phase for people.
    pub fn human(&self) -> String {
        let mut out = format!(
            "{:<9} {} ops, {} messages in {:.2} s: {:.0} ops/s, {:.0} msg/s\n",
            self.name,
            self.operations,
            self.messages,
            self.seconds,
            self.operations_per_second,
            self.messages_per_second
        );
        for (kind, n) in self.errors.iter() {
            let _ = writeln!(out, "  error {kind}: {n}");
        }
        out.push_str(&latency_line(&format!("  {}", self.name), &self.latency_us));
        out
    }
}

/// Counters the live progress line shows, updated by the workers.
#[derive(Debug, Default)]
pub struct Live {
    /// Requests made.
    pub sent: AtomicU64,
    /// Requests accepted.
    pub accepted: AtomicU64,
    /// Requests failed.
    pub failed: AtomicU64,
    /// Messages finished end to end.
    pub finished: AtomicU64,
}

impl Live {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn line(&self, elapsed: Duration, last_sent: &mut u64, e2e: bool) -> String {
        let sent = self.sent.load(Ordering::Relaxed);
        let rate = sent.saturating_sub(*last_sent);
        *last_sent = sent;
        let mut line = format!(
            "{:>6.1} s  sent {sent}  accepted {}  failed {}  {rate}/s",
            elapsed.as_secs_f64(),
            self.accepted.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        if e2e {
            let _ = write!(line, "  final {}", self.finished.load(Ordering::Relaxed));
        }
        line
    }
}

/// Prints the progress line on stderr once a second (overwriting itself) until dropped.
#[derive(Debug)]
pub struct ProgressLine {
    task: JoinHandle<()>,
}

impl ProgressLine {
    /// Starts printing `live`; `e2e` adds the finished count.
    pub fn start(live: Arc<Live>, e2e: bool) -> Self {
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut tick =
                tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
            let mut last_sent = 0;
            loop {
                tick.tick().await;
                let line = live.line(start.elapsed(), &mut last_sent, e2e);
                // \r and erase-to-end-of-line: the line rewrites itself.
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{line}\x1b[K");
                let _ = err.flush();
            }
        });
        Self { task }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.task.abort();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_rates_and_text() {
        let p = PhaseReport::new(
            "lease",
            50,
            3_200,
            Duration::from_millis(400),
            Percentiles {
                count: 50,
                p50: 1_500,
                max: 9_000,
                ..Percentiles::default()
            },
            Counts::new(),
        );
        assert_eq!(p.operations_per_second, 125.0);
        assert_eq!(p.messages_per_second, 8_000.0);
        let text = p.human();
        assert!(text.contains("50 ops, 3200 messages in 0.40 s: 125 ops/s, 8000 msg/s"));
        assert!(text.contains("p50=1.500") && text.contains("max=9.000 ms"));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["messagesPerSecond"], 8_000.0);
        assert_eq!(json["latencyUs"]["p50"], 1_500);
    }

    #[test]
    fn the_progress_line_shows_the_last_second_rate() {
        let live = Live::default();
        let mut last = 0;
        for _ in 0..1_500 {
            Live::inc(&live.sent);
        }
        Live::inc(&live.failed);
        let line = live.line(Duration::from_secs(1), &mut last, true);
        assert!(
            line.contains("sent 1500") && line.contains("1500/s"),
            "{line}"
        );
        assert!(
            line.contains("failed 1") && line.contains("final 0"),
            "{line}"
        );
        for _ in 0..500 {
            Live::inc(&live.sent);
        }
        assert!(
            live.line(Duration::from_secs(2), &mut last, false)
                .contains(" 500/s")
        );
    }
}
