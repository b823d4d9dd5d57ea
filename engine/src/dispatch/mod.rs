//! The dispatcher: moves ready messages from the store to providers by credit, applies their
//! answers, correlates delivery receipts and stores inbound messages. For now it is one task
//! that plays the OrgRouter, Scheduler and DlrProcessor of `docs/architecture.md`.
//!
//! # Sending
//! Providers announce credit ([`ProviderEvent::Credit`]); the dispatcher leases only what that
//! credit allows, round-robin over the organizations with ready messages, each getting at most
//! an equal share of the credit and at most [`DispatcherConfig::batch_per_org`] per turn (the
//! store orders each organization's messages by priority). So a bulk campaign of one
//! organization never holds back another's OTP for more than one turn, and leased messages
//! almost never have to be put back. Each message goes to the first provider of its
//! organization's chain (own and shared providers, by priority, DOWN ones left out) that has
//! credit; the choice and its reason are written with the outcome's event (SUBMITTED,
//! PROVIDER_ERROR) in the message's timeline. A provider is never handed more than its credit.
//!
//! Rate limits ([`RateLimits`], blueprint §4.4 layers 2 and 4) cap what is leased: the global
//! token bucket bounds the messages handed to all providers together per second, and each
//! organization's per-minute and per-day limits bound its own. They count messages leased, not
//! segments. A message is never failed for lack of a token: an organization over its limit is
//! simply not leased for (its messages stay queued) while others go on, and the dispatcher looks
//! again every [`DispatcherConfig::poll_interval`] while providers have credit.
//!
//! Before sending, an expired message becomes EXPIRED and a message to an opted-out contact
//! REJECTED.
//!
//! # Outcomes ([`ProviderEvent::Done`])
//! - Accepted: SUBMITTED with the provider's ids; receipts held for those ids are applied.
//! - Throttled: back to the ready queue, no retry counted.
//! - Temporary: a PROVIDER_ERROR event, then the next provider of the chain not tried in this
//!   attempt (waiting up to [`DispatcherConfig::failover_wait`] for its credit); with none left,
//!   a retry after `30 s × 4^n` (`crate::retry`), or FAILED when retries are used up.
//! - Rejected: REJECTED; Failed: FAILED; both with the provider's error code.
//! - In doubt: an IN_DOUBT event and, by the provider's [`InDoubtPolicy`], a retry (counted; the message may
//!   reach the handset twice) or FAILED.
//! - Not sent: another provider, or back to the ready queue.
//!
//! # Multipart messages accepted in pieces
//! An SMPP provider sends each part of a long text as a submit of its own, so some parts can
//! be accepted and others throttled, refused, unanswered or not sent. As Kannel retries each
//! part of a split message on its own, only the missing parts are ever sent again:
//! - The accepted parts are recorded first (PARTS_ACCEPTED: which parts, their ids, the
//!   provider, the concatenation reference, how the provider split the text), and their ids
//!   indexed, so their receipts find the message. Then the outcome is applied as above; the
//!   next event says which parts are resent alone ("part 1 of 3 accepted …; parts 2 and 3
//!   throttled", then "… parts 2 and 3 resent alone"). Receipts held for the recorded ids are
//!   applied at once. Recorded even when the message ends there (REJECTED, FAILED), for those
//!   receipts.
//! - The resend ([`Outbound::resume`](crate::provider::Outbound::resume)) carries the reference
//!   and the accepted parts: the provider splits the text the same way, keeps the reference
//!   and part count, and sends only the rest, so the handset can join the parts of all
//!   attempts. Its `Accepted` gives every id in part order.
//! - Where the rest goes: the provider that took the first parts is asked first when the
//!   message is leased again (after a throttle, a retry, a restart), because the reference,
//!   and often the originator the handset joins parts by, belong to that SMSC; it is waited
//!   for up to [`DispatcherConfig::failover_wait`]. After that, and on a temporary refusal or
//!   a not-sent answer, the rest fails over as usual, but only to providers whose
//!   [`part_layout`](crate::provider::ProviderLink::part_layout) is the same (same
//!   concatenation, data_coding policy and packing, hence the same parts), with the same
//!   reference. A carrier that rewrites the originator may then keep the handset from joining
//!   the parts; that is still better than the whole text twice. With no such provider, the
//!   retry schedule, then FAILED: the whole text is never sent through a provider that splits
//!   on its side (an HTTP API), which would repeat the accepted parts.
//! - In doubt: the parts known accepted are never resent; the unknown ones follow the
//!   provider's in-doubt policy (resent alone, possibly twice, or FAILED).
//! - Receipts: a part's receipt is matched by the provider that accepted it; DELIVERED once
//!   every part's receipt said so, whichever attempt accepted it. A part's intermediate
//!   receipt while the rest is still queued changes nothing; a part's failure receipt makes
//!   the whole message FAILED, as for any multipart message.
//! - An HTTP provider that reports parts accepted and others not (Vonage answers per part)
//!   splits on its side and cannot send the rest alone: the message is sent again whole, as
//!   before, and the timeline says so.
//!
//! # Receipts
//! Found by (provider, id) under the id's spellings in decimal and hex, confirmed with
//! `ids_match`. SENT is intermediate; a final status applies once, so a duplicate changes
//! nothing. A message of several parts is DELIVERED once every part's receipt said so, FAILED
//! as soon as one part failed. A receipt for an unknown id is held (bounded, with a TTL; in the
//! store once answered, see `holds`) and applied when an ack records that id.
//!
//! # Receipt timeout
//! A message submitted asking for a receipt whose receipt (every part's) has not come by the
//! end of its validity plus [`DispatcherConfig::receipt_grace`] becomes EXPIRED with a
//! RECEIPT_TIMEOUT event, from a due-style store index walked every housekeeping tick (see
//! `receipt_timeout`). A receipt after that still records the real outcome.
//!
//! # Inbound
//! Stored as INBOUND for the provider's organization, or for a shared provider the one the
//! routing table names for the destination. Concatenated parts are reassembled (bounded; parts
//! that never complete are stored as they are, with a note); each part waits in the store, so a
//! restart between parts loses none (see `holds`). The sender's contact is linked;
//! a whole-message STOP, UNSUBSCRIBE, CANCEL, END or QUIT opts it out, START or UNSTOP back in.
//!
//! # Acknowledgements
//! Every [`ProviderEvent::Deliver`] carries a [`DeliverAck`](crate::provider::DeliverAck) that
//! is completed only after the store write: `Done` once the receipt is applied (or changed
//! nothing: a duplicate, a message that moved on) or the inbound message stored; `Retry` when
//! the store failed, so the carrier redelivers (`ESME_RX_T_APPN`); `Reject` when it can never be
//! used (no organization for an inbound message, an unreadable receipt: `ESME_RX_P_APPN`). A
//! part of a concatenated inbound message waiting for the others is answered once it is held
//! in the store, and so is a receipt held for an id not recorded yet once its short ack hold
//! is over: nothing answered OK is only in memory.
//!
//! # Events
//! Every status change (the dispatcher's, the API's, the campaign runner's) and every inbound
//! message writes an entry to the store's outbox in the batch of the change; webhooks and the
//! event stream read it from there. For in-process listeners the dispatcher also relays each
//! entry, once durable, as an [`EngineEvent`] on a broadcast channel
//! ([`DispatcherHandle::subscribe`]; see `relay`).
//!
//! # Shutdown and the at-least-once contract
//! [`DispatcherHandle::shutdown`] stops leasing and sending. The dispatcher then waits, up to
//! [`DispatcherConfig::shutdown_grace`], for the answers of messages already handed to
//! providers, applying them (and any receipts and inbound messages) as usual. Messages still
//! unanswered after that stay in flight in the store: on the next start the store's recovery
//! puts them back in the queue (RESUBMITTED_AFTER_RESTART). One of them may have reached the
//! carrier already and be sent again: delivery is at least once, never lost.

pub mod callbacks;
mod clock;
pub mod health;
mod holds;
mod inbound;
mod limits;
mod parts;
mod receipt_timeout;
mod receipts;
mod relay;
mod route;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use sairex_pdu::DeliverSm;
use sairex_pdu::receipt::{Receipt, ids_match, same_spelling};
use sairex_store::model::{Direction, Id, Message, MessageStatus, Millis, PartialSend};
use sairex_store::{PartsAccepted, ReceiptUpdate, Store, StoreError, Submitted, Transition};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::classify::{SubmitOutcome, receipt_status};
use crate::provider::{
    AcceptedParts, DeliverAck, DeliverStatus, InDoubtPolicy, LinkError, Outbound, ProviderEvent,
    SendOutcome,
};
use crate::retry::{Next, next_retry};

pub use clock::{Clock, SystemClock, TokioClock};
pub use health::{HealthChange, HealthRules};
pub use limits::{OrgLimits, RateLimits};
pub use route::ProviderEntry;

use health::HealthMonitor;
use inbound::{Keyword, PartsKey, Reassembly};
use limits::Limiter;
use parts::{part_count, part_of};
use receipts::{EarlyReceipts, Hold, Taken};
use route::{Choice, Providers};

