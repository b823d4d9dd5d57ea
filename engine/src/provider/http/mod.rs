//! Providers reached over HTTP: Twilio Programmable Messaging ([`twilio`]), the Vonage SMS API
//! ([`vonage`]) and Veevo Tech ([`veevo`]). One task per provider record speaks the
//! dispatcher's credit protocol ([`super`]) exactly like the SMPP provider:
//!
//! - **Credit** is `min(free request slots, tokens in the TPS bucket)`: at most
//!   [`HttpProviderConfig::concurrency`] requests are in flight at once, each message one
//!   request (the provider splits long text itself). Announcements never exceed what is free,
//!   counting credit already announced and messages waiting here.
//! - **Answers**: each [`Outbound`] is answered once with [`ProviderEvent::Done`]. The adapter
//!   maps the provider's answer ([`twilio::outcome`], [`vonage::outcome`], [`veevo::outcome`]):
//!   HTTP 429 is throttled (the message is re-queued, no retry counted, and sending pauses for
//!   the `Retry-After` or a second), 5xx temporary (failover, then retries), other 4xx a
//!   rejection with the provider's error code. A connection that could not be made is
//!   `NotSent` (safe to send elsewhere); a timeout or a connection lost after the request went
//!   out is `InDoubt` (the provider may have taken it), resolved by the provider's
//!   [`InDoubtPolicy`].
//! - **Health**: every [`HttpProviderConfig::health_interval`] the account or balance
//!   endpoint is read; the balance is the gauge [`BALANCE`]. After
//!   [`HEALTH_FAILURES_TO_DOWN`] failed checks in a row the provider announces
//!   [`ProviderEvent::Unavailable`] and takes nothing until a check succeeds.
//! - **Drain** ([`HttpProviderHandle::drain`]): the link refuses new messages, waiting ones are
//!   answered `NotSent`, requests in flight finish; past the grace they are cancelled and
//!   answered `InDoubt`.
//!
//! Receipts and inbound messages of HTTP providers do not come through this task: the
//! providers post them to the API (`/api/sms/dlr`, `/api/sms/receive`), which hands them to
//! the dispatcher through [`crate::dispatch::callbacks`].
//!
//! Settings and credentials of the store record: [`settings::http_config`] and
//! `docs/providers.md`.

pub mod settings;
pub mod signature;
pub mod twilio;
pub mod veevo;
pub mod vonage;

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use sairex_pdu::CommandStatus;
use sairex_store::model::Id;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::token_bucket::TokenBucket;
use super::{
    AcceptedParts, InDoubtPolicy, LinkError, Outbound, ProviderEvent, ProviderEvents, ProviderLink,
    SendOutcome, SharedLink,
};
use crate::classify::SubmitOutcome;

/// Tracing target of this module.
const TARGET: &str = "sairex::engine::provider::http";

/// The account balance a provider reported at its last health check (gauge, label
/// `provider`; in the account's currency).
pub const BALANCE: &str = "sms_provider_balance";
/// HTTP requests to providers by result (counter, labels `provider`, `result`: accepted,
/// refused, throttled, in_doubt, not_sent).
pub const HTTP_REQUESTS: &str = "sms_http_provider_requests_total";
/// Requests in flight to a provider (gauge, label `provider`).
pub const HTTP_IN_FLIGHT: &str = "sms_http_provider_in_flight";
/// Health checks in a row that must fail before the provider stops taking messages.
pub const HEALTH_FAILURES_TO_DOWN: u32 = 3;
/// How often returning tokens are looked at (as the SMPP provider's refill tick).
pub const REFILL_TICK: Duration = Duration::from_millis(50);
/// How long sending pauses after a throttled answer without `Retry-After`.
pub const THROTTLE_PAUSE: Duration = Duration::from_secs(1);
/// Longest pause a `Retry-After` may ask for.
pub const MAX_THROTTLE_PAUSE: Duration = Duration::from_secs(60);
/// Largest response body read from a provider.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// A secret from a provider record: never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself (do not log it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (not configured).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

/// Which API, with its account details.
#[derive(Debug, Clone)]
pub enum HttpApi {
    /// Twilio Programmable Messaging.
    Twilio(twilio::TwilioApi),
    /// Vonage SMS API.
    Vonage(vonage::VonageApi),
    /// Veevo Tech.
    Veevo(veevo::VeevoApi),
}

