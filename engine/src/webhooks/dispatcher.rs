//! The dispatcher: a supervisor that keeps one consumer task per active webhook, and one per
//! organization for `callbackUrl` deliveries, each following the organization's outbox from
//! its durable cursor.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as Atomic};

use bytes::Bytes;
use reqwest::{Client, Url};
use sairex_store::model::{Direction, Id, Millis, Webhook, WebhookDelivery};
use sairex_store::{CALLBACKS, OutboxEntry, OutboxProgress, PendingDelivery, Store, StoreError};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant, sleep, timeout_at};
use tokio_util::sync::CancellationToken;

use super::deliver::{self, AttemptResult, Request, Secret};
use super::payload::{
    MESSAGE_INBOUND, StatusEvent, WEBHOOK_TEST, event_name, message_payload, new_id, now_millis,
    subscribes, test_payload,
};
use super::target::{TargetError, check_target_resolved};
use super::{DeliveryOutcome, WebhookConfig, WebhookError, WebhookStats, metrics};

/// Outbox entries a consumer reads per round.
const ROUND: usize = 256;

/// Starts the dispatcher (see the [module docs](super)).
#[derive(Debug)]
pub struct WebhookDispatcher;

impl WebhookDispatcher {
    /// Spawns the dispatcher on the current tokio runtime. It runs until
    /// [`WebhookHandle::shutdown`], or until every handle is dropped.
    ///
    /// # Errors
    /// [`WebhookError::Client`] when the HTTP client cannot be built (TLS roots).
    pub fn start(store: Store, config: WebhookConfig) -> Result<WebhookHandle, WebhookError> {
        let client = deliver::client(&config)?;
        let shared = Arc::new(Shared {
            store,
            client,
            slots: Semaphore::new(config.max_in_flight.max(1)),
            config,
            counters: Counters::default(),
        });
        let (commands, command_rx) = mpsc::channel(256);
        let supervisor = Supervisor {
            shared: shared.clone(),
            stop: CancellationToken::new(),
            consumers: HashMap::new(),
            tasks: JoinSet::new(),
        };
        tokio::spawn(supervisor.run(command_rx));
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
            .record(org, webhook_id, WEBHOOK_TEST, &payload, 1, &result)
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

    /// Looks at the organization's webhooks again now (a webhook created, changed, activated or
    /// deleted a moment ago), rather than at the next periodic look.
    pub fn invalidate(&self, org: Id) {
        // A full queue means a look is coming anyway.
        let _ = self.commands.try_send(Command::Refresh(org));
    }

    /// What the dispatcher did so far.
    pub fn stats(&self) -> WebhookStats {
        self.shared.counters.snapshot()
    }

    /// Stops the consumers, waits up to `shutdown_grace` for attempts in flight, then returns.
    /// Nothing pending is lost: cursors and retries are in the store, and a restarted
    /// dispatcher goes on from them. Later calls return at once.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = done.await;
        }
    }
}

#[derive(Debug)]
enum Command {
    Refresh(Id),
    Shutdown(oneshot::Sender<()>),
}

fn secret_of(hook: &Webhook) -> Option<Secret> {
    (!hook.secret.is_empty()).then(|| Secret(Arc::from(hook.secret.as_bytes())))
}

#[derive(Debug, Default)]
struct Counters {
    events: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    retries_scheduled: AtomicU64,
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
            succeeded: get(&self.succeeded),
            failed: get(&self.failed),
            retries_scheduled: get(&self.retries_scheduled),
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
    /// Attempts in flight across every consumer.
    slots: Semaphore,
    config: WebhookConfig,
    counters: Counters,
}

impl Shared {
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

