//! `sairex loadtest http`: POSTs messages to a gateway's REST API from `concurrency` keep-alive
//! connections (one request in flight on each, hyper's HTTP/1 client directly: no pool lookups
//! on the hot path), open or closed loop, and optionally follows each accepted message to its
//! final status on the event stream (`GET /api/sms/events`).
//!
//! # The generator's own ceiling
//! Against the trivial axum server of `examples/fake_api.rs` (one tokio thread) on the same
//! 2-core machine, release build, while two `rustc` processes of other builds were busy:
//! `sairex loadtest http --target http://127.0.0.1:18080 --key sk_live_test --max --count 200000
//! --concurrency 64` made 59,143 requests/s (p50 1.0 ms, p99 1.9 ms); with `--e2e` and the mix
//! `otp:10,transactional:30,bulk:60` and `--segments 1,2,3`, 36,250 requests/s with every
//! DELIVERED event matched; open loop `--rate 20000 --duration 10s --e2e` kept 19,994/s.
//! The generator is therefore not what limits a measurement below ~35,000 requests/s here.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::LoadError;
use super::mix::{Mix, Numbers, Segments, body};
use super::report::{GeneratorReport, HttpReport, HttpSettings, Live, ProgressLine};
use super::schedule::{Pacing, Schedule, Stop};
use super::sse::SseParser;
use super::stats::{Counts, LatencyRecorder, per_second};
use super::track::{E2eReport, MessageKey, Tracker};

/// A start later than this after its intended time counts as a late start.
const LATE: Duration = Duration::from_millis(1);

/// What to run.
#[derive(Clone)]
pub struct HttpConfig {
    /// The gateway's base URL (`http://127.0.0.1:8080`; a path prefix is kept).
    pub target: String,
    /// The API key (`sk_live_...`), sent as a bearer token. Never printed.
    pub key: String,
    /// Open or closed loop.
    pub pacing: Pacing,
    /// When to stop.
    pub stop: Stop,
    /// Connections, each with one request in flight.
    pub concurrency: usize,
    /// The priorities.
    pub mix: Mix,
    /// The message lengths.
    pub segments: Segments,
    /// The destination numbers.
    pub numbers: Numbers,
    /// Send `send-bulk` requests with this many recipients each instead of `send`.
    pub bulk_size: Option<usize>,
    /// Follow each accepted message to its final status on the event stream.
    pub e2e: bool,
    /// How long to wait for final statuses after the last request.
    pub drain_timeout: Duration,
    /// How long one request may take before it counts as a `timeout`.
    pub request_timeout: Duration,
    /// Print a live progress line on stderr.
    pub progress: bool,
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("target", &self.target)
            .field("key", &"<redacted>")
            .field("pacing", &self.pacing)
            .field("stop", &self.stop)
            .field("concurrency", &self.concurrency)
            .field("mix", &self.mix.to_string())
            .field("segments", &self.segments.to_string())
            .field("bulk_size", &self.bulk_size)
            .field("e2e", &self.e2e)
            .finish_non_exhaustive()
    }
}

impl HttpConfig {
    /// A configuration with the defaults: closed loop, 1,000 requests on 64 connections,
    /// transactional single-segment messages to +92300xxxxxxx, no end-to-end tracking.
    pub fn new(target: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            key: key.into(),
            pacing: Pacing::Closed,
            stop: Stop::Count(1_000),
            concurrency: 64,
            mix: Mix::default(),
            segments: Segments::default(),
            numbers: Numbers::default(),
            bulk_size: None,
            e2e: false,
            drain_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            progress: false,
        }
    }

    fn settings(&self, target: &Target) -> HttpSettings {
        HttpSettings {
            target: target.url.clone(),
            pacing: match self.pacing {
                Pacing::Open { .. } => "open",
                Pacing::Closed => "closed",
            },
            rate: match self.pacing {
                Pacing::Open { rate } => Some(rate),
                Pacing::Closed => None,
            },
            concurrency: self.concurrency,
            count: match self.stop {
                Stop::Count(n) => Some(n),
                Stop::After(_) => None,
            },
            duration_secs: match self.stop {
                Stop::After(d) => Some(d.as_secs_f64()),
                Stop::Count(_) => None,
            },
            mix: self.mix.to_string(),
            segments: self.segments.to_string(),
            bulk_size: self.bulk_size,
            e2e: self.e2e,
        }
    }
}