impl HttpApi {
    /// The name used in the callback URLs (`provider=`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Twilio(_) => "twilio",
            Self::Vonage(_) => "vonage",
            Self::Veevo(_) => "veevo",
        }
    }
}

/// One HTTP provider configuration.
#[derive(Debug, Clone)]
pub struct HttpProviderConfig {
    /// The provider record's id, carried in every [`ProviderEvent`].
    pub provider_id: Id,
    /// The API and its account.
    pub api: HttpApi,
    /// Where the API is (no trailing slash): the provider's public API by default; tests and
    /// staging point it elsewhere.
    pub base_url: String,
    /// Requests in flight at most (at least 1).
    pub concurrency: u32,
    /// Messages per second; `None` for no limit of our own.
    pub tps: Option<u32>,
    /// Whole request (connect, send, answer) at most.
    pub request_timeout: Duration,
    /// TCP and TLS connection set-up at most.
    pub connect_timeout: Duration,
    /// How often the balance is read; `None` never (the provider is then always up).
    pub health_interval: Option<Duration>,
    /// What the dispatcher does with an in-doubt message.
    pub in_doubt: InDoubtPolicy,
    /// The gateway's public base URL (no trailing slash), for the receipt callback URL given
    /// to the provider with each message; `None` gives none (receipts then come only as
    /// configured in the provider's console, if at all).
    pub callback_base: Option<String>,
}

impl HttpProviderConfig {
    /// The receipt callback URL of this provider, if there is a public base URL.
    pub fn receipt_callback(&self) -> Option<String> {
        self.callback_base.as_ref().map(|base| {
            format!(
                "{base}/api/sms/dlr?provider={}&providerId={}",
                self.api.name(),
                self.provider_id
            )
        })
    }
}

/// What an adapter made of an answer: the outcome, and for a throttled answer how long to
/// pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The outcome for the dispatcher.
    pub outcome: SendOutcome,
    /// Pause sending this long (a throttled answer).
    pub pause: Option<Duration>,
}

impl Answer {
    fn of(outcome: SendOutcome) -> Self {
        Self {
            outcome,
            pause: None,
        }
    }
}

/// A refusal with the closest SMPP status and the provider's own code.
pub fn refused(outcome: SubmitOutcome, error_code: impl Into<String>) -> SendOutcome {
    let status = match outcome {
        SubmitOutcome::Accepted => CommandStatus::ESME_ROK,
        SubmitOutcome::Throttled => CommandStatus::ESME_RTHROTTLED,
        SubmitOutcome::Temporary => CommandStatus::ESME_RX_T_APPN,
        SubmitOutcome::Rejected => CommandStatus::ESME_RX_R_APPN,
        SubmitOutcome::Failed => CommandStatus::ESME_RX_P_APPN,
    };
    SendOutcome::Refused {
        status,
        outcome,
        error_code: Some(error_code.into()),
        accepted: AcceptedParts::none(),
    }
}

/// The treatment of an HTTP status without a more specific answer in the body (issue 6: 429
/// and 5xx temporary, other 4xx permanent): 429 throttled; 5xx and 408 (a timeout, like no
/// answer) temporary; 401/403/404 FAILED (the account or URL is wrong, not the message; the
/// failing health checks then take the provider out of routing); other 4xx a rejection of the
/// message.
pub fn classify_http_status(status: u16) -> SubmitOutcome {
    match status {
        200..=299 => SubmitOutcome::Accepted,
        429 => SubmitOutcome::Throttled,
        408 => SubmitOutcome::Temporary,
        401 | 403 | 404 => SubmitOutcome::Failed,
        400..=499 => SubmitOutcome::Rejected,
        _ => SubmitOutcome::Temporary,
    }
}

/// `Retry-After` in seconds, bounded.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_THROTTLE_PAUSE))
}

/// What a health check found.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthCheck {
    /// The account answered; its balance when it gives one.
    Up(Option<f64>),
    /// It did not answer usefully (status, error).
    Down(String),
}

/// Why an HTTP provider could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpProviderError {
    /// The HTTP client could not be built (TLS set-up).
    #[error("HTTP client: {0}")]
    Client(String),
    /// The configuration cannot be used.
    #[error("{0}")]
    Config(String),
}

/// The provider task's handle: the link for the dispatcher, drain.
#[derive(Debug)]
pub struct HttpProviderHandle {
    join: JoinHandle<()>,
    link: Arc<HttpLink>,
    cancel: CancellationToken,
}