    /// Writes one attempt to the webhook's delivery log (which moves `consecutiveFails`).
    async fn record(
        &self,
        org: Id,
        webhook: Id,
        event: &str,
        payload: &Value,
        attempt: u32,
        result: &AttemptResult,
    ) -> Result<WebhookDelivery, StoreError> {
        self.store
            .record_webhook_delivery(log_entry(org, webhook, event, payload, attempt, result))
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

/// A delivery log entry for one attempt (the payload as built, not parsed back from the body).
fn log_entry(
    org: Id,
    webhook: Id,
    event: &str,
    payload: &Value,
    attempt: u32,
    result: &AttemptResult,
) -> WebhookDelivery {
    // Without an answer the log's responseBody says why the attempt failed.
    let response_body = match (&result.response_body, &result.error) {
        (Some(body), _) => Some(body.clone()),
        (None, Some(error)) if result.http_status.is_none() => Some(format!("error: {error}")),
        _ => None,
    };
    WebhookDelivery {
        organization_id: org,
        webhook_id: webhook,
        event_type: event.to_owned(),
        payload: payload.clone(),
        http_status: result.http_status,
        response_body,
        latency_ms: Some(u32::try_from(result.latency.as_millis()).unwrap_or(u32::MAX)),
        attempt,
        success: result.success,
        ..WebhookDelivery::default()
    }
}

/// Keeps a consumer running for every active webhook and every organization's callbacks.
struct Supervisor {
    shared: Arc<Shared>,
    stop: CancellationToken,
    consumers: HashMap<(Id, Id), CancellationToken>,
    tasks: JoinSet<(Id, Id)>,
}

impl Supervisor {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let every = self
            .shared
            .config
            .webhook_cache_ttl
            .clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut look = tokio::time::interval(every);
        look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reply = loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Refresh(org)) => self.reconcile(org),
                    Some(Command::Shutdown(reply)) => break Some(reply),
                    None => break None,
                },
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    // A consumer that stopped (its webhook went, or the store failed) is
                    // started again at the next look if it is still wanted.
                    if let Ok(key) = joined {
                        self.consumers.remove(&key);
                    }
                }
                _ = look.tick() => self.reconcile_all(),
            }
        };
        self.stop.cancel();
        let deadline = Instant::now() + self.shared.config.shutdown_grace;
        while !self.tasks.is_empty() {
            match timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        consumers = self.tasks.len(),
                        "webhook attempts still running at the shutdown deadline: aborted \
                         (they are delivered again after the restart)"
                    );
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
    }

    fn reconcile_all(&mut self) {
        let orgs = match self.shared.store.all_organizations() {
            Ok(orgs) => orgs,
            Err(e) => {
                tracing::error!(error = %e, "cannot list organizations for webhooks");
                return;
            }
        };
        let mut seen = HashSet::new();
        for org in orgs {
            seen.insert(org.id);
            self.reconcile(org.id);
        }
        let gone: Vec<Id> = self
            .consumers
            .keys()
            .map(|(org, _)| *org)
            .filter(|org| !seen.contains(org))
            .collect();
        for org in gone {
            self.reconcile(org);
        }
    }

    /// Starts the consumers the organization needs and stops the ones it no longer does.
    fn reconcile(&mut self, org: Id) {
        let hooks = match self.shared.store.active_webhooks(org) {
            Ok(hooks) => hooks,
            Err(e) => {
                tracing::error!(org, error = %e, "cannot read webhooks");
                return;
            }
        };
        let exists = self.shared.store.organization(org).is_ok();
        let mut wanted: HashSet<Id> = hooks.iter().map(|h| h.id).collect();
        if exists {
            wanted.insert(CALLBACKS);
        }
        let stale: Vec<(Id, Id)> = self
            .consumers
            .keys()
            .filter(|(o, c)| *o == org && !wanted.contains(c))
            .copied()
            .collect();
        for key in stale {
            if let Some(cancel) = self.consumers.remove(&key) {
                cancel.cancel();
            }
        }
        for consumer in wanted {
            if self.consumers.contains_key(&(org, consumer)) {
                continue;
            }
            let cancel = self.stop.child_token();
            self.consumers.insert((org, consumer), cancel.clone());
            let worker = Consumer {
                shared: self.shared.clone(),
                org,
                id: consumer,
                cancel,
                cursor: 0,
                pending: BTreeMap::new(),
                backoff: 0,
                read_after: None,
            };
            self.tasks.spawn(async move {
                worker.run().await;
                (org, consumer)
            });
        }
    }
}

