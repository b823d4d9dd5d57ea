//! The SMPP provider: one SMSC account reached through `binds` [`SessionActor`]s, behind one
//! TPS token bucket, speaking the dispatcher's credit protocol ([`super`]).
//!
//! # What it does
//! - **Sessions.** It spawns `binds` sessions from one [`SessionConfig`] template, linked to
//!   itself, and restarts one that dies (panic, kill, or a stop it did not ask for) after a
//!   jittered exponential back-off ([`SessionConfig::reconnect`]). A session's events reach the
//!   provider through a small forwarding task per session (below).
//! - **Credit.** It announces [`ProviderEvent::Credit`] so that the credit outstanding with the
//!   dispatcher plus the parts waiting here never exceed `min(window credit granted by bound
//!   sessions, tokens in the bucket)`. Announcements are coalesced: a state change schedules one
//!   `Announce` message at the back of the mailbox, so a burst of responses becomes one event.
//!   Tokens that come back are announced by a [`REFILL_TICK`] timer. When no session is bound
//!   it says [`ProviderEvent::Unavailable`] (once per outage).
//! - **Messages.** A message is split into parts ([`sairex_pdu::text::split`], the
//!   concatenation reference taken from a per-provider counter), each part a submit_sm that
//!   costs one token and one window credit, on whichever bound session has credit (parts of one
//!   message may go to different binds). Credit is counted in messages but spent in parts, so a
//!   multipart message takes more than it was given; the parts wait here and the excess is paid
//!   back before any new credit is announced.
//! - **Resends of partly accepted messages** ([`Outbound::resume`]): the text is split as
//!   before ([`SmppProviderConfig::part_layout`] names how), every part gets the reference of
//!   the first attempt, and only the parts not accepted yet are submitted; the accepted ones
//!   are answered at once with their earlier ids. A text that no longer splits into the same
//!   number of parts here is answered `NotSent` without sending anything.
//! - **Answers.** Every [`Outbound`] taken is answered exactly once with [`ProviderEvent::Done`]
//!   once all its parts are answered: all accepted → `Accepted` (ids in part order, earlier
//!   attempts' included); any refused → `Refused` (the first refusal in part order); else any
//!   in doubt → `InDoubt`; a part `NotSent` by a session is sent again on another bound session
//!   (at most [`MAX_PART_ATTEMPTS`] times), else the message is `NotSent`. Every answer but
//!   `Accepted` gives the parts accepted by position ([`AcceptedParts`]) with the reference, so
//!   the dispatcher resends only the others.
//! - **Throttling.** A [`SessionEvent::Throttled`] halves the bucket's rate (floor 1 TPS, at
//!   most once per [`THROTTLE_CUT_SPACING`]: the responses of one burst are one signal); after a
//!   second without throttling the rate grows by 10 % per second back to the configured TPS.
//!   Without a configured TPS the first throttle starts a bucket at half the rate sent in the
//!   last second, and the limit is lifted once the rate has grown back to that observed rate.
//!   The throttled part itself comes back `Refused { outcome: Throttled }`, so the dispatcher
//!   re-queues the message without counting a retry.
//! - **In doubt.** [`InDoubtPolicy`] is the provider's; the dispatcher asks
//!   [`ProviderLink::in_doubt_policy`]. With `Resubmit` (the default) a resend may duplicate.
//! - **Receipts and MOs** are handed on as [`ProviderEvent::Deliver`] with the session's
//!   [`DeliverAck`](crate::provider::DeliverAck): the carrier gets its deliver_sm_resp once the
//!   dispatcher completes it.
//! - **Drain** ([`SmppProviderHandle::drain`]): the link refuses new messages
//!   ([`LinkError::Closed`]), parts not yet written are answered `NotSent`, every session
//!   drains (waits for its window, unbinds), what sessions still hold comes back in doubt, and
//!   the actor stops once everything is answered.
//!
//! # Back-pressure
//! Session events are forwarded to the actor by one task per session. Each forwarded event
//! carries a permit of a semaphore of [`FORWARD_PERMITS`], released when the actor has handled
//! it, so the (unbounded) ractor mailbox holds at most that many session events: when the
//! dispatcher's channel is full the actor waits in `send().await`, the forwarders stop, the
//! sessions' channels fill, and the sessions stop acknowledging deliver_sm. The other messages
//! in the mailbox are bounded by credit (`Send`) or are the provider's own timers.
//!
//! # Supervision
//! A session is known to be gone when its event channel closes: the session's sender lives in
//! its state, which is dropped after its last event. The forwarder then sends `SessionClosed`
//! *after* every event the session reported, so parts it never answered (a kill or panic
//! reports nothing) are exactly those still recorded against it; they are answered `InDoubt`
//! (they may have been written). Ractor's supervision events are only logged: the default
//! handler would stop the provider with its child.
//!
//! # Not yet
//! No restart budget with escalation (a session is restarted forever, with back-off capped by
//! the template's reconnect maximum), no global token bucket. Metrics: [`crate::metrics`]
//! (and [`SmppProviderStats`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort, SpawnErr,
    SupervisionEvent,
};
use sairex_pdu::text::{Concatenation, Encoding, Gsm7Packing, SplitOptions, split};
use sairex_pdu::{COctetString, CommandStatus, SubmitSm};
use sairex_store::model::Id;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant, timeout};
use tracing::{debug, info, warn};

use super::token_bucket::TokenBucket;
use super::{
    AcceptedParts, InDoubtPolicy, LinkError, Outbound, ProviderEvent, ProviderEvents, ProviderLink,
    Resume, SendOutcome, SharedLink,
};
use crate::classify::SubmitOutcome;
use crate::session::{
    BindMode, DisconnectReason, NotSentReason, SessionActor, SessionArgs, SessionConfig,
    SessionEvent, SessionMsg, SessionRef, SubmitResult,
};

/// Tracing target of this module.
const TARGET: &str = "sairex::engine::provider::smpp";

/// How often returning tokens are announced and the throttle recovery is checked. 50 ms keeps
/// the announcements coalesced (at 1,000 TPS, 50 tokens per event) while adding at most 50 ms
/// of latency to a message that waited for a token.
pub const REFILL_TICK: Duration = Duration::from_millis(50);
/// Quiet time after the last throttle before the rate grows again, and the growth step.
pub const THROTTLE_RECOVERY_STEP: Duration = Duration::from_secs(1);
/// Least time between two rate cuts: throttled responses to one burst arrive together and are
/// one signal, not one halving each.
pub const THROTTLE_CUT_SPACING: Duration = Duration::from_millis(500);
/// Most times one part is handed to a session; a part answered `NotSent` that often is
/// reported `NotSent` (the dispatcher then reroutes or retries the message).
pub const MAX_PART_ATTEMPTS: u32 = 3;
/// Session events waiting in the provider's mailbox at most (see the module docs).
pub const FORWARD_PERMITS: usize = 256;
/// Room in each session's event channel beyond its window: the window's results can all be
/// reported at once when a connection dies, plus the `Disconnected` and some receipts.
const SESSION_EVENT_SLACK: usize = 32;
/// The bucket holds this fraction of a second's tokens (one fifth: 200 ms). A smaller burst
/// spreads submits over the second, so the SMSC sees a smooth rate, and a rate cut takes effect
/// within 200 ms.
const BURST_DIVISOR: u32 = 5;

/// The `data_coding` a provider sends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DataCodingPolicy {
    /// GSM 7-bit (`data_coding` 0) when every character fits, else UCS-2 (8).
    #[default]
    Auto,
    /// Latin-1 (`data_coding` 3) when every character fits, else UCS-2: for SMSCs that take
    /// Latin-1 rather than GSM 7-bit.
    Latin1,
    /// Always UCS-2.
    Ucs2,
}

/// How the parts of a long message are tied together (SMPP 3.4 §5.3.2.22–24, 3GPP TS 23.040).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConcatenationPolicy {
    /// A UDH with an 8-bit reference: the most widely understood.
    #[default]
    Udh8,
    /// A UDH with a 16-bit reference.
    Udh16,
    /// `sar_*` TLVs; the SMSC builds the UDH.
    Sar,
    /// The whole text in one `message_payload` TLV; the SMSC splits it.
    MessagePayload,
}