/// The drain did not finish within its grace period; requests still in flight were answered
/// `InDoubt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("HTTP provider drain exceeded its grace period; stopped")]
pub struct DrainTimedOut;

/// Messages to the task.
#[derive(Debug)]
enum Command {
    Send(Outbound),
    Drain,
    Resync,
}

/// [`ProviderLink`] of an HTTP provider.
pub struct HttpLink {
    provider_id: Id,
    tx: mpsc::UnboundedSender<Command>,
    closed: Arc<AtomicBool>,
    in_doubt: InDoubtPolicy,
}

impl fmt::Debug for HttpLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpLink")
            .field("provider_id", &self.provider_id)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ProviderLink for HttpLink {
    fn provider_id(&self) -> Id {
        self.provider_id
    }

    fn send(&self, message: Outbound) -> Result<(), (LinkError, Outbound)> {
        if self.closed.load(Ordering::Acquire) {
            return Err((LinkError::Closed(self.provider_id), message));
        }
        // Unbounded, but bounded in practice by the credit the task announced.
        self.tx.send(Command::Send(message)).map_err(|e| match e.0 {
            Command::Send(m) => (LinkError::Closed(self.provider_id), m),
            // Only Send is sent here.
            _ => unreachable_command(),
        })
    }

    fn in_doubt_policy(&self) -> InDoubtPolicy {
        self.in_doubt
    }

    fn resync(&self) {
        let _ = self.tx.send(Command::Resync);
    }
}

#[cold]
fn unreachable_command() -> ! {
    unreachable!("only Command::Send is sent by HttpLink::send")
}

impl HttpProviderHandle {
    /// The dispatcher's link to this provider.
    pub fn link(&self) -> SharedLink {
        Arc::clone(&self.link) as SharedLink
    }

    /// Whether the task has stopped (drained, or died).
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Drains (module docs), bounded by `grace`.
    ///
    /// # Errors
    /// [`DrainTimedOut`] when `grace` ran out; what was in flight was answered `InDoubt`.
    pub async fn drain(self, grace: Duration) -> Result<(), DrainTimedOut> {
        self.link.closed.store(true, Ordering::Release);
        let _ = self.link.tx.send(Command::Drain);
        let mut join = self.join;
        match timeout(grace, &mut join).await {
            Ok(_) => Ok(()),
            Err(_) => {
                warn!(target: TARGET, provider = self.link.provider_id, "drain grace exceeded; cancelling requests");
                self.cancel.cancel();
                let _ = timeout(Duration::from_secs(5), join).await;
                Err(DrainTimedOut)
            }
        }
    }
}

/// Starts HTTP providers.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpProvider;