/// The dispatcher's settings.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Most messages leased for one organization per turn.
    pub batch_per_org: usize,
    /// How often to look for new ready messages while there is credit (a
    /// [`DispatcherHandle::nudge`] looks at once).
    pub poll_interval: Duration,
    /// Most due messages promoted per store call.
    pub promote_batch: usize,
    /// How often provider configurations (priority, health, active) are re-read from the store.
    pub provider_refresh: Duration,
    /// How long a message refused by one provider waits for credit on the next one before it
    /// goes to the retry schedule instead.
    pub failover_wait: Duration,
    /// Most receipts held for ids not known yet.
    pub early_receipt_capacity: usize,
    /// How long such a receipt is held.
    pub early_receipt_ttl: Duration,
    /// How long such a receipt's deliver_sm stays unanswered, waiting for its id to be
    /// recorded, before it is answered ESME_RX_T_APPN (the SMSC delivers it again).
    pub early_receipt_ack_hold: Duration,
    /// Most concatenated inbound messages being reassembled.
    pub inbound_parts_capacity: usize,
    /// How long the parts of an inbound message wait for the rest.
    pub inbound_parts_ttl: Duration,
    /// For shared (system) providers: destination number or short code → organization.
    pub inbound_routes: HashMap<String, Id>,
    /// How long shutdown waits for answers of messages handed to providers.
    pub shutdown_grace: Duration,
    /// Capacity of the [`EngineEvent`] broadcast channel (slow subscribers lag, see
    /// [`broadcast`]).
    pub event_capacity: usize,
    /// Whether to ask providers for delivery receipts.
    pub request_receipts: bool,
    /// How long after the end of its validity a message SUBMITTED (or SENT) waits for its
    /// receipt before it becomes EXPIRED with a RECEIPT_TIMEOUT event.
    pub receipt_grace: Duration,
    /// The validity of a message that has none, for the receipt timeout.
    pub default_validity: Duration,
    /// The global TPS and per-organization limits (see [`RateLimits`]); none by default.
    pub limits: RateLimits,
    /// When a provider is DEGRADED or DOWN (see [`health`]).
    pub health: HealthRules,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            batch_per_org: 64,
            poll_interval: Duration::from_millis(100),
            promote_batch: 1_000,
            provider_refresh: Duration::from_secs(5),
            failover_wait: Duration::from_secs(30),
            early_receipt_capacity: 100_000,
            early_receipt_ttl: Duration::from_secs(600),
            early_receipt_ack_hold: Duration::from_secs(2),
            inbound_parts_capacity: 10_000,
            inbound_parts_ttl: Duration::from_secs(300),
            inbound_routes: HashMap::new(),
            shutdown_grace: Duration::from_secs(10),
            event_capacity: 4_096,
            request_receipts: true,
            receipt_grace: Duration::from_secs(3_600),
            default_validity: Duration::from_secs(48 * 3_600),
            limits: RateLimits::default(),
            health: HealthRules::default(),
        }
    }
}

/// What the dispatcher publishes for webhooks and the event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// A message's status changed.
    StatusChanged {
        /// The organization.
        org: Id,
        /// The message.
        message_id: Id,
        /// Its new status.
        status: MessageStatus,
        /// The provider involved, if any.
        provider_id: Option<Id>,
        /// The provider's or the gateway's error code, if any.
        error_code: Option<String>,
    },
    /// An inbound message was stored.
    Inbound {
        /// The organization.
        org: Id,
        /// The stored message.
        message_id: Id,
    },
}

/// Counts of what the dispatcher did, since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Messages handed to providers.
    pub sent: u64,
    /// Accepted by a provider (SUBMITTED).
    pub submitted: u64,
    /// Throttled answers (requeued without a retry).
    pub throttled: u64,
    /// Temporary refusals.
    pub provider_errors: u64,
    /// Sends to another provider after a refusal or a not-sent answer.
    pub failovers: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Put back in the ready queue without a retry.
    pub requeued: u64,
    /// FAILED by the dispatcher or a receipt.
    pub failed: u64,
    /// REJECTED by a provider or a receipt.
    pub rejected: u64,
    /// REJECTED before sending: the recipient opted out.
    pub rejected_opted_out: u64,
    /// EXPIRED before sending.
    pub expired: u64,
    /// In-doubt answers (possible duplicates when resubmitted).
    pub in_doubt: u64,
    /// Delivery receipts received.
    pub receipts: u64,
    /// Receipts that changed nothing (the status was already final).
    pub receipts_duplicate: u64,
    /// Receipts for an id not known yet, held.
    pub receipts_held: u64,
    /// Held receipts applied once their id was recorded.
    pub receipts_early_matched: u64,
    /// Held receipts dropped (capacity or TTL).
    pub receipts_dropped: u64,
    /// Receipts that could not be read or had an unknown state.
    pub receipts_unreadable: u64,
    /// Inbound messages stored.
    pub inbound: u64,
    /// Inbound messages no organization could be found for.
    pub inbound_unroutable: u64,
    /// Opt-outs by keyword.
    pub opt_outs: u64,
    /// Opt-ins by keyword.
    pub opt_ins: u64,
    /// Store operations that failed (the message stays where it was; recovery covers it).
    pub store_errors: u64,
    /// EXPIRED because no receipt came by the end of the validity plus the grace.
    pub receipt_timeouts: u64,
    /// Concatenated inbound messages given up waiting for a part (the reassembly's TTL or
    /// capacity) and stored with the parts that came.
    pub inbound_incomplete: u64,
}

/// What shutdown left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrainReport {
    /// Messages handed to providers whose answer did not come within the grace period: still
    /// in flight in the store, requeued by recovery on the next start.
    pub unanswered: usize,
}

/// A cheap, cloneable handle to a running dispatcher.
#[derive(Debug, Clone)]
pub struct DispatcherHandle {
    cancel: CancellationToken,
    nudge: Arc<Notify>,
    events: broadcast::Sender<EngineEvent>,
    counters: Arc<Mutex<Counters>>,
    control: mpsc::UnboundedSender<Control>,
}

/// Changes to the provider table while the dispatcher runs.
#[derive(Debug)]
enum Control {
    Add(Box<ProviderEntry>),
    Remove(Id),
    Lost(Id),
}

impl DispatcherHandle {
    /// Sends through this provider from now on (replacing one with the same id: its credit is
    /// void; answers still due from the old one are applied as they come).
    pub fn add_provider(&self, entry: ProviderEntry) {
        let _ = self.control.send(Control::Add(Box::new(entry)));
    }

    /// Stops sending through this provider. What it was handed is answered by the provider as
    /// it drains, and applied as usual.
    pub fn remove_provider(&self, provider: Id) {
        let _ = self.control.send(Control::Remove(provider));
    }

    /// The provider died without answering what it was handed: each such message is answered
    /// in doubt (it may have reached the carrier) and goes by the provider's in-doubt policy.
    /// The provider is removed; a restarted one is added again with [`Self::add_provider`].
    pub fn provider_lost(&self, provider: Id) {
        let _ = self.control.send(Control::Lost(provider));
    }

    /// Receives every [`EngineEvent`] relayed from the outbox from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// Tells the dispatcher new messages are ready (it also looks on its own every
    /// [`DispatcherConfig::poll_interval`]).
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }

    /// Starts the shutdown: no more leases; `run` returns after the drain.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// What the dispatcher did so far.
    pub fn counters(&self) -> Counters {
        *self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One message handed to (or about to be handed to) a provider.
#[derive(Debug)]
struct Attempt {
    org: Id,
    id: Id,
    retry_count: u32,
    max_retries: u32,
    from: String,
    to: String,
    body: String,
    /// Providers tried in this attempt.
    tried: Vec<Id>,
    /// The provider the sender asked for (`provider` of the send), tried first while it can
    /// take the message; the failover chain follows.
    requested: Option<Id>,
    /// The provider it was last handed to.
    provider: Id,
    /// Why that provider.
    route: String,
    /// Why the previous provider did not take it, when this is a failover.
    failover: Option<String>,
    /// When its failover began: it waits for credit on an untried provider until
    /// [`DispatcherConfig::failover_wait`] after this.
    waiting_since: Millis,
    /// The parts accepted before, when the message went out in pieces: only the others are
    /// sent, with the same reference, through a provider that splits the same way.
    partial: Option<PartialSend>,
    /// The end of its validity, if it has one (see [`receipt_timeout`]).
    expires_at: Option<Millis>,
}

/// What to do when no provider can take a message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnNone {
    /// Back to the ready queue (nothing went wrong with the message).
    Requeue,
    /// A provider refused it: wait for credit on an untried one, else the retry schedule.
    WaitThenRetry,
}

/// A receipt from a provider with its deliver_sm answer, not applied yet.
type PendingReceipt = (Id, Box<DeliverSm>, DeliverAck);

/// Where the first wave of a run puts the receipts that must wait for the run's acceptances:
/// unknown ids, and receipts of the messages being accepted.
struct Defer<'a> {
    to: &'a mut Vec<PendingReceipt>,
    accepting: &'a HashSet<(Id, Id)>,
}

/// Receipts to write together, one per message, and their answers to the SMSC.
#[derive(Default)]
struct Wave {
    work: Vec<(Id, Receipt, Box<Message>)>,
    acks: Vec<DeliverAck>,
}