/// Why an [`SmppProviderConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmppProviderConfigError {
    /// `binds` is zero.
    #[error("binds must be at least 1")]
    NoBinds,
    /// `tps` is `Some(0)`.
    #[error("tps must be above zero (leave it out for no limit)")]
    ZeroTps,
    /// The session template is unusable.
    #[error("session: {0}")]
    Session(#[from] crate::session::SessionConfigError),
}

/// One SMPP provider configuration: an SMSC account and how to use it.
#[derive(Debug, Clone)]
pub struct SmppProviderConfig {
    /// The provider configuration's id, carried in every [`ProviderEvent`].
    pub provider_id: Id,
    /// The template of every bind (each session gets a copy).
    pub session: SessionConfig,
    /// How many sessions (binds) to keep to the SMSC; at least 1.
    pub binds: u32,
    /// Receiver binds kept besides `binds` (a transmitter + receiver pair setup: `binds`
    /// transmitters and as many receivers); 0 when `binds` are transceivers.
    pub receivers: u32,
    /// Submits per second over all binds (each part counts); `None` for no limit of our own
    /// (the SMSC's throttling still slows us down).
    pub tps: Option<u32>,
    /// `source_addr_ton`; `None` derives it from the sender: international (1) for `+` or more
    /// than 8 digits, network specific (3) for a short code of up to 8 digits, alphanumeric (5)
    /// otherwise.
    pub source_ton: Option<u8>,
    /// `source_addr_npi`; `None` derives it: ISDN (1) for international numbers, else 0.
    pub source_npi: Option<u8>,
    /// `dest_addr_ton` (recipients are E.164, so international, 1, by default).
    pub dest_ton: u8,
    /// `dest_addr_npi` (ISDN, 1, by default).
    pub dest_npi: u8,
    /// Which alphabet to send in.
    pub data_coding: DataCodingPolicy,
    /// GSM 7-bit packing (most SMSCs take it unpacked).
    pub gsm7_packing: Gsm7Packing,
    /// How long messages are split.
    pub concatenation: ConcatenationPolicy,
    /// `registered_delivery` of a message that asks for a receipt (SMPP 3.4 §5.2.17; default
    /// 0x01: a receipt on the final outcome). Messages that do not ask send 0.
    pub registered_delivery: u8,
    /// What the dispatcher does with an in-doubt message.
    pub in_doubt: InDoubtPolicy,
}

impl SmppProviderConfig {
    /// One transceiver bind per the template, no TPS limit, automatic addressing and
    /// data_coding, 8-bit UDH concatenation, receipts on the final outcome, in-doubt resubmit.
    pub fn new(provider_id: Id, session: SessionConfig) -> Self {
        Self {
            provider_id,
            session,
            binds: 1,
            receivers: 0,
            tps: None,
            source_ton: None,
            source_npi: None,
            dest_ton: 1,
            dest_npi: 1,
            data_coding: DataCodingPolicy::Auto,
            gsm7_packing: Gsm7Packing::Unpacked,
            concatenation: ConcatenationPolicy::Udh8,
            registered_delivery: 0x01,
            in_doubt: InDoubtPolicy::Resubmit,
        }
    }

    /// How this provider splits text ([`ProviderLink::part_layout`]): concatenation,
    /// data_coding policy and GSM packing decide where a text's parts begin and end. Spelled
    /// out rather than derived from `Debug`: it is stored with partly accepted messages.
    pub fn part_layout(&self) -> String {
        let concatenation = match self.concatenation {
            ConcatenationPolicy::Udh8 => "udh8",
            ConcatenationPolicy::Udh16 => "udh16",
            ConcatenationPolicy::Sar => "sar",
            ConcatenationPolicy::MessagePayload => "payload",
        };
        let coding = match self.data_coding {
            DataCodingPolicy::Auto => "auto",
            DataCodingPolicy::Latin1 => "latin1",
            DataCodingPolicy::Ucs2 => "ucs2",
        };
        let packing = match self.gsm7_packing {
            Gsm7Packing::Unpacked => "unpacked",
            Gsm7Packing::Packed => "packed",
        };
        format!("smpp/{concatenation}/{coding}/{packing}")
    }

    /// Checks what the types cannot.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), SmppProviderConfigError> {
        if self.binds == 0 {
            return Err(SmppProviderConfigError::NoBinds);
        }
        if self.tps == Some(0) {
            return Err(SmppProviderConfigError::ZeroTps);
        }
        self.session.validate()?;
        Ok(())
    }
}

/// Counters and gauges of one provider, for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmppProviderStats {
    /// Sessions running (spawned and not yet gone).
    pub live_sessions: u32,
    /// Sessions bound now.
    pub bound_sessions: u32,
    /// Window credit granted by bound sessions and not yet used.
    pub window_credit: u32,
    /// Credit announced to the dispatcher and not yet used.
    pub promised: u32,
    /// Parts waiting for a token or a window slot.
    pub pending_parts: usize,
    /// Parts handed to a session and not yet answered.
    pub in_flight_parts: usize,
    /// Messages taken and not yet answered.
    pub open_messages: usize,
    /// `ESME_RTHROTTLED` / `ESME_RMSGQFUL` seen.
    pub throttle_events: u64,
    /// The bucket's rate now; `None` when unlimited.
    pub rate_tps: Option<u32>,
    /// Sessions restarted after they died.
    pub session_restarts: u64,
    /// Parts sent again after a session answered `NotSent`.
    pub parts_resent: u64,
    /// Each bind (slot) now, in slot order (`sairex status`).
    pub binds: Vec<BindStats>,
}

/// One bind of an SMPP provider, for status reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BindStats {
    /// Bound and taking submits.
    pub bound: bool,
    /// A session runs (connecting or binding when not bound); false while waiting to reconnect.
    pub connected: bool,
    /// Submits sent on this bind and not yet answered.
    pub window_in_use: u32,
    /// The bind's window.
    pub window: u32,
    /// Times its session was restarted since the provider started.
    pub reconnects: u64,
    /// Why its last connection ended, if one did.
    pub last_error: Option<String>,
}

/// Messages to the provider actor.
#[derive(Debug)]
pub enum SmppProviderMsg {
    /// A message to send (what [`ProviderLink::send`] casts).
    Send(Outbound),
    /// Stop taking messages, drain the sessions, answer everything, stop.
    Drain,
    /// The counters now.
    Stats(RpcReplyPort<SmppProviderStats>),
    /// The sessions running now (for supervision tests and admin views).
    Sessions(RpcReplyPort<Vec<SessionRef>>),
    /// Sent by the provider's own tasks and timers; cannot be built outside this module.
    Internal(Internal),
}

/// A message from the provider's own tasks and timers.
#[derive(Debug)]
pub struct Internal(Inner);

#[derive(Debug)]
// A session event (a deliver_sm) is the largest variant; boxing it would cost an allocation
// per receipt.
#[allow(clippy::large_enum_variant)]
enum Inner {
    /// An event of session `slot`, generation `generation`; the permit bounds the mailbox.
    Session {
        slot: usize,
        generation: u64,
        event: SessionEvent,
        _permit: OwnedSemaphorePermit,
    },
    /// The session's event channel closed: it is gone and has reported all it will.
    SessionClosed { slot: usize, generation: u64 },
    /// The restart back-off of `slot` is over.
    Restart { slot: usize },
    /// Announce credit (coalesced).
    Announce,
    /// Refill and throttle-recovery tick.
    Tick,
    /// The dispatcher forgot the credit it had: announce it all again.
    Resync,
}

fn internal(inner: Inner) -> SmppProviderMsg {
    SmppProviderMsg::Internal(Internal(inner))
}

/// The provider actor (its configuration lives in [`SmppProviderArgs`] and then in its state).
#[derive(Debug, Clone, Copy, Default)]
pub struct SmppProvider;