impl HttpProvider {
    /// Starts the provider's task. It announces credit at once; its first health check runs
    /// alongside.
    ///
    /// # Errors
    /// [`HttpProviderError`] when the client cannot be built or the configuration is unusable.
    pub fn start(
        config: HttpProviderConfig,
        events: ProviderEvents,
    ) -> Result<HttpProviderHandle, HttpProviderError> {
        if config.concurrency == 0 {
            return Err(HttpProviderError::Config(
                "concurrency must be at least 1".into(),
            ));
        }
        if config.tps == Some(0) {
            return Err(HttpProviderError::Config(
                "tps must be above zero (leave it out for no limit)".into(),
            ));
        }
        let client = crate::http_client::builder()
            .map_err(|e| HttpProviderError::Client(e.to_string()))?
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(usize::try_from(config.concurrency).unwrap_or(64))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| HttpProviderError::Client(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let closed = Arc::new(AtomicBool::new(false));
        let cancel = CancellationToken::new();
        let link = Arc::new(HttpLink {
            provider_id: config.provider_id,
            tx,
            closed: Arc::clone(&closed),
            in_doubt: config.in_doubt,
        });
        let now = Instant::now();
        let task = Task {
            bucket: config.tps.map(|t| TokenBucket::new(t, (t / 5).max(1), now)),
            api: Arc::new(config.api.clone()),
            client,
            events,
            closed,
            rx,
            promised: 0,
            pending: VecDeque::new(),
            in_flight: FuturesUnordered::new(),
            in_flight_tokens: HashSet::new(),
            health: FuturesUnordered::new(),
            health_failures: 0,
            up: true,
            announced_unavailable: false,
            paused_until: None,
            draining: false,
            dispatcher_gone: false,
            config,
        };
        let join = tokio::spawn(task.run(cancel.clone()));
        Ok(HttpProviderHandle { join, link, cancel })
    }
}

type Flight = BoxFuture<'static, (u64, Answer)>;

struct Task {
    config: HttpProviderConfig,
    api: Arc<HttpApi>,
    client: reqwest::Client,
    events: ProviderEvents,
    closed: Arc<AtomicBool>,
    rx: mpsc::UnboundedReceiver<Command>,
    bucket: Option<TokenBucket>,
    /// Credit announced and not yet used.
    promised: u32,
    /// Messages taken, waiting for a slot or a token.
    pending: VecDeque<Outbound>,
    in_flight: FuturesUnordered<Flight>,
    in_flight_tokens: HashSet<u64>,
    health: FuturesUnordered<BoxFuture<'static, HealthCheck>>,
    health_failures: u32,
    up: bool,
    announced_unavailable: bool,
    paused_until: Option<Instant>,
    draining: bool,
    dispatcher_gone: bool,
}

impl Task {
    async fn run(mut self, cancel: CancellationToken) {
        let id = self.config.provider_id;
        info!(target: TARGET, provider = id, api = self.api.name(), base = %self.config.base_url, "HTTP provider started");
        let mut tick = tokio::time::interval(REFILL_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut health_tick = self.config.health_interval.map(|every| {
            let mut t = tokio::time::interval(every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        self.announce().await;
        let mut rx_closed = false;
        loop {
            if self.draining && self.pending.is_empty() && self.in_flight.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    self.cancel_all().await;
                    break;
                }
                command = self.rx.recv(), if !rx_closed => match command {
                    Some(Command::Send(m)) => self.take(m).await,
                    Some(Command::Drain) => self.start_drain().await,
                    Some(Command::Resync) => self.promised = 0,
                    // Every link is gone: nobody can send or drain any more.
                    None => {
                        rx_closed = true;
                        self.start_drain().await;
                    }
                },
                Some((token, answer)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.answered(token, answer).await;
                }
                Some(check) = self.health.next(), if !self.health.is_empty() => {
                    self.health_checked(check).await;
                }
                _ = tick.tick() => {}
                _ = async {
                    match health_tick.as_mut() {
                        Some(t) => t.tick().await,
                        None => std::future::pending().await,
                    }
                }, if self.health.is_empty() && !self.draining => self.check_health(),
            }
            self.pump();
            self.announce().await;
            metrics::gauge!(HTTP_IN_FLIGHT, "provider" => id.to_string())
                .set(self.in_flight.len() as f64);
        }
        debug!(target: TARGET, provider = id, "HTTP provider stopped");
    }

    async fn take(&mut self, message: Outbound) {
        self.promised = self.promised.saturating_sub(1);
        if self.draining {
            self.done(message.token, not_sent("provider stopping"))
                .await;
        } else if message.resume.is_some() {
            // The API splits the text itself: it cannot send only the parts still missing,
            // and the whole text would repeat the accepted ones. The dispatcher does not
            // route such messages here (no part layout); answer rather than trust that.
            self.done(
                message.token,
                not_sent("an HTTP provider cannot send single parts of a message"),
            )
            .await;
        } else {
            self.pending.push_back(message);
        }
    }

    async fn start_drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.closed.store(true, Ordering::Release);
        while let Some(m) = self.pending.pop_front() {
            self.done(m.token, not_sent("provider stopping")).await;
        }
    }

    /// Past the drain grace: what is in flight may have reached the provider.
    async fn cancel_all(&mut self) {
        self.closed.store(true, Ordering::Release);
        while let Some(m) = self.pending.pop_front() {
            self.done(m.token, not_sent("provider stopped")).await;
        }
        self.in_flight = FuturesUnordered::new();
        let tokens: Vec<u64> = self.in_flight_tokens.drain().collect();
        for token in tokens {
            self.done(
                token,
                SendOutcome::InDoubt {
                    accepted: AcceptedParts::none(),
                },
            )
            .await;
        }
    }

    fn paused(&mut self, now: Instant) -> bool {
        match self.paused_until {
            Some(until) if until > now => true,
            Some(_) => {
                self.paused_until = None;
                false
            }
            None => false,
        }
    }

    fn free_slots(&self) -> u32 {
        let busy = u32::try_from(self.in_flight.len()).unwrap_or(u32::MAX);
        self.config.concurrency.saturating_sub(busy)
    }

    /// Starts requests for waiting messages while slots and tokens last.
    fn pump(&mut self) {
        if self.draining {
            return;
        }
        let now = Instant::now();
        while !self.pending.is_empty() && self.free_slots() > 0 && !self.paused(now) {
            if let Some(bucket) = &mut self.bucket
                && bucket.take(1, now).is_err()
            {
                break;
            }
            let Some(message) = self.pending.pop_front() else {
                break;
            };
            let token = message.token;
            self.in_flight_tokens.insert(token);
            let request = request(
                Arc::clone(&self.api),
                self.client.clone(),
                self.config.base_url.clone(),
                self.config.receipt_callback(),
                message,
            );
            self.in_flight
                .push(Box::pin(async move { (token, request.await) }));
        }
    }

    async fn announce(&mut self) {
        if self.draining || self.dispatcher_gone {
            return;
        }
        if !self.up {
            if !self.announced_unavailable {
                self.announced_unavailable = true;
                self.promised = 0;
                self.emit(ProviderEvent::Unavailable {
                    provider_id: self.config.provider_id,
                })
                .await;
            }
            return;
        }
        let now = Instant::now();
        let tokens = if self.paused(now) {
            0
        } else {
            self.bucket.as_mut().map_or(u32::MAX, |b| b.available(now))
        };
        let capacity = self.free_slots().min(tokens);
        let owed = self
            .promised
            .saturating_add(u32::try_from(self.pending.len()).unwrap_or(u32::MAX));
        if capacity > owed {
            let n = capacity - owed;
            self.promised += n;
            self.announced_unavailable = false;
            self.emit(ProviderEvent::Credit {
                provider_id: self.config.provider_id,
                n,
            })
            .await;
        }
    }

    async fn answered(&mut self, token: u64, answer: Answer) {
        if !self.in_flight_tokens.remove(&token) {
            return;
        }
        if let Some(pause) = answer.pause {
            let until = Instant::now() + pause;
            self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
            info!(target: TARGET, provider = self.config.provider_id, pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX), "throttled by the provider: pausing");
        }
        let result = match &answer.outcome {
            SendOutcome::Accepted { .. } => "accepted",
            SendOutcome::Refused {
                outcome: SubmitOutcome::Throttled,
                ..
            } => "throttled",
            SendOutcome::Refused { .. } => "refused",
            SendOutcome::InDoubt { .. } => "in_doubt",
            SendOutcome::NotSent { .. } => "not_sent",
        };
        metrics::counter!(HTTP_REQUESTS, "provider" => self.config.provider_id.to_string(), "result" => result)
            .increment(1);
        self.done(token, answer.outcome).await;
    }

