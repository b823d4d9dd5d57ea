//! The WebhookDispatcher: signed outbound webhooks and per-message `callbackUrl` deliveries from
//! the durable outbox, with retries, a delivery log and auto-disable (issues 5 and 14; operator
//! docs in `docs/webhooks.md`).
//!
//! # Flow
//! Events come from the store's durable outbox ([`sairex_store::OutboxEntry`]): every status
//! change and inbound message writes one in the batch of the change, so no writer publishes by
//! hand and nothing is missed by a slow reader. [`WebhookDispatcher::start`] spawns a
//! supervisor that keeps one consumer per active webhook, and one per organization for its
//! messages' `callbackUrl`s. A consumer reads its organization's entries after its durable
//! cursor, names each ([`event_name`]: QUEUED → `message.queued`, SUBMITTED/SENT →
//! `message.sent`, DELIVERED → `message.delivered`, FAILED/REJECTED/EXPIRED → `message.failed`,
//! inbound → `message.inbound`), builds the payload from the entry's snapshot ([`payload`]),
//! and POSTs the ones it subscribes to, signed (`X-Sairex-Signature`, see [`sign`]).
//!
//! Each event's payload `id` is `evt_<outbox position>` and its `X-Sairex-Delivery` header
//! `dlv_<webhook>_<position>`, the same on every attempt and after a restart: delivery is at
//! least once, and a receiver de-duplicates on the id. A message's events are delivered in
//! order (queued before sent before delivered); different messages' concurrently, at most
//! [`WebhookConfig::max_in_flight`] attempts at once across all consumers.
//!
//! # Deliveries and retries
//! A round reads up to 256 entries, delivers them, and writes in one store batch: the attempts
//! to the webhook's delivery log (which move `consecutiveFails`; after
//! [`WebhookConfig::disable_after_failures`] failures in a row the webhook is deactivated), the
//! new cursor, and the pending entries. A failed event (non-2xx, timeout, connection error,
//! refused target) becomes pending, retried after [`WebhookConfig::retry_delays`] (10 s, 30 s,
//! 2 min, 10 min, 1 h, then 1 h) until [`WebhookConfig::max_attempts`]; later events of the same
//! message wait behind it. Pending entries are in the store: a restart or a crash loses none.
//!
//! When a round's every attempt fails, or an attempt finds the receiver down (no answer, 5xx,
//! 408, 429), the consumer stops reading new events for the next retry delay: they stay in the
//! outbox, and a receiver that was down gets its backlog when it answers again (its pending
//! retries are then due at once). At most [`WebhookConfig::max_pending_retries`] events are
//! pending per webhook; at that many it reads nothing new until some settle. What a receiver
//! down for longer than the outbox retention (`[store] outbox_retention`, 7 days) missed is
//! trimmed and lost; an inactive webhook does not hold the outbox back, and when activated
//! again it goes on from its cursor.
//!
//! A webhook created now starts with the next event. A changed URL, secret or event list is
//! used from the next round; a deactivated or deleted webhook's consumer stops.
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
    /// Most events one webhook keeps pending (retrying, or waiting behind a retry of their
    /// message); at that many it reads no new events until some are settled.
    pub max_pending_retries: usize,
    /// Failures in a row (the webhook's `consecutiveFails`) that deactivate a webhook; 0 never.
    pub disable_after_failures: u32,
    /// TCP connect (and TLS handshake) limit.
    pub connect_timeout: Duration,
    /// Whole-request limit, response included.
    pub request_timeout: Duration,
    /// How often the dispatcher looks for webhooks created, activated, deactivated or deleted
    /// (kept within 100 ms..5 s; [`WebhookHandle::invalidate`] makes it look at one
    /// organization at once). A changed URL, secret or event list is read every round anyway.
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
    /// Outbox entries read (each consumer counts its own).
    pub events: u64,
    /// Attempts answered 2xx.
    pub succeeded: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Retries scheduled.
    pub retries_scheduled: u64,
    /// Deliveries given up after their last attempt.
    pub exhausted: u64,
    /// Webhooks deactivated after failing in a row.
    pub disabled: u64,
    /// Events waiting for a retry, or behind one of their message's, now.
    pub pending_retries: u64,
    /// Attempts in flight now.
    pub in_flight: u64,
}