/// What a provider is spawned with.
#[derive(Debug)]
pub struct SmppProviderArgs {
    /// The configuration.
    pub config: SmppProviderConfig,
    /// The dispatcher's channel.
    pub events: ProviderEvents,
    /// Set once the provider stops taking messages; shared with its [`SmppLink`].
    pub closed: Arc<AtomicBool>,
}

impl SmppProvider {
    /// Spawns a provider, unlinked; its sessions start connecting at once.
    ///
    /// # Errors
    /// [`SpawnErr`] when the config is invalid ([`SmppProviderConfig::validate`]).
    pub async fn start(
        config: SmppProviderConfig,
        events: ProviderEvents,
    ) -> Result<SmppProviderHandle, SpawnErr> {
        Self::spawn_with(config, events, None).await
    }

    /// Spawns a provider linked to `supervisor` (the providers' supervisor).
    ///
    /// # Errors
    /// As [`SmppProvider::start`].
    pub async fn start_linked(
        config: SmppProviderConfig,
        events: ProviderEvents,
        supervisor: ActorCell,
    ) -> Result<SmppProviderHandle, SpawnErr> {
        Self::spawn_with(config, events, Some(supervisor)).await
    }

    async fn spawn_with(
        config: SmppProviderConfig,
        events: ProviderEvents,
        supervisor: Option<ActorCell>,
    ) -> Result<SmppProviderHandle, SpawnErr> {
        let closed = Arc::new(AtomicBool::new(false));
        let provider_id = config.provider_id;
        let in_doubt = config.in_doubt;
        let layout = config.part_layout();
        let receipts = config.registered_delivery & 0x03 != 0;
        let args = SmppProviderArgs {
            config,
            events: events.clone(),
            closed: Arc::clone(&closed),
        };
        let (actor, join) = match supervisor {
            Some(sup) => Actor::spawn_linked(None, SmppProvider, args, sup).await?,
            None => Actor::spawn(None, SmppProvider, args).await?,
        };
        let link = Arc::new(SmppLink {
            provider_id,
            actor: actor.clone(),
            closed,
            in_doubt,
            layout,
            receipts,
            events,
        });
        Ok(SmppProviderHandle { actor, join, link })
    }
}

/// The owner's handle: the link for the dispatcher, stats, drain.
#[derive(Debug)]
pub struct SmppProviderHandle {
    actor: ActorRef<SmppProviderMsg>,
    join: JoinHandle<()>,
    link: Arc<SmppLink>,
}

/// The drain did not finish within its grace; the provider was stopped (everything still held
/// was answered `InDoubt` or `NotSent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("provider drain exceeded its grace period; stopped")]
pub struct DrainTimedOut;

/// The provider is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("provider is not running")]
pub struct ProviderGone;

impl SmppProviderHandle {
    /// The dispatcher's link to this provider.
    pub fn link(&self) -> SharedLink {
        Arc::clone(&self.link) as SharedLink
    }

    /// The actor.
    pub fn actor(&self) -> &ActorRef<SmppProviderMsg> {
        &self.actor
    }

    /// The counters now.
    ///
    /// # Errors
    /// [`ProviderGone`] when the actor has stopped or does not answer within a second.
    pub async fn stats(&self) -> Result<SmppProviderStats, ProviderGone> {
        self.ask(SmppProviderMsg::Stats).await
    }

    /// The sessions running now.
    ///
    /// # Errors
    /// [`ProviderGone`] when the actor has stopped or does not answer within a second.
    pub async fn sessions(&self) -> Result<Vec<SessionRef>, ProviderGone> {
        self.ask(SmppProviderMsg::Sessions).await
    }

    async fn ask<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> SmppProviderMsg,
    ) -> Result<T, ProviderGone> {
        match self.actor.call(build, Some(Duration::from_secs(1))).await {
            Ok(ractor::rpc::CallResult::Success(v)) => Ok(v),
            Ok(_) | Err(_) => Err(ProviderGone),
        }
    }

    /// Whether the actor has stopped (drained, or died).
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Drains: no new messages, sessions finish their windows and unbind, everything is
    /// answered, the actor stops. Bounded by `grace`; past it the actor is stopped, which
    /// answers what is left (`InDoubt` if written, else `NotSent`).
    ///
    /// # Errors
    /// [`DrainTimedOut`] when `grace` ran out.
    pub async fn drain(self, grace: Duration) -> Result<(), DrainTimedOut> {
        self.link.closed.store(true, Ordering::Release);
        let _ = self.actor.cast(SmppProviderMsg::Drain);
        let mut join = self.join;
        match timeout(grace, &mut join).await {
            Ok(_) => Ok(()),
            Err(_) => {
                warn!(target: TARGET, provider = self.link.provider_id, "drain grace exceeded; stopping");
                self.actor.stop(Some("drain grace exceeded".into()));
                let _ = timeout(Duration::from_secs(5), join).await;
                Err(DrainTimedOut)
            }
        }
    }
}

/// [`ProviderLink`] of an SMPP provider: casts to the actor.
pub struct SmppLink {
    provider_id: Id,
    actor: ActorRef<SmppProviderMsg>,
    closed: Arc<AtomicBool>,
    in_doubt: InDoubtPolicy,
    /// [`SmppProviderConfig::part_layout`].
    layout: String,
    /// `registered_delivery` asks the SMSC for a receipt.
    receipts: bool,
    /// Only for the case the actor refuses a message without giving it back (it cannot for a
    /// local actor): the message is then answered `NotSent` rather than lost.
    events: ProviderEvents,
}

impl fmt::Debug for SmppLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmppLink")
            .field("provider_id", &self.provider_id)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .field("in_doubt", &self.in_doubt)
            .finish_non_exhaustive()
    }
}

impl ProviderLink for SmppLink {
    fn provider_id(&self) -> Id {
        self.provider_id
    }

    fn send(&self, message: Outbound) -> Result<(), (LinkError, Outbound)> {
        if self.closed.load(Ordering::Acquire) {
            return Err((LinkError::Closed(self.provider_id), message));
        }
        let token = message.token;
        let message_resume = message.resume.clone();
        match self.actor.cast(SmppProviderMsg::Send(message)) {
            Ok(()) => Ok(()),
            Err(MessagingErr::SendErr(SmppProviderMsg::Send(message))) => {
                Err((LinkError::Closed(self.provider_id), message))
            }
            Err(e) => {
                warn!(target: TARGET, provider = self.provider_id, token, error = %e, "send lost by the mailbox; answering NotSent");
                let _ = self.events.try_send(ProviderEvent::Done {
                    provider_id: self.provider_id,
                    token,
                    outcome: SendOutcome::NotSent {
                        reason: "provider mailbox closed".into(),
                        accepted: known_parts(message_resume.as_deref()),
                    },
                });
                Ok(())
            }
        }
    }

    fn in_doubt_policy(&self) -> InDoubtPolicy {
        self.in_doubt
    }

    fn part_layout(&self) -> Option<String> {
        Some(self.layout.clone())
    }

    fn requests_receipts(&self) -> bool {
        self.receipts
    }

    fn resync(&self) {
        let _ = self.actor.cast(internal(Inner::Resync));
    }
}

// === State ===

/// One bind position; its session is replaced when it dies.
#[derive(Debug)]
struct Slot {
    /// Generation of the current (or last) session; events of older ones are ignored.
    generation: u64,
    session: Option<SessionRef>,
    bound: bool,
    /// Window credit granted by the session and not yet used.
    credit: u32,
    /// Restarts since this slot last bound (for the back-off).
    restarts: u32,
    /// Restarts since the provider started (status reports).
    reconnects: u64,
    /// Why its last connection ended (status reports).
    last_error: Option<String>,
    restart_timer: Option<JoinHandle<Result<(), MessagingErr<SmppProviderMsg>>>>,
}

/// The answer for one part.
#[derive(Debug, Clone, PartialEq)]
enum PartResult {
    Accepted(String),
    Refused {
        status: CommandStatus,
        outcome: SubmitOutcome,
    },
    InDoubt,
    NotSent(String),
}