/// Where a consumer's deliveries go this round.
enum Target {
    Webhook {
        url: String,
        secret: Option<Secret>,
        events: Vec<String>,
    },
    /// Each message's own `callbackUrl`, signed with the organization's oldest active
    /// webhook's secret (none: unsigned).
    Callbacks { secret: Option<Secret> },
}

/// One event ready to send.
struct Item {
    seq: u64,
    message_id: Id,
    event: &'static str,
    url: String,
    body: Bytes,
    /// What `body` serializes, for the delivery log.
    payload: Value,
    /// Attempts made before this one.
    attempts: u32,
}

/// What became of an item this round.
enum Fate {
    Delivered(AttemptResult),
    Failed(AttemptResult),
    /// Not tried: an earlier attempt this round found the receiver failing.
    Untried,
    /// Not tried: an earlier event of its message did not get through.
    Behind,
}

/// One organization's deliveries to one webhook (or to its messages' callback URLs).
struct Consumer {
    shared: Arc<Shared>,
    org: Id,
    id: Id,
    cancel: CancellationToken,
    /// Every entry up to here is delivered, given up, or pending.
    cursor: u64,
    pending: BTreeMap<u64, PendingDelivery>,
    /// Rounds in a row whose every attempt failed: new entries wait `retry_delay(backoff)`.
    backoff: u32,
    /// New entries are not read before this (the receiver is failing).
    read_after: Option<Instant>,
}

/// The round's changes, written in one batch.
#[derive(Default)]
struct Round {
    cursor: Option<u64>,
    deliveries: Vec<WebhookDelivery>,
    pending: HashMap<u64, PendingDelivery>,
    settled: HashSet<u64>,
    successes: u64,
    failures: u64,
}

impl Round {
    fn is_empty(&self) -> bool {
        self.cursor.is_none()
            && self.deliveries.is_empty()
            && self.pending.is_empty()
            && self.settled.is_empty()
    }
}

fn is_receiver_failing(result: &AttemptResult) -> bool {
    // No answer, a server error or "slow down": the receiver, not this event, is the problem.
    result
        .http_status
        .is_none_or(|s| s >= 500 || s == 429 || s == 408)
}

fn millis_from_now(delay: Duration) -> Millis {
    now_millis().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
}