    fn check_health(&mut self) {
        let api = Arc::clone(&self.api);
        let client = self.client.clone();
        let base = self.config.base_url.clone();
        self.health
            .push(Box::pin(async move { health(&api, &client, &base).await }));
    }

    async fn health_checked(&mut self, check: HealthCheck) {
        let id = self.config.provider_id;
        match check {
            HealthCheck::Up(balance) => {
                if let Some(balance) = balance {
                    metrics::gauge!(BALANCE, "provider" => id.to_string()).set(balance);
                }
                if !self.up {
                    info!(target: TARGET, provider = id, "health check passed; taking messages again");
                }
                self.health_failures = 0;
                self.up = true;
            }
            HealthCheck::Down(why) => {
                self.health_failures = self.health_failures.saturating_add(1);
                warn!(target: TARGET, provider = id, failures = self.health_failures, reason = %why, "health check failed");
                if self.health_failures >= HEALTH_FAILURES_TO_DOWN && self.up {
                    self.up = false;
                }
            }
        }
    }

    async fn done(&mut self, token: u64, outcome: SendOutcome) {
        self.emit(ProviderEvent::Done {
            provider_id: self.config.provider_id,
            token,
            outcome,
        })
        .await;
    }

    async fn emit(&mut self, event: ProviderEvent) {
        if self.dispatcher_gone {
            return;
        }
        if self.events.send(event).await.is_err() {
            warn!(target: TARGET, provider = self.config.provider_id, "dispatcher channel closed; draining");
            self.dispatcher_gone = true;
            self.closed.store(true, Ordering::Release);
            self.draining = true;
            self.pending.clear();
        }
    }
}

fn not_sent(reason: &str) -> SendOutcome {
    SendOutcome::NotSent {
        reason: reason.into(),
        accepted: AcceptedParts::none(),
    }
}

/// One message's request and what its answer means.
async fn request(
    api: Arc<HttpApi>,
    client: reqwest::Client,
    base: String,
    callback: Option<String>,
    message: Outbound,
) -> Answer {
    let builder = match api.as_ref() {
        HttpApi::Twilio(t) => t.send_request(&client, &base, &message, callback.as_deref()),
        HttpApi::Vonage(v) => v.send_request(&client, &base, &message, callback.as_deref()),
        HttpApi::Veevo(v) => v.send_request(&client, &base, &message),
    };
    let response = match builder.send().await {
        Ok(r) => r,
        Err(e) => return Answer::of(transport_error(&e)),
    };
    let status = response.status().as_u16();
    let pause = (status == 429).then(|| retry_after(response.headers()).unwrap_or(THROTTLE_PAUSE));
    let body = match read_body(response).await {
        Ok(b) => b,
        // The provider answered but the answer was lost: it may have taken the message.
        Err(e) => {
            if (200..300).contains(&status) {
                return Answer::of(SendOutcome::InDoubt {
                    accepted: AcceptedParts::none(),
                });
            }
            debug!(target: TARGET, error = %e, "reading an error answer failed");
            Vec::new()
        }
    };
    let mut answer = match api.as_ref() {
        HttpApi::Twilio(_) => twilio::outcome(status, &body),
        HttpApi::Vonage(_) => vonage::outcome(status, &body),
        HttpApi::Veevo(_) => veevo::outcome(status, &body),
    };
    if answer.pause.is_none() {
        answer.pause = pause;
    }
    answer
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(body)
}

/// A request that failed before an answer: `NotSent` if no connection was made, else in doubt.
fn transport_error(e: &reqwest::Error) -> SendOutcome {
    if e.is_builder() {
        return not_sent(&format!("request could not be built: {e}"));
    }
    if e.is_connect() && !e.is_timeout() {
        return not_sent(&format!("connection failed: {e}"));
    }
    SendOutcome::InDoubt {
        accepted: AcceptedParts::none(),
    }
}

async fn health(api: &HttpApi, client: &reqwest::Client, base: &str) -> HealthCheck {
    let builder = match api {
        HttpApi::Twilio(t) => Some(t.balance_request(client, base)),
        HttpApi::Vonage(v) => Some(v.balance_request(client, base)),
        HttpApi::Veevo(v) => v.balance_request(client, base),
    };
    let Some(builder) = builder else {
        return HealthCheck::Up(None);
    };
    let response = match builder.send().await {
        Ok(r) => r,
        Err(e) => return HealthCheck::Down(format!("request failed: {e}")),
    };
    let status = response.status();
    let body = match read_body(response).await {
        Ok(b) => b,
        Err(e) => return HealthCheck::Down(format!("reading the answer failed: {e}")),
    };
    if !status.is_success() {
        return HealthCheck::Down(format!("HTTP {status}"));
    }
    let balance = match api {
        HttpApi::Twilio(_) => twilio::parse_balance(&body),
        HttpApi::Vonage(_) => vonage::parse_balance(&body),
        HttpApi::Veevo(v) => veevo::parse_balance(&body, &v.balance_field),
    };
    HealthCheck::Up(balance)
}

/// The form encoding of `pairs`.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

/// A JSON number or a numeric string, as a float.
pub(crate) fn number(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON string or number as a string.
pub(crate) fn text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_per_the_issue() {
        assert_eq!(classify_http_status(201), SubmitOutcome::Accepted);
        assert_eq!(classify_http_status(429), SubmitOutcome::Throttled);
        assert_eq!(classify_http_status(500), SubmitOutcome::Temporary);
        assert_eq!(classify_http_status(503), SubmitOutcome::Temporary);
        assert_eq!(classify_http_status(400), SubmitOutcome::Rejected);
        assert_eq!(classify_http_status(422), SubmitOutcome::Rejected);
        assert_eq!(classify_http_status(401), SubmitOutcome::Failed);
        assert_eq!(classify_http_status(404), SubmitOutcome::Failed);
        assert_eq!(classify_http_status(408), SubmitOutcome::Temporary);
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "***");
    }
}