/// A message taken and not yet answered.
#[derive(Debug)]
struct OpenMessage {
    token: u64,
    results: Vec<Option<PartResult>>,
    open: usize,
    /// The concatenation reference its parts carry, when it has several.
    reference: Option<u16>,
}

/// One submit_sm of a message.
#[derive(Debug)]
struct Part {
    key: u64,
    index: usize,
    pdu: SubmitSm,
    attempts: u32,
}

/// A part handed to a session.
#[derive(Debug)]
struct Flight {
    slot: usize,
    generation: u64,
    part: Part,
}

/// The bucket and the throttle state.
#[derive(Debug)]
struct Rate {
    /// The configured TPS.
    configured: Option<u32>,
    /// The bucket; `None` while there is no limit.
    bucket: Option<TokenBucket>,
    /// The rate of the bucket now.
    current: u32,
    /// What recovery grows back to: the configured TPS, or the rate observed at the first
    /// throttle when none is configured.
    ceiling: u32,
    last_throttle: Option<Instant>,
    last_cut: Option<Instant>,
    last_growth: Instant,
    /// Parts sent in the current and the previous second (to estimate an unlimited rate).
    sent_this_second: u32,
    sent_last_second: u32,
    second_started: Instant,
}

fn burst_for(tps: u32) -> u32 {
    (tps / BURST_DIVISOR).max(1)
}

impl Rate {
    fn new(tps: Option<u32>, now: Instant) -> Self {
        Self {
            configured: tps,
            bucket: tps.map(|t| TokenBucket::new(t, burst_for(t), now)),
            current: tps.unwrap_or(0),
            ceiling: tps.unwrap_or(0),
            last_throttle: None,
            last_cut: None,
            last_growth: now,
            sent_this_second: 0,
            sent_last_second: 0,
            second_started: now,
        }
    }

    fn available(&mut self, now: Instant) -> u32 {
        self.bucket.as_mut().map_or(u32::MAX, |b| b.available(now))
    }

    fn take(&mut self, now: Instant) -> bool {
        let ok = self.bucket.as_mut().is_none_or(|b| b.take(1, now).is_ok());
        if ok {
            self.sent_this_second = self.sent_this_second.saturating_add(1);
        }
        ok
    }

    fn roll_second(&mut self, now: Instant) {
        if now.saturating_duration_since(self.second_started) >= Duration::from_secs(1) {
            self.sent_last_second = self.sent_this_second;
            self.sent_this_second = 0;
            self.second_started = now;
        }
    }

    /// A throttle response: halve the rate (at most once per spacing).
    fn throttled(&mut self, now: Instant) {
        self.last_throttle = Some(now);
        if self
            .last_cut
            .is_some_and(|t| now.saturating_duration_since(t) < THROTTLE_CUT_SPACING)
        {
            return;
        }
        self.last_cut = Some(now);
        self.last_growth = now;
        match &mut self.bucket {
            Some(bucket) => {
                self.current = (self.current / 2).max(1);
                bucket.set_rate(self.current, now);
            }
            None => {
                let observed = self.sent_last_second.max(self.sent_this_second).max(1);
                self.ceiling = observed;
                self.current = (observed / 2).max(1);
                self.bucket = Some(TokenBucket::new(self.current, burst_for(observed), now));
            }
        }
        info!(target: TARGET, rate_tps = self.current, "throttled by the SMSC: rate cut");
    }

    /// Grows the rate back by 10 % per quiet second.
    fn recover(&mut self, now: Instant) {
        if self.bucket.is_none() || self.current >= self.ceiling {
            return;
        }
        let quiet = self
            .last_throttle
            .is_none_or(|t| now.saturating_duration_since(t) >= THROTTLE_RECOVERY_STEP);
        if !quiet || now.saturating_duration_since(self.last_growth) < THROTTLE_RECOVERY_STEP {
            return;
        }
        self.last_growth = now;
        let grown = self
            .current
            .saturating_add((self.current / 10).max(1))
            .min(self.ceiling);
        self.current = grown;
        if self.configured.is_none() && grown >= self.ceiling {
            debug!(target: TARGET, "throttle recovered: limit lifted");
            self.bucket = None;
        } else if let Some(bucket) = &mut self.bucket {
            bucket.set_rate(grown, now);
        }
    }

    fn rate(&self) -> Option<u32> {
        self.bucket.as_ref().map(|_| self.current)
    }
}

/// The provider's state (see the [module docs](self)).
pub struct SmppProviderState {
    myself: ActorRef<SmppProviderMsg>,
    config: SmppProviderConfig,
    events: ProviderEvents,
    closed: Arc<AtomicBool>,
    dispatcher_gone: bool,
    permits: Arc<Semaphore>,
    slots: Vec<Slot>,
    next_generation: u64,
    /// Round-robin start for picking a slot.
    next_slot: usize,
    rate: Rate,
    /// Credit announced and not yet used.
    promised: u32,
    /// Whether the dispatcher was last told there is credit (so an outage is announced once).
    available: bool,
    announce_scheduled: bool,
    messages: HashMap<u64, OpenMessage>,
    next_key: u64,
    pending: VecDeque<Part>,
    in_flight: HashMap<u64, Flight>,
    next_part_token: u64,
    draining: bool,
    ticker: Option<JoinHandle<()>>,
    stats: SmppProviderStats,
    metrics: crate::metrics::ProviderMetrics,
}

impl fmt::Debug for SmppProviderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmppProviderState")
            .field("provider_id", &self.config.provider_id)
            .field("promised", &self.promised)
            .field("pending", &self.pending.len())
            .field("in_flight", &self.in_flight.len())
            .field("messages", &self.messages.len())
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