impl Consumer {
    async fn run(mut self) {
        let store = self.shared.store.clone();
        // A webhook's ids and outbox positions share one counter: a new webhook starts with
        // the first change after its creation. Callbacks start at the beginning.
        let start = match store.outbox_cursor(self.org, self.id) {
            Ok(cursor) => cursor.unwrap_or(self.id),
            Err(e) => {
                tracing::error!(org = self.org, consumer = self.id, error = %e, "cannot read a webhook cursor");
                return;
            }
        };
        self.cursor = start;
        match store.outbox_pending(self.org, self.id) {
            Ok(pending) => {
                for p in pending {
                    self.pending.insert(p.seq, p);
                }
                self.gauge(i64::try_from(self.pending.len()).unwrap_or(i64::MAX));
            }
            Err(e) => {
                tracing::error!(org = self.org, consumer = self.id, error = %e, "cannot read pending webhook deliveries");
                return;
            }
        }
        let mut watch = store.outbox_watch();
        let mut more = true;
        loop {
            if self.cancel.is_cancelled() {
                break;
            }
            watch.borrow_and_update();
            let now = now_millis();
            let due = self
                .pending
                .values()
                .any(|p| p.due_at.is_some_and(|at| at <= now));
            let can_read = self.pending.len() < self.shared.config.max_pending_retries.max(1)
                && self.read_after.is_none_or(|at| Instant::now() >= at);
            let news = more
                || store
                    .outbox_org_head(self.org)
                    .is_some_and(|head| head > self.cursor);
            // Every durable group of any organization wakes every consumer: read the webhook
            // (and unseal its secret) only when this one has something to send.
            let mut round = Round::default();
            if due || (can_read && news) {
                let Some(target) = self.target() else {
                    break;
                };
                self.run_due(&target, &mut round).await;
                if can_read && news {
                    match store.outbox_after(self.org, self.cursor, ROUND) {
                        Ok(entries) => {
                            more = entries.len() == ROUND;
                            round.cursor = entries.last().map(|e| e.seq);
                            self.deliver_new(&target, entries, &mut round).await;
                        }
                        Err(e) => {
                            tracing::error!(org = self.org, consumer = self.id, error = %e, "cannot read the outbox");
                            break;
                        }
                    }
                }
            }
            if !self.write(round).await {
                break;
            }
            if more && can_read {
                continue;
            }
            let wake = self.next_wake();
            tokio::select! {
                () = self.cancel.cancelled() => break,
                changed = watch.changed() => if changed.is_err() { break },
                () = sleep(wake.unwrap_or(Duration::ZERO)), if wake.is_some() => {}
            }
        }
        self.gauge(-i64::try_from(self.pending.len()).unwrap_or(i64::MAX));
    }

    fn gauge(&self, delta: i64) {
        let counter = &self.shared.counters.pending_retries;
        if delta >= 0 {
            counter.fetch_add(delta.unsigned_abs(), Atomic::Relaxed);
        } else {
            counter.fetch_sub(delta.unsigned_abs(), Atomic::Relaxed);
        }
        metrics::pending(usize::try_from(counter.load(Atomic::Relaxed)).unwrap_or(usize::MAX));
    }