/// Where requests go.
#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    /// The Host header.
    authority: HeaderValue,
    /// The URL path prefix, without a trailing slash.
    base: String,
    /// The URL as given, for reports.
    url: String,
}

impl Target {
    async fn parse(url: &str) -> Result<Self, LoadError> {
        let bad = |problem: String| LoadError::invalid("--target", format!("{url:?}: {problem}"));
        let uri: Uri = url.parse().map_err(|e| bad(format!("not a URL ({e})")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(bad(format!(
                    "{other}:// is not supported: point the generator at the gateway's own \
                     http:// listener"
                )));
            }
            None => return Err(bad("needs http:// and a host".into())),
        }
        let authority = uri.authority().ok_or_else(|| bad("needs a host".into()))?;
        let port = authority.port_u16().unwrap_or(80);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| LoadError::Connect {
                target: authority.to_string(),
                source: e,
            })?
            .next()
            .ok_or_else(|| bad("the host has no address".into()))?;
        let authority = HeaderValue::from_str(authority.as_str())
            .map_err(|_| bad("the host is not a valid header value".into()))?;
        Ok(Self {
            addr,
            authority,
            base: uri.path().trim_end_matches('/').to_owned(),
            url: url.to_owned(),
        })
    }

    fn path(&self, path: &str) -> Result<Uri, LoadError> {
        format!("{}{path}", self.base)
            .parse()
            .map_err(|e| LoadError::invalid("--target", format!("bad path prefix: {e}")))
    }

    async fn connect(&self) -> std::io::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        // Drives the connection; ends when the sender is dropped or the peer closes.
        tokio::spawn(connection);
        Ok(sender)
    }
}

/// What the end-to-end tracker is told.
#[derive(Debug)]
enum Track {
    Accepted(MessageKey, Instant),
    Final(MessageKey, String, Instant),
    Lagged(u64),
}

/// Shared by the workers.
#[derive(Debug)]
struct Shared {
    target: Target,
    uri: Uri,
    auth: HeaderValue,
    schedule: Schedule,
    mix: Mix,
    segments: Segments,
    numbers: Numbers,
    /// Bodies by segment count (index 0 unused).
    bodies: Vec<String>,
    bulk_size: Option<usize>,
    e2e: bool,
    request_timeout: Duration,
    live: Arc<Live>,
}

impl Shared {
    /// The JSON of request `index`. Numbers and bodies are ours (digits, `+`, and GSM-7 text
    /// without quotes or backslashes), so they are written without escaping.
    fn request_body(&self, index: u64) -> Bytes {
        let priority = self.mix.pick(index).as_str();
        let text = &self.bodies[usize::from(self.segments.pick(index))];
        let mut json = Vec::with_capacity(text.len() + 96);
        match self.bulk_size {
            None => {
                json.extend_from_slice(b"{\"to\":\"");
                json.extend_from_slice(self.numbers.number(index).as_bytes());
            }
            Some(n) => {
                json.extend_from_slice(b"{\"recipients\":[");
                let first = index.saturating_mul(n as u64);
                for j in 0..n as u64 {
                    if j > 0 {
                        json.push(b',');
                    }
                    json.extend_from_slice(b"{\"to\":\"");
                    json.extend_from_slice(self.numbers.number(first + j).as_bytes());
                    json.extend_from_slice(b"\"}");
                }
                json.extend_from_slice(b"]");
            }
        }
        if self.bulk_size.is_none() {
            json.push(b'"');
        }
        json.extend_from_slice(b",\"body\":\"");
        json.extend_from_slice(text.as_bytes());
        json.extend_from_slice(b"\",\"priority\":\"");
        json.extend_from_slice(priority.as_bytes());
        json.extend_from_slice(b"\"}");
        Bytes::from(json)
    }
}