impl Actor for SmppProvider {
    type Msg = SmppProviderMsg;
    type State = SmppProviderState;
    type Arguments = SmppProviderArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SmppProviderMsg>,
        args: SmppProviderArgs,
    ) -> Result<SmppProviderState, ActorProcessingErr> {
        args.config.validate()?;
        let binds =
            usize::try_from(args.config.binds.saturating_add(args.config.receivers)).unwrap_or(1);
        let metrics = crate::metrics::ProviderMetrics::new(args.config.provider_id);
        let now = Instant::now();
        Ok(SmppProviderState {
            myself,
            rate: Rate::new(args.config.tps, now),
            config: args.config,
            events: args.events,
            closed: args.closed,
            dispatcher_gone: false,
            permits: Arc::new(Semaphore::new(FORWARD_PERMITS)),
            slots: (0..binds)
                .map(|_| Slot {
                    generation: 0,
                    session: None,
                    bound: false,
                    credit: 0,
                    restarts: 0,
                    reconnects: 0,
                    last_error: None,
                    restart_timer: None,
                })
                .collect(),
            next_generation: 1,
            next_slot: 0,
            promised: 0,
            available: false,
            announce_scheduled: false,
            messages: HashMap::new(),
            next_key: 0,
            pending: VecDeque::new(),
            in_flight: HashMap::new(),
            next_part_token: 0,
            draining: false,
            ticker: None,
            stats: SmppProviderStats::default(),
            metrics,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SmppProviderMsg>,
        state: &mut SmppProviderState,
    ) -> Result<(), ActorProcessingErr> {
        state.ticker = Some(myself.send_interval(REFILL_TICK, || internal(Inner::Tick)));
        for slot in 0..state.slots.len() {
            if let Err(e) = state.spawn_session(slot).await {
                warn!(target: TARGET, provider = state.config.provider_id, slot, error = %e, "session failed to start; retrying");
                state.schedule_restart(slot);
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SmppProviderMsg>,
        message: SmppProviderMsg,
        state: &mut SmppProviderState,
    ) -> Result<(), ActorProcessingErr> {
        // An announcement changes nothing that calls for another one; scheduling one after it
        // would keep the actor spinning on its own messages.
        let was_announce = matches!(
            message,
            SmppProviderMsg::Internal(Internal(Inner::Announce))
        );
        match message {
            SmppProviderMsg::Send(outbound) => state.on_send(outbound).await,
            SmppProviderMsg::Drain => state.on_drain().await,
            SmppProviderMsg::Stats(reply) => {
                let _ = reply.send(state.snapshot());
            }
            SmppProviderMsg::Sessions(reply) => {
                let sessions = state
                    .slots
                    .iter()
                    .filter_map(|s| s.session.clone())
                    .collect();
                let _ = reply.send(sessions);
            }
            SmppProviderMsg::Internal(Internal(inner)) => state.on_internal(inner).await,
        }
        state.pump().await;
        let binds_up = state.slots.iter().filter(|s| s.bound).count();
        state.metrics.state(state.in_flight.len(), binds_up);
        if state.draining && state.slots.iter().all(|s| s.session.is_none()) {
            state.finish_drain().await;
            myself.stop(None);
        } else if !was_announce {
            state.request_announce();
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<SmppProviderMsg>,
        message: SupervisionEvent,
        state: &mut SmppProviderState,
    ) -> Result<(), ActorProcessingErr> {
        // Not the default (which stops the supervisor with its child): a session's end is
        // handled when its event channel closes, after its last event (module docs).
        match message {
            SupervisionEvent::ActorFailed(who, err) => {
                warn!(target: TARGET, provider = state.config.provider_id, session = %who.get_id(), error = %err, "session failed");
            }
            SupervisionEvent::ActorTerminated(who, _, reason) => {
                debug!(target: TARGET, provider = state.config.provider_id, session = %who.get_id(), ?reason, "session stopped");
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SmppProviderMsg>,
        state: &mut SmppProviderState,
    ) -> Result<(), ActorProcessingErr> {
        state.closed.store(true, Ordering::Release);
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        for slot in &mut state.slots {
            if let Some(t) = slot.restart_timer.take() {
                t.abort();
            }
            if let Some(session) = slot.session.take() {
                session.stop(Some("provider stopped".into()));
            }
        }
        // Stopped from outside (or the drain's grace ran out): answer everything.
        state.finish_drain().await;
        Ok(())
    }
}

impl SmppProviderState {
    // === Sessions ===

    async fn spawn_session(&mut self, index: usize) -> Result<(), SpawnErr> {
        let generation = self.next_generation;
        self.next_generation += 1;
        let window = usize::try_from(self.config.session.window.get()).unwrap_or(usize::MAX);
        let (tx, rx) = mpsc::channel(window.saturating_add(SESSION_EVENT_SLACK));
        let name: Arc<str> = format!("{}/{}", self.config.provider_id, index).into();
        let mut config = self.config.session.clone();
        if u32::try_from(index).unwrap_or(u32::MAX) >= self.config.binds {
            config.bind_mode = BindMode::Receiver;
        }
        let args = SessionArgs {
            config,
            events: tx,
            name,
        };
        let (session, _join) =
            Actor::spawn_linked(None, SessionActor, args, self.myself.get_cell()).await?;
        tokio::spawn(forward(
            rx,
            self.myself.clone(),
            Arc::clone(&self.permits),
            index,
            generation,
        ));
        if let Some(slot) = self.slots.get_mut(index) {
            slot.generation = generation;
            slot.session = Some(session);
            slot.bound = false;
            slot.credit = 0;
        }
        Ok(())
    }

    fn schedule_restart(&mut self, index: usize) {
        if self.draining {
            return;
        }
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let delay = self
            .config
            .session
            .reconnect
            .delay(slot.restarts, rand::random::<f64>());
        slot.restarts = slot.restarts.saturating_add(1);
        slot.restart_timer = Some(
            self.myself
                .send_after(delay, move || internal(Inner::Restart { slot: index })),
        );
    }

    // === Messages from the dispatcher ===

    async fn on_send(&mut self, outbound: Outbound) {
        self.promised = self.promised.saturating_sub(1);
        let token = outbound.token;
        let resume = outbound.resume.as_deref();
        if self.draining {
            return self
                .done(token, not_sent("provider draining", resume))
                .await;
        }
        if !self.slots.iter().any(|s| s.bound) {
            return self.done(token, not_sent("no bind up", resume)).await;
        }
        let key = self.next_key;
        self.next_key = self.next_key.wrapping_add(1);
        let reference = match resume {
            Some(r) => r.reference,
            None => self.fresh_reference(key),
        };
        let (pdus, reference) = match self.build_parts(&outbound, reference) {
            Ok(built) => built,
            Err(outcome) => return self.done(token, outcome).await,
        };
        let results = match initial_results(pdus.len(), resume) {
            Ok(results) => results,
            Err(why) => {
                warn!(target: TARGET, provider = self.config.provider_id, message = outbound.message_id, %why, "parts of a resend do not match; not sent");
                return self.done(token, not_sent(&why, resume)).await;
            }
        };
        let open = results.iter().filter(|r| r.is_none()).count();
        if open == 0 {
            return self.done(token, aggregate(results, reference)).await;
        }
        let parts: Vec<Part> = pdus
            .into_iter()
            .enumerate()
            .filter(|(index, _)| results.get(*index).is_some_and(Option::is_none))
            .map(|(index, pdu)| Part {
                key,
                index,
                pdu,
                attempts: 0,
            })
            .collect();
        self.messages.insert(
            key,
            OpenMessage {
                token,
                results,
                open,
                reference,
            },
        );
        self.pending.extend(parts);
    }

    /// A concatenation reference for a new message. It only has to differ between messages in
    /// flight together to the same handset; the low bits of a per-provider counter do.
    fn fresh_reference(&self, key: u64) -> u16 {
        #[allow(clippy::cast_possible_truncation)]
        match self.config.concatenation {
            ConcatenationPolicy::Udh8 => u16::from(key as u8),
            _ => key as u16,
        }
    }

    /// The submit_sm of each part, carrying `reference`, and the reference when the parts are
    /// concatenated; or the refusal when the message cannot be encoded.
    fn build_parts(
        &self,
        m: &Outbound,
        reference: u16,
    ) -> Result<(Vec<SubmitSm>, Option<u16>), SendOutcome> {
        let c = &self.config;
        let to = m.to.strip_prefix('+').unwrap_or(&m.to);
        let destination_addr = COctetString::from_str_checked(to)
            .map_err(|e| rejected(CommandStatus::ESME_RINVDSTADR, format!("to: {e}")))?;
        let (auto_ton, auto_npi, from) = source_addressing(&m.from);
        let source_addr = COctetString::from_str_checked(from)
            .map_err(|e| rejected(CommandStatus::ESME_RINVSRCADR, format!("from: {e}")))?;
        let concatenation = match c.concatenation {
            ConcatenationPolicy::Udh8 => Concatenation::Udh8 {
                // Only a resend split another way (it would not match anyway) names more.
                reference: u8::try_from(reference).map_err(|_| {
                    not_sent(
                        &format!("reference {reference} does not fit an 8-bit UDH"),
                        m.resume.as_deref(),
                    )
                })?,
            },
            ConcatenationPolicy::Udh16 => Concatenation::Udh16 { reference },
            ConcatenationPolicy::Sar => Concatenation::Sar { reference },
            ConcatenationPolicy::MessagePayload => Concatenation::MessagePayload,
        };
        let encoding = match c.data_coding {
            DataCodingPolicy::Auto => None,
            DataCodingPolicy::Latin1 if Encoding::Latin1.can_encode(&m.body) => {
                Some(Encoding::Latin1)
            }
            DataCodingPolicy::Latin1 | DataCodingPolicy::Ucs2 => Some(Encoding::Ucs2),
        };
        let mut options = SplitOptions::new(concatenation).with_packing(c.gsm7_packing);
        options.encoding = encoding;
        let segments = split(&m.body, &options)
            .map_err(|e| rejected(CommandStatus::ESME_RINVMSGLEN, format!("text: {e}")))?;
        let template = SubmitSm {
            source_addr_ton: c.source_ton.unwrap_or(auto_ton),
            source_addr_npi: c.source_npi.unwrap_or(auto_npi),
            source_addr,
            dest_addr_ton: c.dest_ton,
            dest_addr_npi: c.dest_npi,
            destination_addr,
            registered_delivery: if m.receipt { c.registered_delivery } else { 0 },
            ..SubmitSm::default()
        };
        let pdus = segments
            .iter()
            .map(|segment| {
                let mut pdu = template.clone();
                pdu.apply_segment(segment)
                    .map_err(|e| rejected(CommandStatus::ESME_RINVMSGLEN, format!("part: {e}")))?;
                Ok(pdu)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let concatenated = pdus.len() > 1 && c.concatenation != ConcatenationPolicy::MessagePayload;
        Ok((pdus, concatenated.then_some(reference)))
    }

    async fn on_drain(&mut self) {
        if self.draining {
            return;
        }
        info!(target: TARGET, provider = self.config.provider_id, "draining");
        self.draining = true;
        self.closed.store(true, Ordering::Release);
        self.fail_pending("provider draining").await;
        if self.available {
            self.available = false;
            self.promised = 0;
            self.emit(ProviderEvent::Unavailable {
                provider_id: self.config.provider_id,
            })
            .await;
        }
        for slot in &mut self.slots {
            if let Some(t) = slot.restart_timer.take() {
                t.abort();
            }
            slot.bound = false;
            slot.credit = 0;
            if let Some(session) = &slot.session
                && session.cast(SessionMsg::Drain).is_err()
            {
                // Already gone; its forwarder reports the close.
                debug!(target: TARGET, "session gone before its drain");
            }
        }
    }

    // === Internal ===

    async fn on_internal(&mut self, inner: Inner) {
        match inner {
            Inner::Resync => {
                // Messages already on their way count against nothing now; a few more than
                // the windows may then wait in `pending`, which is bounded by the credit given.
                self.promised = 0;
                self.available = false;
                self.announce().await;
            }
            Inner::Session {
                slot,
                generation,
                event,
                _permit,
            } => {
                if self
                    .slots
                    .get(slot)
                    .is_some_and(|s| s.generation == generation)
                {
                    self.on_session_event(slot, generation, event).await;
                } else if let SessionEvent::Submitted { token, result } = event {
                    // A stale session's late answer: only counts if the part is still its.
                    self.on_submitted(token, generation, result).await;
                }
            }
            Inner::SessionClosed { slot, generation } => {
                self.on_session_closed(slot, generation).await;
            }
            Inner::Restart { slot } => {
                let idle = self.slots.get_mut(slot).is_some_and(|s| {
                    s.restart_timer = None;
                    s.session.is_none()
                });
                if idle && !self.draining {
                    self.stats.session_restarts += 1;
                    if let Some(s) = self.slots.get_mut(slot) {
                        s.reconnects += 1;
                    }
                    self.metrics.reconnect();
                    info!(target: TARGET, provider = self.config.provider_id, slot, "restarting session");
                    if let Err(e) = self.spawn_session(slot).await {
                        warn!(target: TARGET, provider = self.config.provider_id, slot, error = %e, "session restart failed");
                        self.schedule_restart(slot);
                    }
                }
            }
            Inner::Announce => {
                self.announce_scheduled = false;
                self.announce().await;
            }
            Inner::Tick => {
                let now = Instant::now();
                self.rate.roll_second(now);
                self.rate.recover(now);
                // `handle` pumps and announces after this: the tokens that came back.
            }
        }
    }

    async fn on_session_event(&mut self, index: usize, generation: u64, event: SessionEvent) {
        match event {
            SessionEvent::Bound { smsc_system_id } => {
                debug!(target: TARGET, provider = self.config.provider_id, slot = index, smsc = %smsc_system_id, "session bound");
                if let Some(slot) = self.slots.get_mut(index) {
                    slot.bound = !self.draining;
                    slot.credit = 0;
                    slot.restarts = 0;
                }
            }
            SessionEvent::WindowFree(n) => {
                if let Some(slot) = self.slots.get_mut(index)
                    && slot.bound
                {
                    slot.credit = slot.credit.saturating_add(n);
                }
            }
            SessionEvent::Submitted { token, result } => {
                self.on_submitted(token, generation, result).await;
            }
            SessionEvent::Throttled { status } => {
                self.stats.throttle_events += 1;
                self.metrics.throttled();
                debug!(target: TARGET, provider = self.config.provider_id, %status, "throttled");
                self.rate.throttled(Instant::now());
            }
            SessionEvent::Deliver { deliver, ack } => {
                // The ack travels on: the session answers once the dispatcher stored it.
                self.emit(ProviderEvent::Deliver {
                    provider_id: self.config.provider_id,
                    deliver: Box::new(deliver),
                    ack,
                })
                .await;
            }
            SessionEvent::Disconnected { reason } => {
                debug!(target: TARGET, provider = self.config.provider_id, slot = index, ?reason, "session disconnected");
                if !matches!(
                    reason,
                    DisconnectReason::Drained | DisconnectReason::Stopped
                ) && let Some(slot) = self.slots.get_mut(index)
                {
                    slot.last_error = Some(format!("{reason:?}"));
                }
                self.unbind_slot(index);
                self.no_bind_check().await;
            }
        }
    }

    /// Marks a slot unusable until it binds again.
    fn unbind_slot(&mut self, index: usize) {
        if let Some(slot) = self.slots.get_mut(index) {
            slot.bound = false;
            slot.credit = 0;
        }
    }

    /// With no session bound, parts waiting here cannot go anywhere: answer them.
    async fn no_bind_check(&mut self) {
        if !self.slots.iter().any(|s| s.bound) {
            self.fail_pending("no bind up").await;
        }
    }

    async fn on_submitted(&mut self, token: u64, generation: u64, result: SubmitResult) {
        let Some(flight) = self.in_flight.remove(&token) else {
            debug!(target: TARGET, provider = self.config.provider_id, token, "result for an unknown part ignored");
            return;
        };
        if flight.generation != generation {
            // Not from the session it was given to: keep waiting for that one.
            self.in_flight.insert(token, flight);
            return;
        }
        let part = flight.part;
        let result = match result {
            SubmitResult::Accepted { message_id } => PartResult::Accepted(message_id.to_string()),
            SubmitResult::Refused { status, outcome } => PartResult::Refused { status, outcome },
            SubmitResult::InDoubt => PartResult::InDoubt,
            SubmitResult::NotSent { reason } => {
                // The session cannot take submits now; it says so with `Disconnected` soon,
                // but do not give it this part again meanwhile.
                self.unbind_slot(flight.slot);
                if reason == NotSentReason::Overloaded {
                    warn!(target: TARGET, provider = self.config.provider_id, slot = flight.slot, "session overloaded: credit out of step");
                }
                if !self.draining
                    && part.attempts < MAX_PART_ATTEMPTS
                    && self.slots.iter().any(|s| s.bound)
                {
                    self.stats.parts_resent += 1;
                    self.pending.push_front(part);
                    return;
                }
                PartResult::NotSent(format!("{reason:?}"))
            }
        };
        self.part_done(part.key, part.index, result).await;
    }

    async fn on_session_closed(&mut self, index: usize, generation: u64) {
        let current = self
            .slots
            .get(index)
            .is_some_and(|s| s.generation == generation);
        // Whatever it did not answer may have been written.
        let orphans: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.slot == index && f.generation == generation)
            .map(|(t, _)| *t)
            .collect();
        for token in orphans {
            if let Some(flight) = self.in_flight.remove(&token) {
                self.part_done(flight.part.key, flight.part.index, PartResult::InDoubt)
                    .await;
            }
        }
        if !current {
            return;
        }
        if let Some(slot) = self.slots.get_mut(index) {
            slot.session = None;
            slot.bound = false;
            slot.credit = 0;
        }
        if self.draining {
            return;
        }
        warn!(target: TARGET, provider = self.config.provider_id, slot = index, "session gone; restart scheduled");
        self.no_bind_check().await;
        self.schedule_restart(index);
    }

    // === Sending ===

    /// Hands waiting parts to sessions with credit while tokens last.
    async fn pump(&mut self) {
        if self.draining {
            return;
        }
        let now = Instant::now();
        while !self.pending.is_empty() {
            let Some(index) = self.pick_slot() else { break };
            if !self.rate.take(now) {
                break;
            }
            let Some(part) = self.pending.pop_front() else {
                break;
            };
            let Some(slot) = self.slots.get_mut(index) else {
                self.pending.push_front(part);
                break;
            };
            let Some(session) = slot.session.clone() else {
                slot.bound = false;
                self.pending.push_front(part);
                continue;
            };
            slot.credit -= 1;
            let token = self.next_part_token;
            self.next_part_token = self.next_part_token.wrapping_add(1);
            let generation = slot.generation;
            let part = Part {
                attempts: part.attempts + 1,
                ..part
            };
            let pdu = part.pdu.clone();
            self.in_flight.insert(
                token,
                Flight {
                    slot: index,
                    generation,
                    part,
                },
            );
            if session.cast(SessionMsg::Submit { token, pdu }).is_err() {
                // The session is stopping; its close will come. The part was not sent.
                self.unbind_slot(index);
                if let Some(flight) = self.in_flight.remove(&token) {
                    self.pending.push_front(flight.part);
                }
            }
        }
        self.no_bind_check().await;
    }

    /// A bound slot with credit, round robin.
    fn pick_slot(&mut self) -> Option<usize> {
        let n = self.slots.len();
        let found = (0..n)
            .map(|i| (self.next_slot + i) % n)
            .find(|&i| self.slots[i].bound && self.slots[i].credit > 0)?;
        self.next_slot = (found + 1) % n;
        Some(found)
    }

    // === Credit ===

    fn request_announce(&mut self) {
        if !self.announce_scheduled && !self.draining {
            self.announce_scheduled = self.myself.cast(internal(Inner::Announce)).is_ok();
        }
    }

    async fn announce(&mut self) {
        if self.draining {
            return;
        }
        if !self.slots.iter().any(|s| s.bound) {
            if self.available {
                self.available = false;
                self.promised = 0;
                self.emit(ProviderEvent::Unavailable {
                    provider_id: self.config.provider_id,
                })
                .await;
            }
            return;
        }
        let window: u32 = self
            .slots
            .iter()
            .filter(|s| s.bound)
            .fold(0u32, |sum, s| sum.saturating_add(s.credit));
        let capacity = window.min(self.rate.available(Instant::now()));
        let owed = self
            .promised
            .saturating_add(u32::try_from(self.pending.len()).unwrap_or(u32::MAX));
        if capacity > owed {
            let n = capacity - owed;
            self.promised += n;
            self.available = true;
            self.emit(ProviderEvent::Credit {
                provider_id: self.config.provider_id,
                n,
            })
            .await;
        }
    }

    // === Answers ===

    async fn part_done(&mut self, key: u64, index: usize, result: PartResult) {
        let Some(message) = self.messages.get_mut(&key) else {
            return;
        };
        let Some(slot) = message.results.get_mut(index) else {
            return;
        };
        if slot.is_none() {
            message.open -= 1;
        }
        *slot = Some(result);
        if message.open > 0 {
            return;
        }
        if let Some(message) = self.messages.remove(&key) {
            let outcome = aggregate(message.results, message.reference);
            self.done(message.token, outcome).await;
        }
    }

    /// Answers every part waiting here `NotSent`.
    async fn fail_pending(&mut self, reason: &str) {
        while let Some(part) = self.pending.pop_front() {
            self.part_done(part.key, part.index, PartResult::NotSent(reason.into()))
                .await;
        }
    }

    /// Answers everything still held: written parts `InDoubt`, the rest `NotSent`.
    async fn finish_drain(&mut self) {
        self.fail_pending("provider stopped").await;
        let flights: Vec<Flight> = self.in_flight.drain().map(|(_, f)| f).collect();
        for flight in flights {
            self.part_done(flight.part.key, flight.part.index, PartResult::InDoubt)
                .await;
        }
        // Parts answered by nobody cannot remain, but never leave a message unanswered.
        let keys: Vec<u64> = self.messages.keys().copied().collect();
        for key in keys {
            if let Some(message) = self.messages.remove(&key) {
                let results = message
                    .results
                    .into_iter()
                    .map(|r| r.or(Some(PartResult::InDoubt)))
                    .collect();
                self.done(message.token, aggregate(results, message.reference))
                    .await;
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
            if !self.draining {
                // Cast, not a call: `on_drain` emits too.
                let _ = self.myself.cast(SmppProviderMsg::Drain);
            }
        }
    }

    fn snapshot(&mut self) -> SmppProviderStats {
        SmppProviderStats {
            live_sessions: count(self.slots.iter().filter(|s| s.session.is_some())),
            bound_sessions: count(self.slots.iter().filter(|s| s.bound)),
            window_credit: self
                .slots
                .iter()
                .filter(|s| s.bound)
                .fold(0, |a, s| a.saturating_add(s.credit)),
            promised: self.promised,
            pending_parts: self.pending.len(),
            in_flight_parts: self.in_flight.len(),
            open_messages: self.messages.len(),
            rate_tps: self.rate.rate(),
            binds: self
                .slots
                .iter()
                .enumerate()
                .map(|(index, s)| BindStats {
                    bound: s.bound,
                    connected: s.session.is_some(),
                    window_in_use: count(
                        self.in_flight
                            .values()
                            .filter(|f| f.slot == index && f.generation == s.generation),
                    ),
                    window: self.config.session.window.get(),
                    reconnects: s.reconnects,
                    last_error: s.last_error.clone(),
                })
                .collect(),
            ..self.stats.clone()
        }
    }
}

fn count<T>(it: impl Iterator<Item = T>) -> u32 {
    u32::try_from(it.count()).unwrap_or(u32::MAX)
}

/// Forwards one session's events to the provider, then says it closed (module docs).
async fn forward(
    mut rx: mpsc::Receiver<SessionEvent>,
    provider: ActorRef<SmppProviderMsg>,
    permits: Arc<Semaphore>,
    slot: usize,
    generation: u64,
) {
    while let Some(event) = rx.recv().await {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let msg = internal(Inner::Session {
            slot,
            generation,
            event,
            _permit: permit,
        });
        if provider.cast(msg).is_err() {
            // The provider is gone; dropping `rx` makes the session drain itself.
            return;
        }
    }
    let _ = provider.cast(internal(Inner::SessionClosed { slot, generation }));
}

/// TON, NPI and the address to send for a sender (see [`SmppProviderConfig::source_ton`]).
fn source_addressing(from: &str) -> (u8, u8, &str) {
    let (plus, digits) = match from.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, from),
    };
    let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    match (numeric, plus || digits.len() > 8) {
        (true, true) => (1, 1, digits),
        (true, false) => (3, 0, digits),
        (false, _) => (5, 0, from),
    }
}

/// What a resend says was accepted before (nothing for a first send).
fn known_parts(resume: Option<&Resume>) -> AcceptedParts {
    resume.map_or_else(AcceptedParts::none, |r| AcceptedParts {
        ids: r.ids.clone(),
        reference: Some(r.reference),
    })
}

fn not_sent(reason: &str, resume: Option<&Resume>) -> SendOutcome {
    SendOutcome::NotSent {
        reason: reason.into(),
        accepted: known_parts(resume),
    }
}

fn rejected(status: CommandStatus, error: String) -> SendOutcome {
    SendOutcome::Refused {
        status,
        outcome: SubmitOutcome::Rejected,
        error_code: Some(error),
        accepted: AcceptedParts::none(),
    }
}

/// The results a message of `parts` parts starts with: for a resend, the parts accepted
/// before are answered already (with their ids) and only the others are to send.
///
/// # Errors
/// When the resend names another number of parts than the text splits into here: its parts
/// would not join the earlier ones.
fn initial_results(
    parts: usize,
    resume: Option<&Resume>,
) -> Result<Vec<Option<PartResult>>, String> {
    let Some(resume) = resume else {
        return Ok(vec![None; parts]);
    };
    if resume.ids.len() != parts {
        return Err(format!(
            "the text splits into {parts} part(s) here, {} before",
            resume.ids.len()
        ));
    }
    Ok(resume
        .ids
        .iter()
        .map(|id| id.clone().map(PartResult::Accepted))
        .collect())
}

/// One outcome for a message from its parts' results (module docs). Every answer but
/// `Accepted` gives the accepted parts by position, so only the others are sent again.
fn aggregate(results: Vec<Option<PartResult>>, reference: Option<u16>) -> SendOutcome {
    let mut ids = Vec::with_capacity(results.len());
    let mut refused = None;
    let mut in_doubt = false;
    let mut not_sent = None;
    for result in results {
        let id = match result.unwrap_or(PartResult::InDoubt) {
            PartResult::Accepted(id) => Some(id),
            PartResult::Refused { status, outcome } => {
                refused.get_or_insert((status, outcome));
                None
            }
            PartResult::InDoubt => {
                in_doubt = true;
                None
            }
            PartResult::NotSent(reason) => {
                not_sent.get_or_insert(reason);
                None
            }
        };
        ids.push(id);
    }
    let accepted = AcceptedParts { ids, reference };
    if let Some((status, outcome)) = refused {
        return SendOutcome::Refused {
            status,
            outcome,
            error_code: None,
            accepted,
        };
    }
    if in_doubt {
        return SendOutcome::InDoubt { accepted };
    }
    match not_sent {
        // The parts not sent never left: resending them alone duplicates nothing.
        Some(reason) => SendOutcome::NotSent { reason, accepted },
        None => SendOutcome::Accepted {
            provider_msg_ids: accepted.into_ids(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(id: &str) -> Option<PartResult> {
        Some(PartResult::Accepted(id.into()))
    }

    fn parts(ids: &[Option<&str>], reference: Option<u16>) -> AcceptedParts {
        AcceptedParts {
            ids: ids.iter().map(|id| id.map(str::to_owned)).collect(),
            reference,
        }
    }

    #[test]
    fn aggregate_follows_the_rules() {
        assert_eq!(
            aggregate(vec![acc("a"), acc("b")], Some(7)),
            SendOutcome::Accepted {
                provider_msg_ids: vec!["a".into(), "b".into()]
            }
        );
        let throttled = Some(PartResult::Refused {
            status: CommandStatus::ESME_RTHROTTLED,
            outcome: SubmitOutcome::Throttled,
        });
        assert_eq!(
            aggregate(
                vec![acc("a"), throttled, Some(PartResult::InDoubt)],
                Some(7)
            ),
            SendOutcome::Refused {
                status: CommandStatus::ESME_RTHROTTLED,
                outcome: SubmitOutcome::Throttled,
                error_code: None,
                accepted: parts(&[Some("a"), None, None], Some(7)),
            }
        );
        assert_eq!(
            aggregate(vec![Some(PartResult::InDoubt), acc("b")], Some(7)),
            SendOutcome::InDoubt {
                accepted: parts(&[None, Some("b")], Some(7))
            },
            "positions are kept: the second part is the accepted one"
        );
        assert_eq!(
            aggregate(
                vec![
                    Some(PartResult::NotSent("x".into())),
                    Some(PartResult::NotSent("y".into()))
                ],
                Some(7)
            ),
            SendOutcome::NotSent {
                reason: "x".into(),
                accepted: parts(&[None, None], Some(7))
            }
        );
        assert_eq!(
            aggregate(
                vec![acc("a"), Some(PartResult::NotSent("x".into()))],
                Some(7)
            ),
            SendOutcome::NotSent {
                reason: "x".into(),
                accepted: parts(&[Some("a"), None], Some(7))
            },
            "the part not sent never left: sending it alone again duplicates nothing"
        );
    }

    #[test]
    fn a_resend_sends_only_the_missing_parts_and_answers_with_every_id() {
        let resume = Resume {
            reference: 9,
            ids: vec![Some("a".into()), None, Some("c".into())],
        };
        let mut results = initial_results(3, Some(&resume)).unwrap();
        let to_send: Vec<usize> = (0..3).filter(|&i| results[i].is_none()).collect();
        assert_eq!(to_send, vec![1], "parts 1 and 3 were accepted before");
        results[1] = acc("b");
        assert_eq!(
            aggregate(results, Some(9)),
            SendOutcome::Accepted {
                provider_msg_ids: vec!["a".into(), "b".into(), "c".into()]
            },
            "the earlier ids in their places"
        );

        let mut results = initial_results(3, Some(&resume)).unwrap();
        results[1] = Some(PartResult::Refused {
            status: CommandStatus::ESME_RTHROTTLED,
            outcome: SubmitOutcome::Throttled,
        });
        assert_eq!(
            aggregate(results, Some(9)),
            SendOutcome::Refused {
                status: CommandStatus::ESME_RTHROTTLED,
                outcome: SubmitOutcome::Throttled,
                error_code: None,
                accepted: parts(&[Some("a"), None, Some("c")], Some(9)),
            },
            "a refusal of the resent part still reports the earlier ones"
        );

        assert_eq!(initial_results(2, None).unwrap(), vec![None, None]);
        assert!(
            initial_results(2, Some(&resume)).is_err(),
            "split into 2 here, 3 before: the parts would not join"
        );
    }

    #[test]
    fn the_layout_names_what_decides_where_parts_split() {
        let session = SessionConfig::new("127.0.0.1".to_owned(), 2775);
        let mut config = SmppProviderConfig::new(1, session);
        assert_eq!(config.part_layout(), "smpp/udh8/auto/unpacked");
        config.concatenation = ConcatenationPolicy::Udh16;
        config.data_coding = DataCodingPolicy::Ucs2;
        assert_eq!(config.part_layout(), "smpp/udh16/ucs2/unpacked");
    }

    #[test]
    fn source_addressing_by_form() {
        assert_eq!(source_addressing("+923001234567"), (1, 1, "923001234567"));
        assert_eq!(source_addressing("923001234567"), (1, 1, "923001234567"));
        assert_eq!(source_addressing("8080"), (3, 0, "8080"));
        assert_eq!(source_addressing("Sairex"), (5, 0, "Sairex"));
    }

    #[test]
    fn throttle_halves_then_recovers_by_a_tenth_per_quiet_second() {
        let t0 = Instant::now();
        let mut rate = Rate::new(Some(100), t0);
        rate.throttled(t0);
        assert_eq!(rate.rate(), Some(50));
        rate.throttled(t0 + Duration::from_millis(100));
        assert_eq!(rate.rate(), Some(50), "one cut per burst");
        rate.throttled(t0 + Duration::from_millis(600));
        assert_eq!(rate.rate(), Some(25));
        let t1 = t0 + Duration::from_millis(600);
        rate.recover(t1 + Duration::from_millis(500));
        assert_eq!(rate.rate(), Some(25), "not while throttling is recent");
        rate.recover(t1 + Duration::from_secs(1));
        assert_eq!(rate.rate(), Some(27));
        let mut t = t1 + Duration::from_secs(1);
        for _ in 0..40 {
            t += Duration::from_secs(1);
            rate.recover(t);
        }
        assert_eq!(
            rate.rate(),
            Some(100),
            "back to the configured rate, not above"
        );
        for _ in 0..10 {
            t += Duration::from_secs(1);
            rate.throttled(t);
        }
        assert_eq!(rate.rate(), Some(1), "floor of 1 TPS");
    }

    #[test]
    fn an_unlimited_rate_is_limited_by_a_throttle_and_lifted_after() {
        let t0 = Instant::now();
        let mut rate = Rate::new(None, t0);
        for _ in 0..80 {
            assert!(rate.take(t0));
        }
        rate.throttled(t0);
        assert_eq!(rate.rate(), Some(40));
        let mut t = t0;
        for _ in 0..20 {
            t += Duration::from_secs(1);
            rate.recover(t);
        }
        assert_eq!(rate.rate(), None);
    }
}
