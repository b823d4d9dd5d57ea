//! The dispatcher task and its handle.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as Atomic};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use reqwest::{Client, Url};
use sairex_store::model::{Direction, Id, MessageStatus, Webhook, WebhookDelivery};
use sairex_store::{Store, StoreError};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Duration, Instant, sleep_until, timeout_at};

use super::deliver::{self, AttemptResult, Request, Secret};
use super::payload::{
    MESSAGE_INBOUND, StatusEvent, WEBHOOK_TEST, event_name, message_payload, new_id, now_millis,
    subscribes, test_payload,
};
use super::target::{TargetError, check_target_resolved};
use super::{DeliveryOutcome, WebhookConfig, WebhookError, WebhookStats, metrics};
use crate::dispatch::EngineEvent;

/// Organizations whose webhook lists are cached before expired entries are swept.
const CACHE_SWEEP_AT: usize = 4_096;

/// Starts the dispatcher (see the [module docs](super)).
#[derive(Debug)]
pub struct WebhookDispatcher;

impl WebhookDispatcher {
    /// Spawns the dispatcher on the current tokio runtime, reading `events`. It runs until
    /// [`WebhookHandle::shutdown`], or until every handle is dropped.
    ///
    /// # Errors
    /// [`WebhookError::Client`] when the HTTP client cannot be built (TLS roots).
    pub fn start(
        store: Store,
        events: broadcast::Receiver<EngineEvent>,
        config: WebhookConfig,
    ) -> Result<WebhookHandle, WebhookError> {
        let client = deliver::client(&config)?;
        let shared = Arc::new(Shared {
            store,
            client,
            config,
            counters: Counters::default(),
            hooks: Mutex::new(HashMap::new()),
        });
        let (commands, command_rx) = mpsc::channel(8);
        let runner = Runner {
            shared: shared.clone(),
            events,
            events_open: true,
            commands: command_rx,
            tasks: JoinSet::new(),
            retries: BinaryHeap::new(),
            seq: 0,
        };
        tokio::spawn(runner.run());
        Ok(WebhookHandle { shared, commands })
    }
}

/// Talks to a running dispatcher; cheap to clone.
#[derive(Clone)]
pub struct WebhookHandle {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
}

impl fmt::Debug for WebhookHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookHandle")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl WebhookHandle {
    /// Sends a `webhook.test` event to the webhook now (once, no retry), whether it is active
    /// or not, records the attempt in its delivery log, and returns what happened. A failure
    /// counts in `consecutiveFails` like any other.
    ///
    /// # Errors
    /// [`WebhookError::NotFound`] (also for another organization's webhook),
    /// [`WebhookError::InvalidUrl`], [`WebhookError::Store`].
    pub async fn send_test(
        &self,
        org: Id,
        webhook_id: Id,
    ) -> Result<DeliveryOutcome, WebhookError> {
        let shared = &self.shared;
        let hook = match shared.store.webhook(org, webhook_id) {
            Ok(hook) => hook,
            Err(StoreError::NotFound { .. }) => return Err(WebhookError::NotFound(webhook_id)),
            Err(e) => return Err(e.into()),
        };
        let url = Url::parse(&hook.url).map_err(|e| WebhookError::InvalidUrl(e.to_string()))?;
        let secret = secret_of(&hook);
        let delivery_id = new_id("dlv");
        let payload = test_payload(&new_id("evt"), now_millis(), org, webhook_id);
        let body = Bytes::from(serde_json::to_vec(&payload).unwrap_or_default());
        let result = deliver::attempt(
            &shared.client,
            shared.config.allow_private_targets,
            Request {
                url: &url,
                secret: secret.as_ref(),
                event: WEBHOOK_TEST,
                delivery_id: &delivery_id,
                body: &body,
            },
        )
        .await;
        shared.count_attempt(&result);
        let log_id = match shared
            .record(org, webhook_id, WEBHOOK_TEST, &body, 1, &result)
            .await
        {
            Ok(entry) => Some(entry.id),
            Err(e) => {
                tracing::warn!(org, webhook = webhook_id, error = %e, "webhook test not logged");
                None
            }
        };
        if !result.success {
            shared.disable_if_failing(org, webhook_id).await;
        }
        Ok(DeliveryOutcome {
            delivery_id,
            event: WEBHOOK_TEST.to_owned(),
            attempt: 1,
            success: result.success,
            http_status: result.http_status,
            latency: result.latency,
            error: result.error,
            response_body: result.response_body,
            log_id,
        })
    }

    /// Checks a webhook or callback URL as deliveries will (scheme, then every address its
    /// host resolves to), under the configured `allow_private_targets`: what the API calls
    /// before saving a webhook or accepting a message's `callbackUrl`.
    ///
    /// # Errors
    /// [`TargetError`].
    pub async fn check_url(&self, url: &str) -> Result<Url, TargetError> {
        let url = Url::parse(url).map_err(|e| TargetError::InvalidUrl(e.to_string()))?;
        check_target_resolved(&url, self.shared.config.allow_private_targets).await?;
        Ok(url)
    }

    /// Forgets the cached webhook list of `org`, so a webhook created, changed or deleted a
    /// moment ago is seen by the next event (else within `webhook_cache_ttl`).
    pub fn invalidate(&self, org: Id) {
        self.shared.invalidate(org);
    }

    /// What the dispatcher did so far.
    pub fn stats(&self) -> WebhookStats {
        self.shared.counters.snapshot()
    }

    /// Stops reading events, drops pending retries (counted), waits up to
    /// `shutdown_grace` for attempts in flight, then returns. Later calls return at once.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = done.await;
        }
    }
}