/// One worker's results.
#[derive(Debug, Default)]
struct WorkerResult {
    latency: LatencyRecorder,
    errors: Counts,
    requests: u64,
    accepted: u64,
    messages: u64,
    late_starts: u64,
    max_lag_us: u64,
    /// Message ids handed to the tracker.
    tracked: u64,
    last_done: Option<Instant>,
}

/// How one request ended.
enum Outcome {
    Accepted { messages: u64 },
    Failed(String),
}

#[derive(Deserialize)]
struct Envelope {
    data: Option<AcceptedData>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AcceptedData {
    message_id: Option<MessageKey>,
    message_ids: Option<Vec<MessageKey>>,
    accepted: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusEvent {
    message_id: MessageKey,
    status: String,
}

#[derive(Deserialize)]
struct LaggedEvent {
    missed: u64,
}

struct Worker {
    shared: Arc<Shared>,
    conn: Option<SendRequest<Full<Bytes>>>,
    track: Option<mpsc::UnboundedSender<Track>>,
    result: WorkerResult,
}

impl Worker {
    async fn run(mut self) -> WorkerResult {
        let open = matches!(self.shared.schedule.pacing(), Pacing::Open { .. });
        loop {
            let now = Instant::now();
            let Some(slot) = self.shared.schedule.claim(now) else {
                break;
            };
            let from = if slot.intended > now {
                // Idle until the slot is due: a late wake-up is the timer's, not the server's.
                tokio::time::sleep_until(slot.intended).await;
                Instant::now()
            } else {
                // Every connection was busy when this request was due: the wait is part of its
                // latency (no coordinated omission).
                let lag = now - slot.intended;
                if open && lag > LATE {
                    self.result.late_starts += 1;
                    let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
                    self.result.max_lag_us = self.result.max_lag_us.max(us);
                }
                slot.intended
            };
            let outcome = self.request(slot.index).await;
            let done = Instant::now();
            self.result.requests += 1;
            self.result.last_done = Some(done);
            Live::inc(&self.shared.live.sent);
            match outcome {
                Outcome::Accepted { messages } => {
                    self.result.accepted += 1;
                    self.result.messages += messages;
                    self.result.latency.record(done - from);
                    Live::inc(&self.shared.live.accepted);
                }
                Outcome::Failed(kind) => {
                    self.result.errors.add(&kind);
                    Live::inc(&self.shared.live.failed);
                }
            }
        }
        self.result
    }

    async fn request(&mut self, index: u64) -> Outcome {
        let timeout = self.shared.request_timeout;
        match tokio::time::timeout(timeout, self.exchange(index)).await {
            Ok(Ok((status, body))) => self.outcome(status, &body),
            Ok(Err(kind)) => {
                // The connection is in an unknown state: start a new one next time.
                self.conn = None;
                Outcome::Failed(kind.to_owned())
            }
            Err(_) => {
                self.conn = None;
                Outcome::Failed("timeout".to_owned())
            }
        }
    }

    async fn exchange(&mut self, index: u64) -> Result<(StatusCode, Bytes), &'static str> {
        let shared = &self.shared;
        let mut sender = match self.conn.take() {
            // A connection the server closed while idle is replaced without an error.
            Some(c) if !c.is_closed() => c,
            _ => shared.target.connect().await.map_err(|_| "connect")?,
        };
        sender.ready().await.map_err(|_| "io")?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(shared.uri.clone())
            .header(HOST, shared.target.authority.clone())
            .header(AUTHORIZATION, shared.auth.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(shared.request_body(index)))
            .map_err(|_| "bad request")?;
        let response = sender.send_request(request).await.map_err(|_| "io")?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| "io")?
            .to_bytes();
        self.conn = Some(sender);
        Ok((status, body))
    }