/// What a receipt's lookup found.
#[derive(Debug)]
enum Lookup {
    /// Its message, and how the receipt spelled the id the provider gave it.
    Found(Receipt, Box<Message>, Spelling),
    /// No message has its id (yet).
    Unknown(Receipt),
    /// Nothing to apply: answer the deliver_sm with this.
    Answer(DeliverStatus),
}

/// How a provider's receipts spell the ids its submit_sm_resp gave, as learned from the
/// receipts matched so far. `ids_match` pairs one number in two bases (`000000c5` and
/// `00000197`), which is right for an SMSC that reports in another base and wrong for one that
/// repeats its own spelling: that one also issues both as two different messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spelling {
    /// The same spelling (up to padding and case): only such matches count from then on.
    Same,
    /// Another base.
    Respelled,
}

/// Most passes over the ready organizations in one turn before events are looked at again.
const MAX_PASSES: usize = 4;
/// Most provider events handled in one turn before the queue is looked at again.
const MAX_EVENTS_PER_TURN: usize = 256;
/// Most promotion calls in one turn.
const MAX_PROMOTIONS_PER_TURN: usize = 16;
/// How often receipts and inbound parts are swept and due times re-read.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

fn millis(d: Duration) -> Millis {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The dispatcher task. Build it with [`Dispatcher::new`], keep a [`Dispatcher::handle`],
/// then spawn [`Dispatcher::run`].
#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    providers: Providers,
    events: mpsc::Receiver<ProviderEvent>,
    events_closed: bool,
    config: DispatcherConfig,
    clock: Arc<dyn Clock>,
    handle: DispatcherHandle,
    inflight: HashMap<u64, Attempt>,
    pending: VecDeque<Attempt>,
    early: EarlyReceipts,
    /// Per provider, once learned (see [`Spelling`]).
    spellings: HashMap<Id, Spelling>,
    parts: Reassembly,
    limiter: Limiter,
    next_token: u64,
    rr_after: Id,
    due_at: Option<Millis>,
    /// Receipt timeouts before this time are handled (see [`receipt_timeout`]).
    receipt_floor: Millis,
    more_work: bool,
    draining: bool,
    last_refresh: Millis,
    last_housekeeping: Millis,
    metrics: crate::metrics::DispatchMetrics,
    health: HealthMonitor,
    control: mpsc::UnboundedReceiver<Control>,
    /// Where the relay of outbox entries to [`EngineEvent`]s starts: the changes made after the
    /// dispatcher was created.
    relay_from: u64,
}

impl Dispatcher {
    /// A dispatcher over `store`, sending through `providers`, hearing from them on `events`
    /// (the receiving end of the channel whose sender, [`crate::provider::ProviderEvents`],
    /// the providers hold).
    pub fn new(
        store: Store,
        providers: Vec<ProviderEntry>,
        events: mpsc::Receiver<ProviderEvent>,
        config: DispatcherConfig,
    ) -> Self {
        let (tx, _) = broadcast::channel(config.event_capacity.max(1));
        let relay_from = store.outbox_head();
        let (control_tx, control) = mpsc::unbounded_channel();
        let handle = DispatcherHandle {
            cancel: CancellationToken::new(),
            nudge: Arc::new(Notify::new()),
            events: tx,
            counters: Arc::new(Mutex::new(Counters::default())),
            control: control_tx,
        };
        let health = HealthMonitor::new(config.health);
        Self {
            store,
            providers: Providers::new(providers),
            events,
            events_closed: false,
            spellings: HashMap::new(),
            early: EarlyReceipts::new(
                config.early_receipt_capacity,
                millis(config.early_receipt_ttl),
                millis(config.early_receipt_ack_hold),
            ),
            parts: Reassembly::new(
                config.inbound_parts_capacity,
                millis(config.inbound_parts_ttl),
            ),
            limiter: Limiter::new(&config.limits),
            health,
            control,
            relay_from,
            config,
            clock: Arc::new(SystemClock),
            handle,
            inflight: HashMap::new(),
            pending: VecDeque::new(),
            next_token: 1,
            rr_after: 0,
            due_at: None,
            receipt_floor: 0,
            more_work: true,
            draining: false,
            last_refresh: 0,
            last_housekeeping: 0,
            metrics: crate::metrics::DispatchMetrics::default(),
        }
    }

    /// With another clock (tests use [`TokioClock`] under paused time).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A handle to subscribe, nudge, read counters and shut down.
    pub fn handle(&self) -> DispatcherHandle {
        self.handle.clone()
    }