    /// How long until a pending entry is due or new entries may be read again.
    fn next_wake(&self) -> Option<Duration> {
        let now = now_millis();
        let due = self
            .pending
            .values()
            .filter_map(|p| p.due_at)
            .min()
            .map(|at| Duration::from_millis(at.saturating_sub(now)));
        let read = self
            .read_after
            .map(|at| at.saturating_duration_since(Instant::now()));
        match (due, read) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The webhook as it is now (its URL, secret or events may have changed); `None` when it
    /// is gone or inactive, which ends this consumer.
    fn target(&self) -> Option<Target> {
        let store = &self.shared.store;
        if self.id == CALLBACKS {
            let secret = match store.active_webhooks(self.org) {
                Ok(hooks) => hooks.first().and_then(secret_of),
                Err(e) => {
                    tracing::warn!(org = self.org, error = %e, "cannot read webhooks to sign callbacks");
                    None
                }
            };
            return Some(Target::Callbacks { secret });
        }
        match store.webhook(self.org, self.id) {
            Ok(hook) if hook.is_active => Some(Target::Webhook {
                secret: secret_of(&hook),
                url: hook.url,
                events: hook.events,
            }),
            Ok(_) | Err(StoreError::NotFound { .. }) => None,
            Err(e) => {
                tracing::error!(org = self.org, webhook = self.id, error = %e, "cannot read webhook");
                None
            }
        }
    }

    /// The delivery of `entry` to this consumer, if it wants it.
    fn item(&self, target: &Target, entry: &OutboxEntry, attempts: u32) -> Option<Item> {
        let m = &entry.message;
        let event = if entry.is_inbound() {
            MESSAGE_INBOUND
        } else {
            event_name(m.status)?
        };
        let url = match target {
            Target::Webhook { url, events, .. } => {
                if !subscribes(events, event) {
                    return None;
                }
                url.clone()
            }
            Target::Callbacks { .. } => match (&m.direction, &m.callback_url) {
                (Direction::Outbound, Some(url)) if !url.trim().is_empty() => url.trim().to_owned(),
                _ => return None,
            },
        };
        let payload = message_payload(
            &format!("evt_{}", entry.seq),
            entry.occurred_at,
            &StatusEvent {
                event,
                status: m.status,
                provider_id: m.provider_id,
                error_code: m.error_code.as_deref(),
            },
            m,
        );
        Some(Item {
            seq: entry.seq,
            message_id: m.id,
            event,
            url,
            body: Bytes::from(serde_json::to_vec(&payload).unwrap_or_default()),
            payload,
            attempts,
        })
    }

    fn blocked(&self, message: Id) -> bool {
        self.pending.values().any(|p| p.message_id == message)
    }

    fn pend(&mut self, round: &mut Round, pending: PendingDelivery) {
        round.settled.remove(&pending.seq);
        round.pending.insert(pending.seq, pending.clone());
        if self.pending.insert(pending.seq, pending).is_none() {
            self.gauge(1);
        }
    }

    fn settle(&mut self, round: &mut Round, seq: u64) {
        round.pending.remove(&seq);
        if self.pending.remove(&seq).is_some() {
            round.settled.insert(seq);
            self.gauge(-1);
        }
    }

    /// The next entry of `message` waiting behind a settled one becomes due now.
    fn release_next(&mut self, round: &mut Round, message: Id) {
        let next = self
            .pending
            .values()
            .find(|p| p.message_id == message)
            .cloned();
        if let Some(mut next) = next
            && next.due_at.is_none()
        {
            next.due_at = Some(now_millis());
            self.pend(round, next);
        }
    }

    /// Retries whose time has come.
    async fn run_due(&mut self, target: &Target, round: &mut Round) {
        let now = now_millis();
        let due: Vec<PendingDelivery> = self
            .pending
            .values()
            .filter(|p| p.due_at.is_some_and(|at| at <= now))
            .cloned()
            .collect();
        if due.is_empty() {
            return;
        }
        let mut chains = Vec::new();
        for p in due {
            match self.shared.store.outbox_entry(self.org, p.seq) {
                Ok(Some(entry)) => match self.item(target, &entry, p.attempts) {
                    Some(item) => chains.push(vec![item]),
                    // No longer subscribed to: nothing to deliver.
                    None => {
                        self.settle(round, p.seq);
                        self.release_next(round, p.message_id);
                    }
                },
                Ok(None) => {
                    tracing::warn!(
                        org = self.org,
                        consumer = self.id,
                        seq = p.seq,
                        "pending webhook event trimmed from the outbox before delivery"
                    );
                    self.settle(round, p.seq);
                    self.release_next(round, p.message_id);
                }
                Err(e) => {
                    tracing::error!(org = self.org, consumer = self.id, error = %e, "cannot read a pending event");
                }
            }
        }
        let results = self.attempt(target, chains).await;
        let before = round.successes;
        self.settle_all(round, results);
        if round.successes > before && self.backoff > 0 {
            self.recovered(round);
        }
    }

    async fn deliver_new(&mut self, target: &Target, entries: Vec<OutboxEntry>, round: &mut Round) {
        Counters::add(&self.shared.counters.events, entries.len() as u64);
        let mut chains: Vec<Vec<Item>> = Vec::new();
        let mut chain_of: HashMap<Id, usize> = HashMap::new();
        for entry in &entries {
            let Some(item) = self.item(target, entry, 0) else {
                continue;
            };
            if self.blocked(item.message_id) {
                // An earlier event of this message is retrying: this one waits behind it.
                self.pend(
                    round,
                    PendingDelivery {
                        seq: item.seq,
                        message_id: item.message_id,
                        attempts: 0,
                        due_at: None,
                    },
                );
                continue;
            }
            let index = *chain_of.entry(item.message_id).or_insert_with(|| {
                chains.push(Vec::new());
                chains.len() - 1
            });
            chains[index].push(item);
        }
        if chains.is_empty() {
            return;
        }
        let (successes, failures) = (round.successes, round.failures);
        let results = self.attempt(target, chains).await;
        self.settle_all(round, results);
        let (successes, failures) = (round.successes - successes, round.failures - failures);
        if successes == 0 && failures > 0 {
            // Every attempt failed: the receiver is down or refusing. New entries wait (they
            // stay in the outbox), so its backlog is delivered when it is back.
            self.backoff = self.backoff.saturating_add(1);
            let delay = self.shared.config.retry_delay(self.backoff);
            self.read_after = Some(Instant::now() + delay);
        } else if successes > 0 && self.backoff > 0 {
            self.recovered(round);
        }
    }

    /// The receiver answers again: what was waiting for it is due now.
    fn recovered(&mut self, round: &mut Round) {
        self.backoff = 0;
        self.read_after = None;
        let now = now_millis();
        let waiting: Vec<PendingDelivery> = self
            .pending
            .values()
            .filter(|p| p.due_at.is_some_and(|at| at > now))
            .cloned()
            .collect();
        for mut p in waiting {
            p.due_at = Some(now);
            self.pend(round, p);
        }
    }

    fn settle_all(&mut self, round: &mut Round, results: Vec<(Item, Fate)>) {
        let shared = self.shared.clone();
        let config = &shared.config;
        let max_attempts = config.max_attempts.max(1);
        let first_retry = millis_from_now(config.retry_delay(self.backoff.max(1)));
        for (item, fate) in results {
            match fate {
                Fate::Delivered(result) => {
                    round.successes += 1;
                    self.log(round, &item, &result);
                    self.settle(round, item.seq);
                    self.release_next(round, item.message_id);
                }
                Fate::Failed(result) => {
                    round.failures += 1;
                    self.log(round, &item, &result);
                    let attempts = item.attempts.saturating_add(1);
                    if attempts >= max_attempts {
                        Counters::add(&self.shared.counters.exhausted, 1);
                        tracing::warn!(
                            org = self.org,
                            consumer = self.id,
                            seq = item.seq,
                            event = item.event,
                            attempts,
                            "webhook event given up after its last attempt"
                        );
                        self.settle(round, item.seq);
                        self.release_next(round, item.message_id);
                    } else {
                        Counters::add(&self.shared.counters.retries_scheduled, 1);
                        let due = millis_from_now(config.retry_delay(attempts));
                        self.pend(
                            round,
                            PendingDelivery {
                                seq: item.seq,
                                message_id: item.message_id,
                                attempts,
                                due_at: Some(due),
                            },
                        );
                    }
                }
                Fate::Untried => self.pend(
                    round,
                    PendingDelivery {
                        seq: item.seq,
                        message_id: item.message_id,
                        attempts: item.attempts,
                        due_at: Some(first_retry),
                    },
                ),
                Fate::Behind => self.pend(
                    round,
                    PendingDelivery {
                        seq: item.seq,
                        message_id: item.message_id,
                        attempts: item.attempts,
                        due_at: None,
                    },
                ),
            }
        }
    }

    /// A webhook's attempt goes to its delivery log (callbacks have none).
    fn log(&self, round: &mut Round, item: &Item, result: &AttemptResult) {
        if self.id == CALLBACKS {
            return;
        }
        round.deliveries.push(log_entry(
            self.org,
            self.id,
            item.event,
            &item.payload,
            item.attempts.saturating_add(1),
            result,
        ));
    }

    /// Sends the chains at once (each chain in order: one message's events), as many attempts
    /// in flight as the dispatcher allows. A chain stops at its first failure; the rest of it
    /// waits behind. Once an attempt finds the receiver failing, attempts not yet started are
    /// not made this round.
    async fn attempt(&self, target: &Target, chains: Vec<Vec<Item>>) -> Vec<(Item, Fate)> {
        let secret = match target {
            Target::Webhook { secret, .. } | Target::Callbacks { secret } => secret.clone(),
        };
        let tripped = Arc::new(AtomicBool::new(false));
        let mut set = JoinSet::new();
        for chain in chains {
            let shared = self.shared.clone();
            let secret = secret.clone();
            let tripped = tripped.clone();
            let consumer = self.id;
            set.spawn(async move {
                let mut out = Vec::with_capacity(chain.len());
                let mut items = chain.into_iter();
                for item in items.by_ref() {
                    if tripped.load(Atomic::Relaxed) {
                        out.push((item, Fate::Untried));
                        break;
                    }
                    let result = send(&shared, consumer, secret.as_ref(), &item).await;
                    if result.success {
                        out.push((item, Fate::Delivered(result)));
                    } else {
                        if is_receiver_failing(&result) {
                            tripped.store(true, Atomic::Relaxed);
                        }
                        out.push((item, Fate::Failed(result)));
                        break;
                    }
                }
                out.extend(items.map(|item| (item, Fate::Behind)));
                out
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(out) => results.extend(out),
                Err(e) => tracing::error!(error = %e, "webhook attempt task failed"),
            }
        }
        // Settled in outbox order, so a message's events are released in order.
        results.sort_by_key(|(item, _)| item.seq);
        results
    }

    /// Writes the round; false when this consumer must stop (its webhook is gone, disabled, or
    /// the store failed: it is started again from what is durable).
    async fn write(&mut self, round: Round) -> bool {
        if round.is_empty() {
            return true;
        }
        let failed = round.failures > 0;
        let cursor = round.cursor;
        let progress = OutboxProgress {
            organization_id: self.org,
            consumer: self.id,
            cursor,
            deliveries: round.deliveries,
            pending: round.pending.into_values().collect(),
            settled: round.settled.into_iter().collect(),
        };
        match self.shared.store.record_outbox_progress(progress).await {
            Ok(fails) => {
                if let Some(cursor) = cursor {
                    self.cursor = cursor;
                }
                let threshold = self.shared.config.disable_after_failures;
                if failed && threshold > 0 && fails >= threshold {
                    return !self.shared.disable_if_failing(self.org, self.id).await;
                }
                true
            }
            Err(StoreError::NotFound { .. }) => false,
            Err(e) => {
                tracing::error!(org = self.org, consumer = self.id, error = %e, "cannot record webhook progress; the consumer restarts from what is durable");
                false
            }
        }
    }
}

/// One attempt, in a slot of the dispatcher's limit.
async fn send(
    shared: &Shared,
    consumer: Id,
    secret: Option<&Secret>,
    item: &Item,
) -> AttemptResult {
    let Ok(_slot) = shared.slots.acquire().await else {
        return AttemptResult {
            http_status: None,
            success: false,
            latency: Duration::ZERO,
            response_body: None,
            error: Some("the dispatcher is stopping".into()),
            refused: false,
        };
    };
    shared.counters.in_flight.fetch_add(1, Atomic::Relaxed);
    let delivery_id = format!("dlv_{consumer}_{}", item.seq);
    let result = match Url::parse(&item.url) {
        Ok(url) => {
            deliver::attempt(
                &shared.client,
                shared.config.allow_private_targets,
                Request {
                    url: &url,
                    secret,
                    event: item.event,
                    delivery_id: &delivery_id,
                    body: &item.body,
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
    shared.counters.in_flight.fetch_sub(1, Atomic::Relaxed);
    shared.count_attempt(&result);
    if !result.success {
        tracing::info!(
            consumer,
            event = item.event,
            delivery = %delivery_id,
            attempt = item.attempts + 1,
            status = result.http_status,
            error = result.error.as_deref().unwrap_or(""),
            "webhook attempt failed"
        );
    }
    result
}