    fn outcome(&mut self, status: StatusCode, body: &[u8]) -> Outcome {
        let shared = &self.shared;
        if !status.is_success() {
            let code = serde_json::from_slice::<Envelope>(body)
                .ok()
                .and_then(|e| e.error)
                .and_then(|e| e.code);
            return Outcome::Failed(match code {
                Some(code) => format!("{} {code}", status.as_u16()),
                None => status.as_u16().to_string(),
            });
        }
        if !shared.e2e && shared.bulk_size.is_none() {
            return Outcome::Accepted { messages: 1 };
        }
        let Some(data) = serde_json::from_slice::<Envelope>(body)
            .ok()
            .and_then(|e| e.data)
        else {
            return Outcome::Failed(format!("{} unreadable body", status.as_u16()));
        };
        let mut keys = data.message_ids.unwrap_or_default();
        keys.extend(data.message_id);
        let messages = match (data.accepted, shared.bulk_size) {
            (Some(n), _) => n,
            (None, Some(_)) if !keys.is_empty() => keys.len() as u64,
            (None, Some(n)) => n as u64,
            (None, None) => 1,
        };
        if let Some(track) = &self.track {
            if keys.is_empty() {
                return Outcome::Failed(format!("{} without messageId", status.as_u16()));
            }
            let at = Instant::now();
            self.result.tracked += keys.len() as u64;
            for key in keys {
                // The tracker lives until every worker is done.
                let _ = track.send(Track::Accepted(key, at));
            }
        }
        Outcome::Accepted { messages }
    }
}