    /// Runs until [`DispatcherHandle::shutdown`], then drains (see the module docs).
    pub async fn run(mut self) -> DrainReport {
        let now = self.clock.now_ms();
        self.last_refresh = now;
        self.last_housekeeping = now;
        let seeds: Vec<_> = self
            .providers
            .configs()
            .map(|c| (c.id, c.health_status))
            .collect();
        for (id, status) in seeds {
            self.health.seed(id, status, now);
        }
        self.due_at = self.next_due();
        self.load_holds().await;
        let cancel = self.handle.cancel.clone();
        let nudge = Arc::clone(&self.handle.nudge);
        let stop_relay = CancellationToken::new();
        let _relay_guard = stop_relay.clone().drop_guard();
        tokio::spawn(relay::run(
            self.store.clone(),
            self.handle.events.clone(),
            self.relay_from,
            stop_relay,
        ));
        let mut batch = Vec::with_capacity(MAX_EVENTS_PER_TURN);
        loop {
            let wait = self.wait();
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                event = self.events.recv(), if !self.events_closed => match event {
                    Some(event) => batch.push(event),
                    None => {
                        tracing::warn!("every provider is gone; the dispatcher only schedules now");
                        self.events_closed = true;
                    }
                },
                () = nudge.notified() => self.more_work = true,
                Some(control) = self.control.recv() => self.on_control(control).await,
                () = tokio::time::sleep(wait) => {}
            }
            while batch.len() < MAX_EVENTS_PER_TURN {
                match self.events.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            self.on_events(&mut batch).await;
            self.timers().await;
            self.dispatch().await;
        }
        self.drain().await
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self
            .handle
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner));
    }

    /// A transition that no longer applied (the message moved on: answered twice, already
    /// final): normal, nothing written.
    fn stale(what: &str, org: Id, id: Id) {
        tracing::debug!(org, message = id, "{what}: message moved on");
    }

    fn store_error(&self, what: &str, org: Id, id: Id, e: &StoreError) {
        self.count(|c| c.store_errors += 1);
        match e {
            StoreError::NotFound { .. } => {
                tracing::debug!(org, message = id, error = %e, "{what}: message moved on");
            }
            _ => tracing::error!(org, message = id, error = %e, "{what} failed"),
        }
    }

    /// A status change this dispatcher made, for the metrics (its event is in the outbox).
    fn status_metrics(&self, m: &Message) {
        self.metrics.status_changed(m);
    }

    fn next_due(&self) -> Option<Millis> {
        match self.store.next_due() {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "reading the next due time failed");
                None
            }
        }
    }

    /// How long to sleep before looking again.
    fn wait(&self) -> Duration {
        if self.more_work {
            return Duration::ZERO;
        }
        let now = self.clock.now_ms();
        let mut wait = HOUSEKEEPING;
        if let Some(due) = self.due_at {
            wait = wait.min(Duration::from_millis(due.saturating_sub(now)));
        }
        if self.providers.total_credit() > 0 || !self.pending.is_empty() {
            wait = wait.min(self.config.poll_interval);
        }
        wait
    }

    async fn timers(&mut self) {
        let now = self.clock.now_ms();
        if self.due_at.is_some_and(|due| due <= now) {
            self.promote(now).await;
        }
        if now.saturating_sub(self.last_housekeeping) >= millis(HOUSEKEEPING) {
            self.last_housekeeping = now;
            self.metrics.read_queue_depths(&self.store);
            let released = self.early.release_acks(now);
            if released.duplicates > 0 {
                self.count(|c| c.receipts_duplicate += released.duplicates as u64);
            }
            self.store_released(released.to_store).await;
            let swept = self.early.sweep(now);
            if swept.dropped > 0 {
                self.count(|c| c.receipts_dropped += swept.dropped as u64);
                self.release_holds(Vec::new(), swept.stored).await;
            }
            for partial in self.parts.sweep(now) {
                self.store_partial(partial).await;
            }
            self.expire_overdue_receipts(now).await;
            for change in self.health.tick(now) {
                self.apply_health(change).await;
            }
            // Scheduled messages enqueued since: the store does not tell us.
            self.due_at = self.next_due();
            if self.due_at.is_some_and(|due| due <= now) {
                self.promote(now).await;
            }
        }
        if now.saturating_sub(self.last_refresh) >= millis(self.config.provider_refresh) {
            self.last_refresh = now;
            self.refresh_providers();
        }
    }

    async fn promote(&mut self, now: Millis) {
        for _ in 0..MAX_PROMOTIONS_PER_TURN {
            match self.store.promote_due(now, self.config.promote_batch).await {
                Ok(orgs) if orgs.is_empty() => break,
                Ok(_) => self.more_work = true,
                Err(e) => {
                    tracing::error!(error = %e, "promoting due messages failed");
                    break;
                }
            }
        }
        self.due_at = self.next_due();
    }

    fn refresh_providers(&mut self) {
        let keys: Vec<(Id, Id)> = self
            .providers
            .configs()
            .map(|c| (c.organization_id, c.id))
            .collect();
        for (org, id) in keys {
            match self.store.provider(org, id) {
                Ok(config) => self.providers.set_config(config),
                Err(e) => tracing::warn!(provider = id, error = %e, "provider config not re-read"),
            }
        }
    }

    async fn on_control(&mut self, control: Control) {
        match control {
            Control::Add(entry) => {
                let id = entry.config.id;
                tracing::info!(provider = id, name = %entry.config.display_name, "provider added");
                self.health.forget(id);
                self.health
                    .seed(id, entry.config.health_status, self.clock.now_ms());
                if self.providers.insert(*entry)
                    && let Some(slot) = self.providers.by_id(id)
                {
                    slot.link.resync();
                }
            }
            Control::Remove(id) => {
                tracing::info!(provider = id, "provider removed");
                self.providers.remove(id);
                self.health.forget(id);
            }
            Control::Lost(id) => {
                let mut tokens: Vec<u64> = self
                    .inflight
                    .iter()
                    .filter(|(_, a)| a.provider == id)
                    .map(|(&token, _)| token)
                    .collect();
                tokens.sort_unstable();
                tracing::error!(provider = id, unanswered = tokens.len(), "provider lost");
                // Its in-doubt policy is read from the slot, so answer before removing it.
                for token in tokens {
                    let outcome = SendOutcome::InDoubt {
                        accepted: AcceptedParts::none(),
                    };
                    self.on_done(id, token, outcome).await;
                }
                self.providers.remove(id);
            }
        }
        self.more_work = true;
    }

    /// Records a health change: routing uses it at once, the store and the gauge keep it.
    async fn apply_health(&mut self, change: HealthChange) {
        let Some(slot) = self.providers.by_id(change.provider) else {
            return;
        };
        let org = slot.config.organization_id;
        tracing::info!(
            provider = change.provider,
            status = ?change.status,
            failures = change.failures,
            "provider health changed"
        );
        self.providers.set_health(change.provider, change.status);
        crate::metrics::provider_health(change.provider, change.status);
        let health = sairex_store::ProviderHealth {
            status: change.status,
            failure_count: change.failures,
            checked_at: self.clock.now_ms(),
        };
        if let Err(e) = self
            .store
            .record_provider_health(org, change.provider, health)
            .await
        {
            tracing::warn!(provider = change.provider, error = %e, "provider health not stored");
        }
    }

    async fn provider_failed(&mut self, provider: Id) {
        let now = self.clock.now_ms();
        if let Some(change) = self.health.failure(provider, now) {
            self.apply_health(change).await;
        }
    }

    /// Handles a burst of provider events in order, except that runs of consecutive
    /// acceptances and receipts are written to the store concurrently: each store write waits
    /// for a group commit, and awaiting them one by one made the dispatcher wait a commit per
    /// message (~600 messages/s). Within a run, acceptances are applied before receipts, so a
    /// receipt whose acceptance is in the same run finds its id.
    async fn on_events(&mut self, batch: &mut Vec<ProviderEvent>) {
        let mut acks = Vec::new();
        let mut receipts = Vec::new();
        for event in batch.drain(..) {
            match event {
                ProviderEvent::Done {
                    provider_id,
                    token,
                    outcome: SendOutcome::Accepted { provider_msg_ids },
                } => {
                    if let Some(attempt) = self.take_attempt(provider_id, token) {
                        acks.push((attempt, provider_msg_ids));
                    }
                }
                ProviderEvent::Deliver {
                    provider_id,
                    deliver,
                    ack,
                } if deliver.is_receipt() => receipts.push((provider_id, deliver, ack)),
                other => {
                    self.settle(&mut acks, &mut receipts).await;
                    self.on_event(other).await;
                }
            }
        }
        self.settle(&mut acks, &mut receipts).await;
    }

    async fn on_event(&mut self, event: ProviderEvent) {
        match event {
            ProviderEvent::Credit { provider_id, n } => {
                if self.providers.add_credit(provider_id, n) {
                    self.more_work = true;
                } else {
                    tracing::warn!(provider = provider_id, "credit from an unknown provider");
                }
            }
            ProviderEvent::Unavailable { provider_id } => self.providers.unavailable(provider_id),
            ProviderEvent::Done {
                provider_id,
                token,
                outcome,
            } => self.on_done(provider_id, token, outcome).await,
            ProviderEvent::Deliver {
                provider_id,
                deliver,
                ack,
            } => {
                if deliver.is_receipt() {
                    self.receipts_all(&mut vec![(provider_id, deliver, ack)])
                        .await;
                } else {
                    let status = self.on_inbound(provider_id, &deliver).await;
                    ack.complete(status);
                }
            }
        }
    }

    // ---- sending -------------------------------------------------------------------------

    async fn dispatch(&mut self) {
        self.more_work = false;
        if self.draining {
            return;
        }
        self.serve_pending().await;
        for pass in 0..MAX_PASSES {
            let total = self
                .providers
                .total_credit()
                .min(self.limiter.global_available());
            if total == 0 {
                return;
            }
            let now = self.clock.now_ms();
            let orgs = match self.store.ready_orgs() {
                Ok(orgs) => orgs,
                Err(e) => {
                    tracing::error!(error = %e, "listing ready organizations failed");
                    return;
                }
            };
            // Round-robin: start after the organization served last.
            let (after, upto): (Vec<Id>, Vec<Id>) =
                orgs.into_iter().partition(|&org| org > self.rr_after);
            let mut turn: Vec<Id> = Vec::new();
            for org in after.into_iter().chain(upto) {
                // An organization over its limit is left out: its messages stay queued.
                if self.providers.usable_credit(org) > 0 && self.limiter.org_available(org, now) > 0
                {
                    turn.push(org);
                }
            }
            if turn.is_empty() {
                return;
            }
            let orgs = turn.len() as u64;
            let share = total.div_ceil(orgs).max(1);
            let mut leased_any = false;
            for org in turn {
                let n = share
                    .min(self.providers.usable_credit(org))
                    .min(self.config.batch_per_org as u64)
                    .min(self.limiter.org_available(org, now))
                    .min(self.limiter.global_available());
                if n == 0 {
                    continue;
                }
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                let leased = match self.store.lease(org, n).await {
                    Ok(leased) => leased,
                    Err(e) => {
                        tracing::error!(org, error = %e, "lease failed");
                        continue;
                    }
                };
                self.rr_after = org;
                let count = u32::try_from(leased.len()).unwrap_or(u32::MAX);
                self.limiter.charge(org, count, now);
                leased_any |= !leased.is_empty();
                for message in leased {
                    self.start(message).await;
                }
            }
            if !leased_any {
                return;
            }
            if pass + 1 == MAX_PASSES {
                self.more_work = true;
            }
        }
    }

    /// First look at a leased message: expiry, opt-out, then a provider.
    async fn start(&mut self, m: Message) {
        let now = self.clock.now_ms();
        let (org, id) = (m.organization_id, m.id);
        if m.expires_at.is_some_and(|at| at <= now) {
            self.count(|c| c.expired += 1);
            self.finalize(
                org,
                id,
                MessageStatus::Expired,
                None,
                "its validity ended before it could be sent".into(),
            )
            .await;
            return;
        }
        match self.opted_out(&m) {
            Ok(false) => {}
            Ok(true) => {
                self.count(|c| c.rejected_opted_out += 1);
                self.finalize(
                    org,
                    id,
                    MessageStatus::Rejected,
                    Some("OPTED_OUT".into()),
                    "the recipient opted out".into(),
                )
                .await;
                return;
            }
            Err(e) => {
                tracing::warn!(org, message = id, error = %e, "opt-out check failed; requeued");
                self.requeue(org, id, "REQUEUED", "opt-out check failed".into())
                    .await;
                return;
            }
        }
        // The rest of a message sent in pieces is asked of the provider that took the first
        // parts: the reference and the originator the handset joins them by are that SMSC's.
        let requested = m.partial.as_ref().map(|p| p.provider_id).or(m.provider_id);
        let attempt = Attempt {
            org,
            id,
            retry_count: m.retry_count,
            max_retries: m.max_retries,
            from: m.from_number,
            to: m.to_number,
            body: m.body,
            tried: Vec::new(),
            requested,
            provider: 0,
            route: String::new(),
            failover: None,
            waiting_since: now,
            partial: m.partial,
            expires_at: m.expires_at,
        };
        self.route(attempt, OnNone::Requeue).await;
    }

    fn opted_out(&self, m: &Message) -> sairex_store::Result<bool> {
        let org = m.organization_id;
        if let Some(contact) = m.contact_id {
            match self.store.contact(org, contact) {
                Ok(c) => return Ok(c.is_opted_out),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self
            .store
            .contact_by_phone(org, &m.to_number)?
            .is_some_and(|c| c.is_opted_out))
    }

    /// Hands the attempt to the first provider of its chain with credit, or does `on_none`.
    async fn route(&mut self, mut attempt: Attempt, on_none: OnNone) {
        if self.draining {
            return self
                .no_provider(attempt, on_none, "the gateway is stopping")
                .await;
        }
        // The rest of a partly sent message can only go to some providers; back in the ready
        // queue it would be leased again at once while others have credit (a loop of store
        // writes), so it waits for one in memory, then takes the retry schedule.
        let on_none = if attempt.partial.is_some() {
            OnNone::WaitThenRetry
        } else {
            on_none
        };
        loop {
            let requested = attempt.requested.map(|p| {
                let took_parts = attempt.partial.as_ref().is_some_and(|x| x.provider_id == p);
                let why = if took_parts {
                    parts::TOOK_THE_FIRST_PARTS
                } else {
                    "requested"
                };
                (p, why)
            });
            let layout = attempt.partial.as_ref().map(|p| p.layout.as_str());
            let choice =
                self.providers
                    .choose_requested(attempt.org, requested, &attempt.tried, layout);
            let (index, reason) = match choice {
                Choice::Send { slot, reason } => (slot, reason),
                Choice::NoCredit if on_none == OnNone::WaitThenRetry => {
                    self.pending.push_back(attempt);
                    return;
                }
                // The requested provider is busy while others are not: requeueing would
                // lease it again at once (a loop of store writes), so it waits in memory
                // like a failover does, then takes the retry schedule.
                Choice::NoCredit
                    if attempt
                        .requested
                        .is_some_and(|p| !attempt.tried.contains(&p)) =>
                {
                    attempt.waiting_since = self.clock.now_ms();
                    self.pending.push_back(attempt);
                    return;
                }
                Choice::NoCredit => {
                    return self
                        .no_provider(attempt, on_none, "no provider has credit")
                        .await;
                }
                Choice::Exhausted if attempt.partial.is_some() => {
                    let why = "no provider left that can send the missing parts alone";
                    return self.no_provider(attempt, on_none, why).await;
                }
                Choice::Exhausted => {
                    return self
                        .no_provider(attempt, on_none, "no provider left to try")
                        .await;
                }
            };
            let Some(slot) = self.providers.slot_mut(index) else {
                return;
            };
            slot.credit = slot.credit.saturating_sub(1);
            let link = Arc::clone(&slot.link);
            let provider = slot.id();
            let token = self.next_token;
            self.next_token += 1;
            let resume = attempt
                .partial
                .as_ref()
                .map(|p| Box::new(parts::resume_of(p)));
            let outbound = Outbound {
                token,
                organization_id: attempt.org,
                message_id: attempt.id,
                from: attempt.from.clone(),
                to: attempt.to.clone(),
                body: attempt.body.clone(),
                receipt: self.config.request_receipts,
                resume,
            };
            match link.send(outbound) {
                Ok(()) => {
                    let failover = attempt.failover.is_some();
                    attempt.route = match &attempt.failover {
                        Some(why) => format!("{reason}; {why}"),
                        None => reason,
                    };
                    if let Some(p) = &attempt.partial {
                        attempt.route.push_str(&format!(
                            "; only {} of {} sent, with reference {}",
                            parts::phrase(&p.missing()),
                            p.total,
                            p.reference
                        ));
                    }
                    attempt.provider = provider;
                    attempt.tried.push(provider);
                    self.inflight.insert(token, attempt);
                    self.metrics.sent(token);
                    self.count(|c| {
                        c.sent += 1;
                        if failover {
                            c.failovers += 1;
                        }
                    });
                    return;
                }
                Err((LinkError::Closed(_), _)) => {
                    tracing::info!(provider, "provider closed; its credit is void");
                    self.providers.unavailable(provider);
                }
            }
        }
    }

    async fn no_provider(&mut self, attempt: Attempt, on_none: OnNone, why: &str) {
        match on_none {
            OnNone::Requeue => {
                let reason = match &attempt.failover {
                    Some(f) => format!("{why} ({f})"),
                    None => why.to_owned(),
                };
                self.requeue(attempt.org, attempt.id, "REQUEUED", reason)
                    .await;
            }
            OnNone::WaitThenRetry => {
                let reason = attempt.failover.clone().unwrap_or_else(|| why.to_owned());
                self.retry_or_fail(attempt, &reason).await;
            }
        }
    }

    async fn serve_pending(&mut self) {
        let now = self.clock.now_ms();
        let waiting = std::mem::take(&mut self.pending);
        for mut attempt in waiting {
            if now.saturating_sub(attempt.waiting_since) > millis(self.config.failover_wait) {
                // The provider that took the first parts stayed busy for a whole wait: the
                // rest may go through another that splits the same way (module docs).
                if attempt.partial.is_some()
                    && let Some(first) = attempt.requested.filter(|p| !attempt.tried.contains(p))
                {
                    attempt.tried.push(first);
                    attempt.failover = Some(format!(
                        "{} had no credit for the rest for {}s",
                        self.providers.describe(first),
                        self.config.failover_wait.as_secs()
                    ));
                    attempt.waiting_since = now;
                    self.route(attempt, OnNone::WaitThenRetry).await;
                    continue;
                }
                let reason = attempt
                    .failover
                    .clone()
                    .unwrap_or_else(|| "no provider had credit".into());
                self.retry_or_fail(attempt, &reason).await;
            } else {
                self.route(attempt, OnNone::WaitThenRetry).await;
            }
        }
    }

    async fn requeue(&mut self, org: Id, id: Id, event: &str, reason: String) {
        match self.store.requeue(org, id, event, reason).await {
            Ok(Transition::Applied(_)) => {
                self.count(|c| c.requeued += 1);
                self.more_work = true;
            }
            Ok(_) => Self::stale("requeue", org, id),
            Err(e) => self.store_error("requeue", org, id, &e),
        }
    }

    async fn retry_or_fail(&mut self, attempt: Attempt, reason: &str) {
        let (org, id) = (attempt.org, attempt.id);
        match next_retry(attempt.retry_count, attempt.max_retries) {
            Next::RetryAfter(delay) => {
                let due = self.clock.now_ms().saturating_add(millis(delay));
                let detail = format!(
                    "retry {}/{} in {}s: {reason}",
                    attempt.retry_count + 1,
                    attempt.max_retries,
                    delay.as_secs()
                );
                match self.store.retry_at(org, id, due, detail).await {
                    Ok(Transition::Applied(_)) => {
                        self.count(|c| c.retries += 1);
                        self.due_at = Some(self.due_at.map_or(due, |d| d.min(due)));
                    }
                    Ok(_) => Self::stale("retry", org, id),
                    Err(e) => self.store_error("retry", org, id, &e),
                }
            }
            Next::GiveUp => {
                self.count(|c| c.failed += 1);
                self.finalize(
                    org,
                    id,
                    MessageStatus::Failed,
                    None,
                    format!(
                        "all providers exhausted after {} retries: {reason}",
                        attempt.retry_count
                    ),
                )
                .await;
            }
        }
    }

    async fn finalize(
        &mut self,
        org: Id,
        id: Id,
        status: MessageStatus,
        error_code: Option<String>,
        reason: String,
    ) {
        match self
            .store
            .finalize(org, id, status, error_code, Some(reason))
            .await
        {
            Ok(Transition::Applied(m)) => self.status_metrics(&m),
            Ok(_) => Self::stale("finalize", org, id),
            Err(e) => self.store_error("finalize", org, id, &e),
        }
    }

    /// Writes an event without changing the status (the message must still be in flight).
    async fn note(&mut self, attempt: &Attempt, event: &str, detail: String) -> bool {
        let result = self
            .store
            .note_in_flight(attempt.org, attempt.id, event, detail)
            .await;
        match result {
            Ok(Transition::Applied(_)) => true,
            Ok(_) => {
                Self::stale(event, attempt.org, attempt.id);
                false
            }
            Err(e) => {
                self.store_error(event, attempt.org, attempt.id, &e);
                false
            }
        }
    }

    // ---- outcomes ------------------------------------------------------------------------

    /// The attempt a provider's answer is for, taken out of the in-flight set.
    fn take_attempt(&mut self, provider_id: Id, token: u64) -> Option<Attempt> {
        let Some(attempt) = self.inflight.remove(&token) else {
            tracing::warn!(provider = provider_id, token, "answer for an unknown token");
            return None;
        };
        self.metrics.answered(token, provider_id);
        if attempt.provider != provider_id {
            tracing::warn!(
                provider = provider_id,
                expected = attempt.provider,
                token,
                "answer from another provider than the one the message was handed to"
            );
        }
        Some(attempt)
    }

    async fn on_done(&mut self, provider_id: Id, token: u64, outcome: SendOutcome) {
        let Some(mut attempt) = self.take_attempt(provider_id, token) else {
            return;
        };
        let provider = attempt.provider;
        let name = self.providers.describe(provider);
        match outcome {
            SendOutcome::Accepted { provider_msg_ids } => {
                self.accepted(attempt, provider_msg_ids).await;
            }
            SendOutcome::Refused {
                status,
                outcome,
                error_code,
                accepted,
            } => {
                let code = error_code.unwrap_or_else(|| format!("{:#x}", status.0));
                let what = match outcome {
                    SubmitOutcome::Accepted => {
                        return self.accepted(attempt, accepted.into_ids()).await;
                    }
                    SubmitOutcome::Throttled => format!("throttled ({status})"),
                    SubmitOutcome::Temporary => format!("refused ({status}, temporary)"),
                    SubmitOutcome::Rejected => format!("rejected ({status})"),
                    SubmitOutcome::Failed => format!("failed ({status})"),
                };
                // Recorded even when the message ends here: the accepted parts' receipts
                // then find it instead of being held as unknown.
                let Some(resend) = self.keep_parts(&mut attempt, &accepted, &what).await else {
                    return;
                };
                match outcome {
                    SubmitOutcome::Accepted => {}
                    SubmitOutcome::Throttled => {
                        self.count(|c| c.throttled += 1);
                        let reason =
                            format!("{name} throttled ({status}){resend}; no retry counted");
                        self.requeue(attempt.org, attempt.id, "THROTTLED", reason)
                            .await;
                    }
                    SubmitOutcome::Temporary => {
                        self.count(|c| c.provider_errors += 1);
                        self.provider_failed(provider).await;
                        let error = format!("{name} refused it: {status} (temporary)");
                        let detail = format!("{error}; it was {}{resend}", attempt.route);
                        if self.note(&attempt, "PROVIDER_ERROR", detail).await {
                            attempt.failover = Some(format!("failover after {error}"));
                            // If the next provider has no credit, the wait starts now.
                            attempt.waiting_since = self.clock.now_ms();
                            self.route(attempt, OnNone::WaitThenRetry).await;
                        }
                    }
                    SubmitOutcome::Rejected => {
                        self.count(|c| c.rejected += 1);
                        let reason = format!("{name} rejected it: {status}");
                        self.finalize(
                            attempt.org,
                            attempt.id,
                            MessageStatus::Rejected,
                            Some(code),
                            reason,
                        )
                        .await;
                    }
                    SubmitOutcome::Failed => {
                        self.count(|c| c.failed += 1);
                        let reason = format!("{name} failed it permanently: {status}");
                        self.finalize(
                            attempt.org,
                            attempt.id,
                            MessageStatus::Failed,
                            Some(code),
                            reason,
                        )
                        .await;
                    }
                }
            }
            SendOutcome::InDoubt { accepted } => {
                self.count(|c| c.in_doubt += 1);
                self.provider_failed(provider).await;
                let Some(resend) = self
                    .keep_parts(&mut attempt, &accepted, "unanswered (in doubt)")
                    .await
                else {
                    return;
                };
                let detail = format!(
                    "no answer from {name} ({} part(s) known accepted); it may have reached \
                     the carrier",
                    accepted.count()
                );
                if !self.note(&attempt, "IN_DOUBT", detail).await {
                    return;
                }
                // Each provider's own policy decides (issue 4), as its link reports it. Parts
                // known accepted are never sent again; the policy is about the others.
                let policy = self
                    .providers
                    .by_id(provider_id)
                    .map_or(InDoubtPolicy::default(), |slot| slot.link.in_doubt_policy());
                match policy {
                    InDoubtPolicy::Resubmit => {
                        crate::metrics::possible_duplicate(provider_id);
                        let reason =
                            format!("in doubt on {name}; resubmitted{resend} (possible duplicate)");
                        self.retry_or_fail(attempt, &reason).await;
                    }
                    InDoubtPolicy::Fail => {
                        self.count(|c| c.failed += 1);
                        self.finalize(
                            attempt.org,
                            attempt.id,
                            MessageStatus::Failed,
                            Some("IN_DOUBT".into()),
                            format!("in doubt on {name}; policy: do not resend"),
                        )
                        .await;
                    }
                }
            }
            SendOutcome::NotSent { reason, accepted } => {
                self.provider_failed(provider).await;
                let what = format!("not sent ({reason})");
                let Some(resend) = self.keep_parts(&mut attempt, &accepted, &what).await else {
                    return;
                };
                attempt.failover = Some(format!("{name} did not send it: {reason}{resend}"));
                self.route(attempt, OnNone::Requeue).await;
            }
        }
    }

    /// Records the parts a provider accepted of a message it did not accept whole, so that
    /// only the others are ever sent again (module docs), and applies receipts already held
    /// for them. `what` says what happened to the others ("throttled (ESME_RTHROTTLED)").
    ///
    /// Returns a note for the event that follows ("; parts 2 and 3 resent alone"), empty when
    /// no part was accepted; `None` when the store failed: the message then stays in flight
    /// and goes back to the queue with the store's recovery, as when any other write fails.
    async fn keep_parts(
        &mut self,
        attempt: &mut Attempt,
        accepted: &AcceptedParts,
        what: &str,
    ) -> Option<String> {
        let known = |i: u32| {
            attempt
                .partial
                .as_ref()
                .is_some_and(|p| p.part(i).is_some())
        };
        let new: Vec<(u32, String)> = accepted
            .ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| Some((u32::try_from(i).ok()?, id.clone()?)))
            .filter(|(i, _)| !known(*i))
            .collect();
        let resend_note =
            |p: &PartialSend| format!("; {} resent alone", parts::phrase(&p.missing()));
        if new.is_empty() {
            return Some(
                attempt
                    .partial
                    .as_ref()
                    .map(resend_note)
                    .unwrap_or_default(),
            );
        }
        let provider = attempt.provider;
        let name = self.providers.describe(provider);
        let total = accepted.ids.len();
        // A partial send's layout is the first provider's: a later one was chosen for it.
        let layout = match &attempt.partial {
            Some(p) => Some(p.layout.clone()),
            None => self
                .providers
                .by_id(provider)
                .and_then(|slot| slot.link.part_layout()),
        };
        let (Some(reference), Some(layout), Ok(total)) =
            (accepted.reference, layout, u32::try_from(total))
        else {
            // An HTTP API split the text itself: the rest cannot go alone, so the message is
            // sent again whole, as before; the handset may show the first copy's parts.
            tracing::warn!(
                org = attempt.org,
                message = attempt.id,
                provider,
                accepted = new.len(),
                total,
                "parts accepted by a provider that cannot send the rest alone"
            );
            return Some(format!(
                "; {} of {total} part(s) were accepted, but {name} cannot send the rest alone: \
                 the whole message is sent again",
                new.len()
            ));
        };
        let indexes: Vec<u32> = new.iter().map(|(i, _)| *i).collect();
        let ids: Vec<String> = new.iter().map(|(_, id)| id.clone()).collect();
        let missing: Vec<u32> = (0..total)
            .filter(|i| !known(*i) && !indexes.contains(i))
            .collect();
        let detail = format!(
            "{} of {total} accepted by {name} (id {}, reference {reference}); {} {what}",
            parts::phrase(&indexes),
            ids.join(", "),
            parts::phrase(&missing)
        );
        let record = PartsAccepted {
            provider_id: provider,
            total,
            reference,
            layout,
            parts: new,
            detail: Some(detail),
        };
        let (org, id) = (attempt.org, attempt.id);
        match self.store.record_accepted_parts(org, id, record).await {
            Ok(Transition::Applied(m)) => {
                attempt.partial = m.partial;
                self.apply_early(org, id, provider, &ids).await;
                Some(
                    attempt
                        .partial
                        .as_ref()
                        .map(resend_note)
                        .unwrap_or_default(),
                )
            }
            Ok(_) => {
                Self::stale("parts", org, id);
                None
            }
            Err(e) => {
                self.store_error("parts", org, id, &e);
                None
            }
        }
    }

    async fn accepted(&mut self, attempt: Attempt, ids: Vec<String>) {
        let mut one = vec![(attempt, ids)];
        self.settle(&mut one, &mut Vec::new()).await;
    }

    /// Applies a run of receipts, each answering its deliver_sm (see [`Dispatcher::settle`]).
    async fn receipts_all(&mut self, receipts: &mut Vec<PendingReceipt>) {
        self.settle(&mut Vec::new(), receipts).await;
    }

    /// Records a run of acceptances and receipts. Every store write waits for a group commit,
    /// so the writes that do not depend on each other go to the store together and share one:
    /// the acceptances, and the receipts whose message is known already. A receipt whose id is
    /// not known yet may belong to an acceptance of this run (the SMSC often sends both back to
    /// back), so it is looked up again once the acceptances are recorded, and only then held
    /// as early; so is a receipt for a message with an acceptance in the run (it must see the
    /// parts and ids that acceptance records). Acceptances are applied (published) before any
    /// receipt of the run is, so a message is never reported delivered before it is reported
    /// sent.
    async fn settle(
        &mut self,
        acks: &mut Vec<(Attempt, Vec<String>)>,
        receipts: &mut Vec<PendingReceipt>,
    ) {
        if acks.is_empty() && receipts.is_empty() {
            return;
        }
        let arrived = receipts.len() as u64;
        self.count(|c| c.receipts += arrived);
        let mut pending = std::mem::take(receipts);
        let mut later = Vec::new();
        let mut unknown = Vec::new();
        // A receipt for a message whose acceptance is in this run (another part of it, or an
        // earlier submission) waits for it: it must see the message as the acceptance leaves
        // it (its parts and ids), not as it was before.
        let accepting: HashSet<(Id, Id)> = acks.iter().map(|(a, _)| (a.org, a.id)).collect();
        let wave = self.receipt_wave(
            &mut pending,
            &mut later,
            Some(Defer {
                to: &mut unknown,
                accepting: &accepting,
            }),
        );
        let (ack_results, applied) =
            futures::future::join(self.ack_writes(acks), self.apply_wave(wave.work)).await;
        self.acks_recorded(acks, ack_results).await;
        for (ack, status) in wave.acks.into_iter().zip(applied) {
            ack.complete(status);
        }
        pending.append(&mut later);
        pending.append(&mut unknown);
        // What is left: receipts of messages already in a wave, and ids unknown before the
        // acceptances were recorded; as many waves as one message has receipts in the run.
        while !pending.is_empty() {
            let wave = self.receipt_wave(&mut pending, &mut later, None);
            let applied = self.apply_wave(wave.work).await;
            for (ack, status) in wave.acks.into_iter().zip(applied) {
                ack.complete(status);
            }
            std::mem::swap(&mut pending, &mut later);
        }
    }

    /// The store writes of acceptances, to run together.
    fn ack_writes(
        &self,
        acks: &[(Attempt, Vec<String>)],
    ) -> impl std::future::Future<Output = Vec<sairex_store::Result<Transition>>> + use<> {
        let writes: Vec<_> = acks
            .iter()
            .map(|(attempt, ids)| {
                let submitted = Submitted {
                    provider_id: attempt.provider,
                    provider_msg_ids: ids.clone(),
                    cost_per_segment: self
                        .providers
                        .by_id(attempt.provider)
                        .and_then(|s| s.config.cost_per_segment),
                    detail: Some(attempt.route.clone()),
                    receipt_due_at: self.receipt_due_at(attempt.provider, attempt.expires_at),
                };
                let store = self.store.clone();
                let (org, id) = (attempt.org, attempt.id);
                async move { store.ack_submitted(org, id, submitted).await }
            })
            .collect();
        futures::future::join_all(writes)
    }

    /// Applies recorded acceptances in order, with any receipt that arrived before its
    /// acceptance.
    async fn acks_recorded(
        &mut self,
        acks: &mut Vec<(Attempt, Vec<String>)>,
        results: Vec<sairex_store::Result<Transition>>,
    ) {
        for ((attempt, ids), result) in acks.drain(..).zip(results) {
            let (org, id, provider) = (attempt.org, attempt.id, attempt.provider);
            match result {
                Ok(Transition::Applied(m)) => {
                    self.count(|c| c.submitted += 1);
                    crate::metrics::submitted(&m);
                    self.status_metrics(&m);
                    if let Some(change) = self.health.success(provider) {
                        self.apply_health(change).await;
                    }
                }
                Ok(_) => {
                    Self::stale("ack", org, id);
                    continue;
                }
                Err(e) => {
                    self.store_error("ack", org, id, &e);
                    continue;
                }
            }
            self.apply_early(org, id, provider, &ids).await;
        }
    }

    /// Applies receipts held for ids `provider` gave the message, now that they are recorded.
    async fn apply_early(&mut self, org: Id, id: Id, provider: Id, ids: &[String]) {
        let mut applied = Vec::new();
        for msg_id in ids {
            let same_only = self.spellings.get(&provider) == Some(&Spelling::Same);
            let taken: Vec<Taken> = self.early.take(provider, msg_id, same_only);
            for (receipt, ack, stored) in taken {
                self.count(|c| c.receipts_early_matched += 1);
                let status = match self.store.message(org, id) {
                    Ok(m) => self.apply_receipt(provider, &receipt, m).await,
                    Err(e) => {
                        self.store_error("early receipt", org, id, &e);
                        Self::store_error_status(&e)
                    }
                };
                if let Some(ack) = ack {
                    ack.complete(status);
                }
                match (stored, status) {
                    // Kept for the next start to apply again.
                    (Some(_), DeliverStatus::Retry) => {}
                    (Some(held), _) => applied.push(held),
                    (None, _) => {}
                }
            }
        }
        // Right after the receipt's own write: a crash between the two applies it again at
        // start, which changes nothing (a duplicate).
        self.release_holds(Vec::new(), applied).await;
    }

    // ---- receipts ------------------------------------------------------------------------

    /// Sorts receipts: a wave of at most one per message whose message is found (to write
    /// together), `later` for another receipt of a message already in the wave. `deferred`,
    /// when given, takes ids not found yet and receipts of the messages it lists (whose
    /// acceptances are being recorded); without it, unknown ids are held as early.
    fn receipt_wave(
        &mut self,
        receipts: &mut Vec<PendingReceipt>,
        later: &mut Vec<PendingReceipt>,
        mut deferred: Option<Defer<'_>>,
    ) -> Wave {
        let mut wave = Wave::default();
        let mut seen = HashSet::new();
        for (provider, deliver, ack) in receipts.drain(..) {
            match self.lookup_receipt(provider, &deliver) {
                Lookup::Found(receipt, m, spelling) => {
                    if let Some(defer) = deferred.as_mut()
                        && defer.accepting.contains(&(m.organization_id, m.id))
                    {
                        defer.to.push((provider, deliver, ack));
                        continue;
                    }
                    self.learn_spelling(provider, spelling);
                    if !Self::awaits_receipt(&m) {
                        // A duplicate, or the receipt of a new message that reuses the id and
                        // whose submit_sm_resp is not recorded yet: held briefly.
                        let now = self.clock.now_ms();
                        self.early.hold_duplicate(provider, receipt, ack, now);
                    } else if seen.insert((m.organization_id, m.id)) {
                        wave.work.push((provider, receipt, m));
                        wave.acks.push(ack);
                    } else {
                        later.push((provider, deliver, ack));
                    }
                }
                Lookup::Unknown(receipt) => {
                    if let Some(defer) = deferred.as_mut() {
                        defer.to.push((provider, deliver, ack));
                        continue;
                    }
                    // Held, and its answer held back for a short while (see `receipts`):
                    // answered once applied, or "retry" so the SMSC keeps it.
                    let receipt_id = receipt.id.clone();
                    match self.early.hold(provider, receipt, ack, self.clock.now_ms()) {
                        Hold::Held => {
                            tracing::info!(provider, %receipt_id, "receipt for an unknown id; held");
                            self.count(|c| c.receipts_held += 1);
                        }
                        Hold::Full => {
                            tracing::warn!(provider, %receipt_id, "receipt for an unknown id; the hold is full, answered retry");
                            self.count(|c| c.receipts_dropped += 1);
                        }
                        Hold::Redelivered => {
                            tracing::debug!(provider, %receipt_id, "held receipt delivered again");
                        }
                        Hold::GaveUp => {
                            tracing::warn!(provider, %receipt_id, "receipt for an id that expired unmatched; answered OK and dropped");
                            self.count(|c| c.receipts_dropped += 1);
                        }
                    }
                }
                Lookup::Answer(status) => ack.complete(status),
            }
        }
        wave
    }

    /// Writes a wave's receipts together; the answers in the wave's order.
    async fn apply_wave(&self, work: Vec<(Id, Receipt, Box<Message>)>) -> Vec<DeliverStatus> {
        futures::future::join_all(work.into_iter().map(|(provider, receipt, m)| async move {
            self.apply_receipt(provider, &receipt, *m).await
        }))
        .await
    }

    /// Reads a receipt and finds its message.
    fn lookup_receipt(&self, provider: Id, deliver: &DeliverSm) -> Lookup {
        let receipt = match deliver.receipt() {
            Ok(r) => r,
            Err(e) => {
                self.count(|c| c.receipts_unreadable += 1);
                tracing::warn!(provider, error = %e, "unreadable delivery receipt");
                return Lookup::Answer(DeliverStatus::Reject);
            }
        };
        match self.find_by_provider_id(provider, &receipt.id) {
            Ok(Some((m, spelling))) => Lookup::Found(receipt, Box::new(m), spelling),
            Ok(None) => Lookup::Unknown(receipt),
            Err(e) => {
                self.count(|c| c.store_errors += 1);
                tracing::error!(provider, error = %e, "receipt lookup failed");
                Lookup::Answer(DeliverStatus::Retry)
            }
        }
    }

    /// The deliver_sm answer after a store error on a message: the message having moved on
    /// (not found, already final) is no reason for the carrier to resend.
    fn store_error_status(e: &StoreError) -> DeliverStatus {
        match e {
            StoreError::NotFound { .. } => DeliverStatus::Done,
            _ => DeliverStatus::Retry,
        }
    }

    /// The message whose provider id the receipt names. A match in another base is taken only
    /// while the provider has not shown that it repeats its spelling, and never for a message
    /// already final: there it is more likely another message's id whose own submit_sm_resp
    /// is not recorded yet, so the receipt is held instead.
    fn find_by_provider_id(
        &self,
        provider: Id,
        receipt_id: &str,
    ) -> sairex_store::Result<Option<(Message, Spelling)>> {
        let learned = self.spellings.get(&provider).copied();
        let mut respelled = None;
        for spelling in receipts::spellings(receipt_id) {
            let Some(m) = self.store.message_by_provider_id(provider, &spelling)? else {
                continue;
            };
            let Some(given) = parts::part_ids(&m).find(|id| ids_match(id, receipt_id)) else {
                continue;
            };
            if same_spelling(given, receipt_id) {
                return Ok(Some((m, Spelling::Same)));
            }
            let taken_as_respelled = match learned {
                Some(Spelling::Same) => false,
                Some(Spelling::Respelled) => true,
                None => Self::awaits_receipt(&m),
            };
            if respelled.is_none() && taken_as_respelled {
                respelled = Some(m);
            }
        }
        Ok(respelled.map(|m| (m, Spelling::Respelled)))
    }

    /// Records how `provider` spells receipt ids: a same-spelling match settles it for good.
    fn learn_spelling(&mut self, provider: Id, spelling: Spelling) {
        match self.spellings.get(&provider) {
            Some(Spelling::Same) => {}
            Some(Spelling::Respelled) if spelling == Spelling::Respelled => {}
            _ => {
                tracing::info!(
                    provider,
                    ?spelling,
                    "receipt ids: learned how this provider spells them"
                );
                self.spellings.insert(provider, spelling);
            }
        }
    }

    async fn apply_receipt(&self, provider: Id, receipt: &Receipt, m: Message) -> DeliverStatus {
        let (org, id) = (m.organization_id, m.id);
        let Some(state) = receipt.state else {
            self.count(|c| c.receipts_unreadable += 1);
            tracing::warn!(provider, message = id, stat = %receipt.stat, "receipt with an unknown stat");
            return DeliverStatus::Reject;
        };
        let status = receipt_status(state);
        let err = receipt.err.clone().unwrap_or_default();
        let detail = format!(
            "receipt from {}: stat:{} err:{err}",
            self.providers.describe(provider),
            receipt.stat
        );
        let update = ReceiptUpdate {
            status,
            part: part_of(&m, provider, &receipt.id)
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(0),
            parts: u32::try_from(part_count(&m)).unwrap_or(u32::MAX),
            detail,
            error_code: (!err.is_empty()).then_some(err),
            at: self.clock.now_ms(),
        };
        let now = update.at;
        match self.store.apply_receipt(org, id, update).await {
            Ok(Transition::Applied(m)) => {
                if m.status.is_final() {
                    crate::metrics::receipt_final(&m, now);
                }
                self.count(|c| match m.status {
                    MessageStatus::Failed => c.failed += 1,
                    MessageStatus::Rejected => c.rejected += 1,
                    _ => {}
                });
                self.status_metrics(&m);
                DeliverStatus::Done
            }
            Ok(Transition::Duplicate(_)) => {
                self.count(|c| c.receipts_duplicate += 1);
                DeliverStatus::Done
            }
            // An intermediate receipt of a part while the rest waits to be sent.
            Ok(Transition::Stale(_)) => DeliverStatus::Done,
            Err(e) => {
                self.store_error("receipt", org, id, &e);
                Self::store_error_status(&e)
            }
        }
    }

    // ---- inbound -------------------------------------------------------------------------

    /// Stores an inbound message; the status answers its deliver_sm.
    async fn on_inbound(&mut self, provider: Id, deliver: &DeliverSm) -> DeliverStatus {
        let from = inbound::normalize_address(
            deliver.source_addr_ton,
            &deliver.source_addr.to_string_lossy(),
        );
        let to = inbound::normalize_address(
            deliver.dest_addr_ton,
            &deliver.destination_addr.to_string_lossy(),
        );
        let org = match self.providers.by_id(provider) {
            Some(slot) if slot.config.organization_id != 0 => Some(slot.config.organization_id),
            Some(_) => inbound::route(&self.config.inbound_routes, &to),
            None => None,
        };
        let Some(org) = org else {
            self.count(|c| c.inbound_unroutable += 1);
            tracing::warn!(provider, to = %to, "inbound message with no organization; dropped");
            return DeliverStatus::Reject;
        };
        let decoded = inbound::decode(deliver);
        match decoded.concat {
            Some(concat) if concat.total > 1 => {
                let key = PartsKey {
                    provider,
                    from,
                    to,
                    reference: concat.reference,
                    wide: concat.wide,
                };
                self.inbound_part(org, key, concat, decoded).await
            }
            _ => {
                self.store_inbound(
                    org,
                    provider,
                    from,
                    to,
                    decoded.text,
                    decoded.encoding,
                    1,
                    decoded.note,
                    Vec::new(),
                )
                .await
            }
        }
    }

    /// Stores the parts of an inbound message that never completed.
    async fn store_partial(&mut self, partial: inbound::Partial) {
        let org = match self.providers.by_id(partial.key.provider) {
            Some(slot) if slot.config.organization_id != 0 => Some(slot.config.organization_id),
            _ => inbound::route(&self.config.inbound_routes, &partial.key.to),
        };
        let Some(org) = org else {
            // No organization any more (its provider and route are gone): nothing to store
            // it for, so its parts are not kept either.
            tracing::warn!(
                provider = partial.key.provider,
                to = %partial.key.to,
                "inbound parts with no organization; dropped"
            );
            self.count(|c| c.inbound_unroutable += 1);
            self.release_holds(partial.held_ids(), Vec::new()).await;
            return;
        };
        let missing = partial.missing();
        let note = format!(
            "incomplete: parts {missing:?} of {} never arrived",
            partial.parts.len()
        );
        let segments = u32::try_from(partial.parts.len() - missing.len()).unwrap_or(u32::MAX);
        let body = partial.text();
        let held = partial.held_ids();
        tracing::info!(
            org,
            provider = partial.key.provider,
            ?missing,
            total = partial.parts.len(),
            "inbound parts given up waiting; stored incomplete"
        );
        self.count(|c| c.inbound_incomplete += 1);
        let status = self
            .store_inbound(
                org,
                partial.key.provider,
                partial.key.from,
                partial.key.to,
                body,
                partial.encoding,
                segments,
                Some(note),
                held,
            )
            .await;
        if status == DeliverStatus::Retry {
            // Its parts stay in the store: read back, and given up again, at the next start.
            tracing::warn!(
                provider = partial.key.provider,
                "an incomplete inbound message could not be stored; its parts stay held"
            );
        }
    }

    /// Stores one inbound message (made of the held parts `held`, removed with it):
    /// [`DeliverStatus::Done`] once it is in the store, [`DeliverStatus::Retry`] when the store
    /// failed.
    #[allow(clippy::too_many_arguments)]
    async fn store_inbound(
        &mut self,
        org: Id,
        provider: Id,
        from: String,
        to: String,
        body: String,
        encoding: &str,
        segments: u32,
        note: Option<String>,
        held: Vec<Id>,
    ) -> DeliverStatus {
        let contact_id = match inbound::keyword(&body) {
            Some(keyword) => {
                let out = keyword == Keyword::OptOut;
                match self.store.set_phone_opt_out(org, &from, out).await {
                    Ok(contact) => {
                        self.count(|c| {
                            if out {
                                c.opt_outs += 1;
                            } else {
                                c.opt_ins += 1;
                            }
                        });
                        Some(contact.id)
                    }
                    Err(e) => {
                        tracing::warn!(org, error = %e, "opt-out keyword not applied");
                        None
                    }
                }
            }
            None => match self.store.contact_by_phone(org, &from) {
                Ok(contact) => contact.map(|c| c.id),
                Err(e) => {
                    tracing::warn!(org, error = %e, "contact lookup failed");
                    None
                }
            },
        };
        let message = Message {
            organization_id: org,
            direction: Direction::Inbound,
            from_number: from,
            to_number: to,
            contact_id,
            body,
            encoding: encoding.to_owned(),
            segments,
            provider_id: Some(provider),
            status_message: note,
            ..Message::default()
        };
        let stored = if held.is_empty() {
            self.store.enqueue(message).await
        } else {
            self.store.enqueue_from_parts(message, held).await
        };
        match stored {
            Ok(stored) => {
                self.count(|c| c.inbound += 1);
                crate::metrics::status_changed(stored.message());
                DeliverStatus::Done
            }
            Err(e) => {
                self.count(|c| c.store_errors += 1);
                tracing::error!(org, error = %e, "storing an inbound message failed");
                DeliverStatus::Retry
            }
        }
    }

    // ---- shutdown ------------------------------------------------------------------------

    async fn drain(mut self) -> DrainReport {
        self.draining = true;
        let deadline = Instant::now() + self.config.shutdown_grace;
        for attempt in std::mem::take(&mut self.pending) {
            self.requeue(
                attempt.org,
                attempt.id,
                "REQUEUED",
                "the gateway stopped before a failover".into(),
            )
            .await;
        }
        while !self.inflight.is_empty() && !self.events_closed {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(event) => self.on_event(event).await,
                    None => self.events_closed = true,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        // Parts still waiting for their siblings stay held in the store: read back at the
        // next start, where the rest may still arrive.
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "flushing the store at shutdown failed");
        }
        let unanswered = self.inflight.len();
        if unanswered > 0 {
            tracing::warn!(
                unanswered,
                "messages left in flight; recovery requeues them on the next start"
            );
        }
        DrainReport { unanswered }
    }
}