#[derive(Debug)]
enum Command {
    Shutdown(oneshot::Sender<()>),
}

/// One webhook as the dispatcher needs it: no clear-text secret in a `Debug` string.
#[derive(Debug)]
struct HookEntry {
    id: Id,
    url: String,
    secret: Option<Secret>,
    events: Vec<String>,
}

fn secret_of(hook: &Webhook) -> Option<Secret> {
    (!hook.secret.is_empty()).then(|| Secret(Arc::from(hook.secret.as_bytes())))
}

impl From<Webhook> for HookEntry {
    fn from(hook: Webhook) -> Self {
        Self {
            id: hook.id,
            secret: secret_of(&hook),
            url: hook.url,
            events: hook.events,
        }
    }
}

#[derive(Debug)]
struct CachedHooks {
    until: Instant,
    hooks: Arc<[HookEntry]>,
}

#[derive(Debug, Default)]
struct Counters {
    events: AtomicU64,
    events_lagged: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    retries_scheduled: AtomicU64,
    retries_dropped: AtomicU64,
    exhausted: AtomicU64,
    disabled: AtomicU64,
    pending_retries: AtomicU64,
    in_flight: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Atomic::Relaxed);
    }

    fn snapshot(&self) -> WebhookStats {
        let get = |c: &AtomicU64| c.load(Atomic::Relaxed);
        WebhookStats {
            events: get(&self.events),
            events_lagged: get(&self.events_lagged),
            succeeded: get(&self.succeeded),
            failed: get(&self.failed),
            retries_scheduled: get(&self.retries_scheduled),
            retries_dropped: get(&self.retries_dropped),
            exhausted: get(&self.exhausted),
            disabled: get(&self.disabled),
            pending_retries: get(&self.pending_retries),
            in_flight: get(&self.in_flight),
        }
    }
}

struct Shared {
    store: Store,
    client: Client,
    config: WebhookConfig,
    counters: Counters,
    hooks: Mutex<HashMap<Id, CachedHooks>>,
}