/// Opens the event stream and waits for its 200, so no event of the run is missed.
async fn open_events(target: &Target, auth: &HeaderValue) -> Result<Incoming, LoadError> {
    let uri = target.path("/api/sms/events")?;
    let url = format!("{}{}", target.url.trim_end_matches('/'), "/api/sms/events");
    let failed = |problem: String| LoadError::Events {
        url: url.clone(),
        problem,
    };
    let mut sender = target
        .connect()
        .await
        .map_err(|e| failed(format!("cannot connect: {e}")))?;
    let request = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(HOST, target.authority.clone())
        .header(AUTHORIZATION, auth.clone())
        .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
        .body(Full::new(Bytes::new()))
        .map_err(|e| failed(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if response.status() != StatusCode::OK {
        return Err(failed(format!("answered {}", response.status())));
    }
    // The sender may go: the connection task keeps the response body flowing.
    Ok(response.into_body())
}

/// Reads the event stream until it ends, telling the tracker about final statuses.
async fn read_events(mut body: Incoming, track: mpsc::UnboundedSender<Track>) {
    let mut parser = SseParser::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Some(chunk) = frame.data_ref() else {
            continue;
        };
        let at = Instant::now();
        parser.feed(chunk, |event| {
            let msg = match event.event.as_str() {
                "message.status" => serde_json::from_str::<StatusEvent>(&event.data)
                    .ok()
                    .map(|e| Track::Final(e.message_id, e.status, at)),
                "lagged" => serde_json::from_str::<LaggedEvent>(&event.data)
                    .ok()
                    .map(|e| Track::Lagged(e.missed)),
                _ => None,
            };
            if let Some(msg) = msg {
                let _ = track.send(msg);
            }
        });
    }
}

/// Progress of the tracker, for the drain.
#[derive(Debug, Default)]
struct TrackProgress {
    accepted: AtomicU64,
    outstanding: AtomicU64,
    lagged: AtomicU64,
}

fn start_tracker(
    live: Arc<Live>,
    progress: Arc<TrackProgress>,
) -> (
    mpsc::UnboundedSender<Track>,
    JoinHandle<Tracker<MessageKey>>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Track>();
    let task = tokio::spawn(async move {
        let mut tracker = Tracker::new();
        let mut accepted = 0;
        while let Some(msg) = rx.recv().await {
            match msg {
                Track::Accepted(key, at) => {
                    accepted += 1;
                    tracker.accepted(key, at);
                }
                Track::Final(key, status, at) => tracker.finished(key, &status, at),
                Track::Lagged(n) => tracker.lagged(n),
            }
            let outstanding = tracker.outstanding();
            progress.accepted.store(accepted, Ordering::Relaxed);
            progress.outstanding.store(outstanding, Ordering::Relaxed);
            progress
                .lagged
                .store(tracker.lagged_events(), Ordering::Relaxed);
            live.finished
                .store(accepted - outstanding, Ordering::Relaxed);
        }
        tracker
    });
    (tx, task)
}

/// Runs the load test and reports.
///
/// # Errors
/// [`LoadError::Invalid`] for a bad setting, [`LoadError::Connect`] when the target cannot be
/// reached at all, [`LoadError::Events`] when `e2e` is on and the event stream does not open.
/// Failures of single requests are counted in the report, not returned.
pub async fn run(config: HttpConfig) -> Result<HttpReport, LoadError> {
    if config.concurrency == 0 {
        return Err(LoadError::invalid("--concurrency", "must be at least 1"));
    }
    if config.bulk_size == Some(0) {
        return Err(LoadError::invalid("--bulk-size", "must be at least 1"));
    }
    if config.key.is_empty() {
        return Err(LoadError::invalid("--key", "is empty"));
    }
    let target = Target::parse(&config.target).await?;
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.key))
        .map_err(|_| LoadError::invalid("--key", "has characters a header cannot carry"))?;
    auth.set_sensitive(true);
    let uri = target.path(if config.bulk_size.is_some() {
        "/api/sms/send-bulk"
    } else {
        "/api/sms/send"
    })?;

    let live = Arc::new(Live::default());
    let track_progress = Arc::new(TrackProgress::default());
    let mut events = None;
    let mut tracker = None;
    if config.e2e {
        let body = open_events(&target, &auth).await?;
        let (tx, task) = start_tracker(Arc::clone(&live), Arc::clone(&track_progress));
        events = Some(tokio::spawn(read_events(body, tx.clone())));
        tracker = Some((tx, task));
    }

    // Every connection is open before the clock starts: connecting is not part of the load.
    let mut conns = Vec::with_capacity(config.concurrency);
    for _ in 0..config.concurrency {
        conns.push(target.connect().await.map_err(|e| LoadError::Connect {
            target: target.url.clone(),
            source: e,
        })?);
    }

    let max_segments = config
        .segments
        .weighted()
        .weights()
        .iter()
        .map(|(n, _)| *n)
        .max()
        .unwrap_or(1);
    let bodies = (0..=max_segments).map(body).collect();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        target: target.clone(),
        uri,
        auth,
        schedule: Schedule::new(config.pacing, config.stop, start),
        mix: config.mix.clone(),
        segments: config.segments.clone(),
        numbers: config.numbers.clone(),
        bodies,
        bulk_size: config.bulk_size,
        e2e: config.e2e,
        request_timeout: config.request_timeout,
        live: Arc::clone(&live),
    });
    let progress = config
        .progress
        .then(|| ProgressLine::start(Arc::clone(&live), config.e2e));

    let workers: Vec<JoinHandle<WorkerResult>> = conns
        .into_iter()
        .map(|conn| {
            let worker = Worker {
                shared: Arc::clone(&shared),
                conn: Some(conn),
                track: tracker.as_ref().map(|(tx, _)| tx.clone()),
                result: WorkerResult::default(),
            };
            tokio::spawn(worker.run())
        })
        .collect();
    let mut total = WorkerResult::default();
    for worker in workers {
        // A worker does not panic; if one did, its share is missing from the report.
        if let Ok(r) = worker.await {
            total.latency.merge(&r.latency);
            total.errors.merge(&r.errors);
            total.requests += r.requests;
            total.accepted += r.accepted;
            total.messages += r.messages;
            total.late_starts += r.late_starts;
            total.max_lag_us = total.max_lag_us.max(r.max_lag_us);
            total.tracked += r.tracked;
            total.last_done = total.last_done.max(r.last_done);
        }
    }

    let e2e = match tracker {
        Some((tx, task)) => {
            drain(&track_progress, total.tracked, config.drain_timeout).await;
            if let Some(events) = events {
                events.abort();
            }
            drop(tx);
            task.await.ok().map(|t| t.report(start))
        }
        None => None,
    };
    drop(progress);
    let elapsed = total
        .last_done
        .map(|l| l.saturating_duration_since(start))
        .unwrap_or_default();
    Ok(report(&config, &target, total, elapsed, e2e))
}

/// How long the drain waits without progress when every outstanding message may be one whose
/// event the server dropped (it said so): those will not come.
const LOST_PATIENCE: Duration = Duration::from_secs(1);

