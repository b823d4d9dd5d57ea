//! The WebhookDispatcher: signed outbound webhooks and per-message `callbackUrl` deliveries,
//! with retries, a delivery log and auto-disable (issue 5; operator docs in `docs/webhooks.md`).
//!
//! # Flow
//! [`WebhookDispatcher::start`] spawns one task that reads [`EngineEvent`](crate::dispatch::EngineEvent)s from the engine's
//! broadcast channel. For each status change or inbound message it reads the message from the
//! store, names the event ([`event_name`]: QUEUED → `message.queued`, SUBMITTED/SENT →
//! `message.sent`, DELIVERED → `message.delivered`, FAILED/REJECTED/EXPIRED → `message.failed`,
//! inbound → `message.inbound`), builds one payload ([`payload`]), and POSTs it to every active
//! webhook of the message's organization subscribed to the event, and to the message's own
//! `callbackUrl` if it has one. Each POST is signed (`X-Sairex-Signature`, see [`sign`]).
//!
//! # Deliveries and retries
//! At most [`WebhookConfig::max_in_flight`] attempts run at once; when all are busy the task
//! stops reading events until one finishes. A non-2xx answer, a timeout, a connection error or
//! a refused target is a failure, retried after [`WebhookConfig::retry_delays`] (10 s, 30 s,
//! 2 min, 10 min, 1 h, then 1 h) until [`WebhookConfig::max_attempts`]. Every attempt on a
//! webhook is written to its delivery log (status, latency, start of the response body or the
//! error, attempt number), which also moves its `consecutiveFails` (0 after a success); after
//! [`WebhookConfig::disable_after_failures`] failures in a row the webhook is deactivated and
//! its pending retries dropped. A retry re-reads the webhook, so a changed URL or secret, or a
//! webhook deactivated or deleted meanwhile, is honoured.
//!
//! Pending retries live in memory, at most [`WebhookConfig::max_pending_retries`] (a retry over
//! that is dropped, counted and logged), and are lost on restart: delivery is at least once
//! while the process runs, best effort across restarts.
//!
//! # Missed events
//! The engine's broadcast channel has a fixed capacity (`DispatcherConfig::event_capacity`).
//! A dispatcher that falls further behind than that loses the oldest events: it logs how many
//! and counts them in [`metrics::EVENTS_LAGGED`] and [`WebhookStats::events_lagged`]. The
//! capacity should cover a few seconds of peak status changes (about three per message sent).
//!
//! # callbackUrl
//! A message's `callbackUrl` receives the same payloads for that message's status events.
//! There is no webhook record for it, so it has no delivery log or `consecutiveFails`; it is
//! retried on the same schedule. It is signed with the secret of the organization's oldest
//! active webhook (one subscribed to no events is fine for this), and sent unsigned when the
//! organization has none.
//!
//! # SSRF
//! Targets are checked by [`target`] before every attempt, and the client resolves host names
//! through [`target::GuardedResolver`], unless [`WebhookConfig::allow_private_targets`].

mod deliver;
mod dispatcher;
pub mod metrics;
pub mod payload;
pub mod sign;
pub mod target;

use sairex_store::StoreError;
use sairex_store::model::Id;
use tokio::time::Duration;

pub use dispatcher::{WebhookDispatcher, WebhookHandle};
pub use payload::{EVENTS, event_name};
pub use target::{TargetError, check_target, check_target_resolved};

/// How the dispatcher delivers.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Allow loopback, private and link-local targets (config `[webhooks]
    /// allow_private_targets`; tests and closed networks only).
    pub allow_private_targets: bool,
    /// Most attempts in flight at once.
    pub max_in_flight: usize,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// Wait before attempt n + 1 is `retry_delays[n - 1]`, the last entry repeating.
    pub retry_delays: Vec<Duration>,
    /// Most retries waiting in memory.
    pub max_pending_retries: usize,
    /// Failures in a row (the webhook's `consecutiveFails`) that deactivate a webhook; 0 never.
    pub disable_after_failures: u32,
    /// TCP connect (and TLS handshake) limit.
    pub connect_timeout: Duration,
    /// Whole-request limit, response included.
    pub request_timeout: Duration,
    /// How long an organization's webhook list is reused before it is read again
    /// ([`WebhookHandle::invalidate`] forgets it at once).
    pub webhook_cache_ttl: Duration,
    /// How long shutdown waits for attempts in flight.
    pub shutdown_grace: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            max_in_flight: 64,
            max_attempts: 8,
            retry_delays: vec![
                Duration::from_secs(10),
                Duration::from_secs(30),
                Duration::from_secs(120),
                Duration::from_secs(600),
                Duration::from_secs(3_600),
            ],
            max_pending_retries: 10_000,
            disable_after_failures: 50,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            webhook_cache_ttl: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(5),
            user_agent: concat!("Sairex-Webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl WebhookConfig {
    /// The wait before the attempt after `attempt` (1-based).
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.retry_delays
            .get(index)
            .or(self.retry_delays.last())
            .copied()
            .unwrap_or(Duration::from_secs(60))
    }
}

/// What went wrong, for callers of the handle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The organization has no such webhook.
    #[error("webhook {0} not found")]
    NotFound(Id),
    /// The stored URL does not parse.
    #[error("invalid webhook URL: {0}")]
    InvalidUrl(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// The dispatcher has stopped.
    #[error("the webhook dispatcher has stopped")]
    Stopped,
}

/// The result of one delivery attempt (what `POST /api/sms/webhooks/:id/test` reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// The `X-Sairex-Delivery` id.
    pub delivery_id: String,
    /// The event name.
    pub event: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Whether the receiver answered 2xx.
    pub success: bool,
    /// The receiver's status, if it answered.
    pub http_status: Option<u16>,
    /// Round trip.
    pub latency: Duration,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub response_body: Option<String>,
    /// The delivery log entry's id, when it was written.
    pub log_id: Option<Id>,
}

/// What the dispatcher did since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookStats {
    /// Engine events read.
    pub events: u64,
    /// Engine events missed because the dispatcher lagged.
    pub events_lagged: u64,
    /// Attempts answered 2xx.
    pub succeeded: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Retries scheduled.
    pub retries_scheduled: u64,
    /// Retries dropped (the pending set was full, or shutdown).
    pub retries_dropped: u64,
    /// Deliveries given up after their last attempt.
    pub exhausted: u64,
    /// Webhooks deactivated after failing in a row.
    pub disabled: u64,
    /// Retries waiting now.
    pub pending_retries: u64,
    /// Attempts in flight now.
    pub in_flight: u64,
}