impl Shared {
    /// The organization's active webhooks, oldest first, cached for `webhook_cache_ttl`.
    fn hooks(&self, org: Id) -> Result<Arc<[HookEntry]>, StoreError> {
        let ttl = self.config.webhook_cache_ttl;
        let now = Instant::now();
        if !ttl.is_zero()
            && let Some(cached) = self.cache().get(&org)
            && now < cached.until
        {
            return Ok(cached.hooks.clone());
        }
        let hooks: Arc<[HookEntry]> = self
            .store
            .active_webhooks(org)?
            .into_iter()
            .map(HookEntry::from)
            .collect();
        if !ttl.is_zero() {
            let mut cache = self.cache();
            if cache.len() >= CACHE_SWEEP_AT {
                cache.retain(|_, c| c.until > now);
                if cache.len() >= CACHE_SWEEP_AT {
                    cache.clear();
                }
            }
            cache.insert(
                org,
                CachedHooks {
                    until: now + ttl,
                    hooks: hooks.clone(),
                },
            );
        }
        Ok(hooks)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Id, CachedHooks>> {
        self.hooks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn invalidate(&self, org: Id) {
        self.cache().remove(&org);
    }

    fn count_attempt(&self, result: &AttemptResult) {
        let label = if result.success {
            Counters::add(&self.counters.succeeded, 1);
            "success"
        } else {
            Counters::add(&self.counters.failed, 1);
            if result.refused { "refused" } else { "failure" }
        };
        metrics::attempt(label, result.latency);
    }

    /// Writes the attempt to the webhook's delivery log (which moves `consecutiveFails`).
    async fn record(
        &self,
        org: Id,
        webhook: Id,
        event: &str,
        body: &Bytes,
        attempt: u32,
        result: &AttemptResult,
    ) -> Result<WebhookDelivery, StoreError> {
        // Without an answer the log's responseBody says why the attempt failed.
        let response_body = match (&result.response_body, &result.error) {
            (Some(body), _) => Some(body.clone()),
            (None, Some(error)) if result.http_status.is_none() => Some(format!("error: {error}")),
            _ => None,
        };
        self.store
            .record_webhook_delivery(WebhookDelivery {
                organization_id: org,
                webhook_id: webhook,
                event_type: event.to_owned(),
                payload: serde_json::from_slice(body).unwrap_or_default(),
                http_status: result.http_status,
                response_body,
                latency_ms: Some(u32::try_from(result.latency.as_millis()).unwrap_or(u32::MAX)),
                attempt,
                success: result.success,
                ..WebhookDelivery::default()
            })
            .await
    }

    /// Deactivates the webhook once it has failed `disable_after_failures` times in a row.
    /// Returns whether it is inactive (or gone) now, so its retries stop.
    async fn disable_if_failing(&self, org: Id, webhook: Id) -> bool {
        let threshold = self.config.disable_after_failures;
        let hook = match self.store.webhook(org, webhook) {
            Ok(hook) => hook,
            Err(StoreError::NotFound { .. }) => return true,
            Err(e) => {
                tracing::warn!(org, webhook, error = %e, "cannot read webhook after a failure");
                return false;
            }
        };
        if !hook.is_active {
            return true;
        }
        if threshold == 0 || hook.consecutive_fails < threshold {
            return false;
        }
        // Two failing attempts may both get here: only the one that flips it reports it.
        let flipped = Arc::new(AtomicBool::new(false));
        let flag = flipped.clone();
        let result = self
            .store
            .update_webhook(org, webhook, move |w| {
                if w.is_active {
                    w.is_active = false;
                    flag.store(true, Atomic::Relaxed);
                }
                Ok(())
            })
            .await;
        match result {
            Ok(_) => {
                self.invalidate(org);
                if flipped.load(Atomic::Relaxed) {
                    Counters::add(&self.counters.disabled, 1);
                    metrics::disabled();
                    tracing::warn!(
                        org,
                        webhook,
                        consecutive_fails = hook.consecutive_fails,
                        "webhook disabled after failing in a row"
                    );
                }
                true
            }
            Err(StoreError::NotFound { .. }) => true,
            Err(e) => {
                tracing::error!(org, webhook, error = %e, "cannot disable failing webhook");
                false
            }
        }
    }
}

/// Where one delivery goes.
#[derive(Debug)]
enum JobTarget {
    Webhook {
        id: Id,
        url: String,
        secret: Option<Secret>,
    },
    Callback {
        url: String,
        secret: Option<Secret>,
    },
}

/// One delivery (one event to one target), across its attempts.
#[derive(Debug)]
struct Job {
    org: Id,
    target: JobTarget,
    event: &'static str,
    delivery_id: Arc<str>,
    body: Bytes,
    /// The attempt about to be made, from 1.
    attempt: u32,
}

/// Makes one attempt; returns the job for its next attempt when it should be retried.
async fn run_job(shared: Arc<Shared>, mut job: Job) -> Option<Job> {
    let (url, secret, webhook) = match &job.target {
        JobTarget::Webhook { id, url, secret } => (url, secret.as_ref(), Some(*id)),
        JobTarget::Callback { url, secret } => (url, secret.as_ref(), None),
    };
    let result = match Url::parse(url) {
        Ok(url) => {
            deliver::attempt(
                &shared.client,
                shared.config.allow_private_targets,
                Request {
                    url: &url,
                    secret,
                    event: job.event,
                    delivery_id: &job.delivery_id,
                    body: &job.body,
                },
            )
            .await
        }
        Err(e) => AttemptResult {
            http_status: None,
            success: false,
            latency: Duration::ZERO,
            response_body: None,
            error: Some(format!("invalid URL: {e}")),
            refused: true,
        },
    };
    shared.count_attempt(&result);
    let mut retry = !result.success;
    if let Some(id) = webhook {
        match shared
            .record(job.org, id, job.event, &job.body, job.attempt, &result)
            .await
        {
            Ok(_) => {}
            // Deleted meanwhile: nothing left to deliver to.
            Err(StoreError::NotFound { .. }) => retry = false,
            Err(e) => {
                tracing::error!(org = job.org, webhook = id, error = %e, "webhook delivery not logged");
            }
        }
        if !result.success && shared.disable_if_failing(job.org, id).await {
            retry = false;
        }
    }
    if result.success {
        tracing::debug!(
            org = job.org,
            webhook,
            event = job.event,
            delivery = %job.delivery_id,
            attempt = job.attempt,
            "webhook delivered"
        );
        return None;
    }
    let last = job.attempt >= shared.config.max_attempts;
    tracing::info!(
        org = job.org,
        webhook,
        callback = webhook.is_none(),
        event = job.event,
        delivery = %job.delivery_id,
        attempt = job.attempt,
        status = result.http_status,
        error = result.error.as_deref().unwrap_or(""),
        "webhook attempt failed{}",
        if retry && !last { "; will retry" } else { "" }
    );
    if retry && !last {
        job.attempt += 1;
        Some(job)
    } else {
        if retry {
            Counters::add(&shared.counters.exhausted, 1);
        }
        None
    }
}

/// A retry waiting for its time; the heap pops the earliest first.
#[derive(Debug)]
struct Pending {
    due: Instant,
    seq: u64,
    job: Job,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

struct Runner {
    shared: Arc<Shared>,
    events: broadcast::Receiver<EngineEvent>,
    events_open: bool,
    commands: mpsc::Receiver<Command>,
    tasks: JoinSet<Option<Job>>,
    retries: BinaryHeap<Pending>,
    seq: u64,
}

impl Runner {
    async fn run(mut self) {
        let reply = self.serve().await;
        // Everything (the event receiver included) is let go before shutdown returns.
        drop(self);
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
    }

    /// Runs until shutdown (its reply returned) or until every handle is gone (`None`).
    async fn serve(&mut self) -> Option<oneshot::Sender<()>> {
        loop {
            let next_due = self.retries.peek().map(|p| p.due);
            tokio::select! {
                biased;
                command = self.commands.recv() => {
                    self.drain().await;
                    return command.map(|Command::Shutdown(reply)| reply);
                }
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    self.finished(joined);
                }
                () = sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                    self.run_due().await;
                }
                event = self.events.recv(), if self.events_open => self.on_event(event).await,
            }
        }
    }

    fn publish_gauges(&self) {
        let c = &self.shared.counters;
        c.in_flight.store(self.tasks.len() as u64, Atomic::Relaxed);
        c.pending_retries
            .store(self.retries.len() as u64, Atomic::Relaxed);
        metrics::pending(self.retries.len());
    }

    async fn on_event(&mut self, event: Result<EngineEvent, RecvError>) {
        match event {
            Ok(event) => {
                Counters::add(&self.shared.counters.events, 1);
                self.fan_out(event).await;
            }
            Err(RecvError::Lagged(missed)) => {
                Counters::add(&self.shared.counters.events_lagged, missed);
                metrics::lagged(missed);
                tracing::warn!(missed, "webhook dispatcher fell behind: events missed");
            }
            Err(RecvError::Closed) => {
                tracing::info!("engine events closed; webhook retries continue");
                self.events_open = false;
            }
        }
    }

    async fn fan_out(&mut self, event: EngineEvent) {
        let (org, message_id, name, status, provider_id, error_code) = match event {
            EngineEvent::StatusChanged {
                org,
                message_id,
                status,
                provider_id,
                error_code,
            } => match event_name(status) {
                Some(name) => (org, message_id, name, status, provider_id, error_code),
                None => return,
            },
            EngineEvent::Inbound { org, message_id } => (
                org,
                message_id,
                MESSAGE_INBOUND,
                MessageStatus::Received,
                None,
                None,
            ),
            #[allow(unreachable_patterns)]
            _ => return,
        };
        let hooks = match self.shared.hooks(org) {
            Ok(hooks) => hooks,
            Err(e) => {
                tracing::error!(org, error = %e, "cannot read webhooks; event not delivered");
                return;
            }
        };
        let message = match self.shared.store.message(org, message_id) {
            Ok(message) => message,
            Err(StoreError::NotFound { .. }) => return,
            Err(e) => {
                tracing::error!(org, message = message_id, error = %e, "cannot read message for webhooks");
                return;
            }
        };
        let callback = match (&message.direction, &message.callback_url) {
            (Direction::Outbound, Some(url)) if !url.trim().is_empty() => {
                Some(url.trim().to_owned())
            }
            _ => None,
        };
        let subscribed = hooks.iter().filter(|h| subscribes(&h.events, name));
        if subscribed.clone().next().is_none() && callback.is_none() {
            return;
        }
        let payload = message_payload(
            &new_id("evt"),
            now_millis(),
            &StatusEvent {
                event: name,
                status,
                provider_id,
                error_code: error_code.as_deref(),
            },
            &message,
        );
        let body = Bytes::from(serde_json::to_vec(&payload).unwrap_or_default());
        let mut jobs: Vec<Job> = subscribed
            .map(|h| Job {
                org,
                target: JobTarget::Webhook {
                    id: h.id,
                    url: h.url.clone(),
                    secret: h.secret.clone(),
                },
                event: name,
                delivery_id: new_id("dlv").into(),
                body: body.clone(),
                attempt: 1,
            })
            .collect();
        if let Some(url) = callback {
            jobs.push(Job {
                org,
                target: JobTarget::Callback {
                    url,
                    // The oldest active webhook's secret signs callbacks (module docs).
                    secret: hooks.first().and_then(|h| h.secret.clone()),
                },
                event: name,
                delivery_id: new_id("dlv").into(),
                body,
                attempt: 1,
            });
        }
        for job in jobs {
            self.spawn(job).await;
        }
    }

    /// Starts an attempt, first waiting for a free slot (finishing attempts meanwhile).
    async fn spawn(&mut self, job: Job) {
        let max = self.shared.config.max_in_flight.max(1);
        while self.tasks.len() >= max {
            match self.tasks.join_next().await {
                Some(joined) => self.finished(joined),
                None => break,
            }
        }
        self.tasks.spawn(run_job(self.shared.clone(), job));
        self.publish_gauges();
    }

    fn finished(&mut self, joined: Result<Option<Job>, JoinError>) {
        match joined {
            Ok(Some(job)) => self.schedule_retry(job),
            Ok(None) => {}
            Err(e) if e.is_panic() => tracing::error!(error = %e, "webhook attempt panicked"),
            Err(_) => {}
        }
        self.publish_gauges();
    }

    fn schedule_retry(&mut self, job: Job) {
        let counters = &self.shared.counters;
        if self.retries.len() >= self.shared.config.max_pending_retries {
            Counters::add(&counters.retries_dropped, 1);
            metrics::retries_dropped(1);
            tracing::warn!(
                org = job.org,
                event = job.event,
                delivery = %job.delivery_id,
                "webhook retry dropped: too many pending retries"
            );
            return;
        }
        Counters::add(&counters.retries_scheduled, 1);
        let delay = self
            .shared
            .config
            .retry_delay(job.attempt.saturating_sub(1));
        self.seq += 1;
        self.retries.push(Pending {
            due: Instant::now() + delay,
            seq: self.seq,
            job,
        });
    }

    async fn run_due(&mut self) {
        let now = Instant::now();
        while let Some(first) = self.retries.peek()
            && first.due <= now
        {
            let Some(pending) = self.retries.pop() else {
                break;
            };
            if let Some(job) = self.refresh(pending.job) {
                self.spawn(job).await;
            }
        }
        self.publish_gauges();
    }

    /// A webhook retry uses the webhook as it is now; none if it was deactivated or deleted.
    fn refresh(&self, mut job: Job) -> Option<Job> {
        if let JobTarget::Webhook { id, url, secret } = &mut job.target {
            match self.shared.store.webhook(job.org, *id) {
                Ok(hook) if hook.is_active => {
                    *secret = secret_of(&hook);
                    *url = hook.url;
                }
                Ok(_) | Err(StoreError::NotFound { .. }) => return None,
                Err(e) => {
                    // Try with what we had: the store error is likely passing.
                    tracing::warn!(org = job.org, webhook = *id, error = %e, "cannot re-read webhook for a retry");
                }
            }
        }
        Some(job)
    }

    async fn drain(&mut self) {
        let dropped = self.retries.len() as u64;
        self.retries.clear();
        let deadline = Instant::now() + self.shared.config.shutdown_grace;
        let mut late = 0;
        while !self.tasks.is_empty() {
            match timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Ok(Some(_retry)))) => late += 1,
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        in_flight = self.tasks.len(),
                        "webhook attempts still running at the shutdown deadline: aborted"
                    );
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        let dropped = dropped + late;
        if dropped > 0 {
            Counters::add(&self.shared.counters.retries_dropped, dropped);
            metrics::retries_dropped(dropped);
            tracing::warn!(dropped, "webhook retries dropped at shutdown");
        }
        self.publish_gauges();
    }
}