/// Waits until the tracker has seen `accepted` acceptances and none is outstanding, or
/// `timeout` passes, or nothing moved for [`LOST_PATIENCE`] while the stream's dropped events
/// could account for every outstanding message.
async fn drain(progress: &TrackProgress, accepted: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut last = (u64::MAX, Instant::now());
    while Instant::now() < deadline {
        let outstanding = progress.outstanding.load(Ordering::Relaxed);
        if progress.accepted.load(Ordering::Relaxed) >= accepted {
            if outstanding == 0 {
                return;
            }
            if outstanding != last.0 {
                last = (outstanding, Instant::now());
            } else if progress.lagged.load(Ordering::Relaxed) >= outstanding
                && last.1.elapsed() >= LOST_PATIENCE
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn report(
    config: &HttpConfig,
    target: &Target,
    total: WorkerResult,
    elapsed: Duration,
    e2e: Option<E2eReport>,
) -> HttpReport {
    HttpReport {
        mode: "http",
        settings: config.settings(target),
        seconds: elapsed.as_secs_f64(),
        requests: total.requests,
        accepted: total.accepted,
        failed: total.requests - total.accepted,
        requests_per_second: per_second(total.requests, elapsed),
        accepted_per_second: per_second(total.accepted, elapsed),
        messages_accepted: total.messages,
        messages_per_second: per_second(total.messages, elapsed),
        errors: total.errors,
        accept_latency_us: total.latency.percentiles(),
        generator: GeneratorReport {
            late_starts: total.late_starts,
            max_start_lag_us: total.max_lag_us,
        },
        e2e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(bulk_size: Option<usize>) -> Shared {
        Shared {
            target: Target {
                addr: SocketAddr::from(([127, 0, 0, 1], 9)),
                authority: HeaderValue::from_static("127.0.0.1:9"),
                base: String::new(),
                url: "http://127.0.0.1:9".into(),
            },
            uri: Uri::from_static("/api/sms/send"),
            auth: HeaderValue::from_static("Bearer k"),
            schedule: Schedule::new(Pacing::Closed, Stop::Count(1), Instant::now()),
            mix: "otp:1,bulk:1".parse().unwrap(),
            segments: "1,2".parse().unwrap(),
            numbers: Numbers::new("+92300", 7).unwrap(),
            bodies: (0..=2).map(body).collect(),
            bulk_size,
            e2e: false,
            request_timeout: Duration::from_secs(1),
            live: Arc::default(),
        }
    }

    #[test]
    fn request_bodies_are_the_apis_json() {
        let s = shared(None);
        let one: serde_json::Value = serde_json::from_slice(&s.request_body(0)).unwrap();
        assert_eq!(one["to"], "+923000000000");
        assert_eq!(one["priority"], "otp");
        assert_eq!(one["body"].as_str().map(str::len), Some(160));
        let two: serde_json::Value = serde_json::from_slice(&s.request_body(1)).unwrap();
        assert_eq!(two["to"], "+923000000001");
        assert_eq!(two["priority"], "bulk");
        assert_eq!(two["body"].as_str().map(str::len), Some(306));

        let bulk = shared(Some(3));
        let b: serde_json::Value = serde_json::from_slice(&bulk.request_body(2)).unwrap();
        let to: Vec<&str> = b["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["to"].as_str())
            .collect();
        assert_eq!(to, ["+923000000006", "+923000000007", "+923000000008"]);
        assert_eq!(b["priority"], "otp");
    }

    #[tokio::test]
    async fn targets_are_checked() {
        let t = Target::parse("http://127.0.0.1:8080/gw/").await.unwrap();
        assert_eq!(t.addr, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(t.path("/api/sms/send").unwrap(), "/gw/api/sms/send");
        let t = Target::parse("http://[::1]").await.unwrap();
        assert_eq!(t.addr.port(), 80);
        for bad in ["https://127.0.0.1", "127.0.0.1:80", "not a url"] {
            let e = Target::parse(bad).await.unwrap_err().to_string();
            assert!(e.starts_with("--target: "), "{bad}: {e}");
        }
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        let c = HttpConfig::new("http://127.0.0.1:1", "sk_live_secret");
        assert!(!format!("{c:?}").contains("sk_live_secret"));
    }
}
