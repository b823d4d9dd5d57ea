//! One SMPP client session: a bind to a carrier or SMSC, as a ractor actor.
//!
//! [`SessionActor`] owns the state machine (connect → bind → bound → unbinding → closed), the
//! window and the keepalive; a reader and a writer task do the socket I/O (`io`). The owner (the
//! provider layer) talks to it with [`SessionMsg`] and hears back on one bounded channel of
//! [`SessionEvent`]s.
//!
//! # Contract with the owner
//! - **Every [`SessionMsg::Submit`] gets exactly one [`SessionEvent::Submitted`]**, carrying its
//!   `token` and a [`SubmitResult`]: `Accepted { message_id }`, `Refused { status, outcome }`
//!   (the SMSC answered with an error status or a generic_nack; [`classify`](crate::classify)
//!   says what it means), `InDoubt` (written but never answered: it may have reached the
//!   carrier), or `NotSent { reason }` (certainly never written). Nothing disappears: a session
//!   that dies or is stopped reports everything it still holds.
//! - **Credit.** Work is pulled, never pushed (style §3.6). While bound, the session grants
//!   credit with [`SessionEvent::WindowFree`]`(n)`: the owner may send `n` more submits. A bind
//!   starts with the whole window; every slot a response or timeout frees is granted again.
//!   [`SessionEvent::Disconnected`] voids all credit. A submit beyond credit waits in a backlog
//!   no longer than the window, and past that is answered `NotSent { Overloaded }`, so neither
//!   a careless owner nor the unbounded ractor mailbox can grow memory without bound.
//! - **Back-pressure on incoming traffic.** Events are sent with `send().await`: while the
//!   owner's channel is full the actor waits, the reader stops after
//!   [`READ_AHEAD_PDUS`] PDUs, and TCP pushes back on the SMSC. The owner
//!   must keep receiving.
//! - **deliver_sm** (receipts and MOs) is handed on as [`SessionEvent::Deliver`] with a
//!   [`DeliverAck`], and answered with deliver_sm_resp only once the owner completes that ack
//!   (after its store write): the status is the ack's [`DeliverStatus`] (`ESME_ROK`,
//!   `ESME_RX_T_APPN` so the SMSC tries again, `ESME_RX_P_APPN`); an ack dropped uncompleted
//!   answers `ESME_RX_T_APPN`. The session does not wait for it: a small task per deliver_sm
//!   awaits the ack and queues the resp on the writer, holding the read-ahead permit of that
//!   PDU meanwhile, so at most [`READ_AHEAD_PDUS`] deliver_sm of a connection are unanswered
//!   and past that the reader stops (TCP pushes back on the SMSC). If the connection is gone
//!   when the ack comes, nothing is answered and the SMSC redelivers. A full owner channel also
//!   delays the answer. When the owner is gone, deliver_sm is answered `ESME_RX_T_APPN`.
//! - **Throttling.** `ESME_RTHROTTLED` / `ESME_RMSGQFUL` give a `Refused { outcome: Throttled }`
//!   and, just before it, [`SessionEvent::Throttled`], so the owner can slow the provider down.
//!
//! # Connection loss
//! A bind failure, an I/O error, the peer closing, corrupt framing, an unanswered enquire_link
//! or an unbind from the peer ends the connection: requests the writer had handed to the
//! socket are reported `InDoubt`, those still queued `NotSent`, then `Disconnected { reason }`;
//! the session reconnects after a jittered exponential back-off, reset once a bind succeeds.
//!
//! # Drain
//! [`SessionMsg::Drain`]: new submits get `NotSent { Draining }`, the backlog too; the session
//! waits for the window to empty (bounded by `drain_grace`; responses still time out as usual),
//! sends unbind, waits for unbind_resp (bounded by `response_timeout`), closes, reports anything
//! left as `InDoubt`, sends `Disconnected { Drained }` and stops. Stopping the actor by other
//! means (`stop`) reports the same way with a best-effort unbind; `kill` reports nothing.
//!
//! # Layout
//! - [`config`]: [`SessionConfig`], [`BindMode`], [`TlsSettings`].
//! - [`keepalive`]: when to send enquire_link and when its absence means death (pure).
//! - [`sequence`], [`window`]: sequence numbers and the outstanding-request window (pure).
//! - `io`: connect, reader task, writer task.

mod ack;
pub mod config;
mod io;
pub mod keepalive;
pub mod sequence;
pub mod window;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, SpawnErr};
use sairex_pdu::{
    COctetString, Command, CommandId, CommandStatus, DeliverSm, DeliverSmResp, InvalidPdu, Pdu,
    SubmitSm,
};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_rustls::TlsConnector;
use tracing::{debug, info, warn};

use crate::classify::{SubmitOutcome, classify_submit_status};

pub use ack::{DeliverAck, DeliverStatus};
pub use config::{BindMode, SessionConfig, SessionConfigError, TlsSettings};
pub use io::READ_AHEAD_PDUS;
use io::{Link, Transport};
use keepalive::{Keepalive, KeepaliveAction};
use sequence::SequenceAllocator;
use window::{Window, WindowError};

/// Tracing target of this module.
const TARGET: &str = "sairex::engine::session";
/// Shortest tick: timeouts are checked at least this far apart.
const MIN_TICK: Duration = Duration::from_millis(5);
/// Longest tick: timeouts fire at most this late.
const MAX_TICK: Duration = Duration::from_secs(1);

/// The session actor's reference.
pub type SessionRef = ActorRef<SessionMsg>;

/// The session actor (its configuration lives in [`SessionArgs`] and then in its state).
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionActor;

impl SessionActor {
    /// Spawns a session, unlinked; it starts connecting at once.
    ///
    /// # Errors
    /// [`SpawnErr`] when the config is invalid (see [`SessionConfig::validate`]).
    pub async fn start(args: SessionArgs) -> Result<(SessionRef, JoinHandle<()>), SpawnErr> {
        Actor::spawn(None, SessionActor, args).await
    }
}

/// What a session is spawned with.
#[derive(Debug)]
pub struct SessionArgs {
    /// The bind.
    pub config: SessionConfig,
    /// Where every [`SessionEvent`] goes. Size it at least at the window: every outstanding
    /// submit may be reported at once when a connection dies.
    pub events: mpsc::Sender<SessionEvent>,
    /// A name for the logs (for example `provider/bind-index`).
    pub name: Arc<str>,
}

/// Messages to a session.
#[derive(Debug)]
pub enum SessionMsg {
    /// Submit one message. Its result arrives as [`SessionEvent::Submitted`] with `token`.
    Submit {
        /// The owner's id for this submission, echoed in the result.
        token: u64,
        /// The submit_sm to send (its sequence number is the session's business).
        pdu: SubmitSm,
    },
    /// Stop taking work, finish what is outstanding (bounded), unbind and stop.
    Drain,
    /// Sent by the session's own tasks and timers; cannot be built outside this crate.
    Internal(Internal),
}

/// A message from the session's own tasks and timers.
#[derive(Debug)]
pub struct Internal(Inner);

#[derive(Debug)]
// A decoded PDU is the largest variant; boxing it would cost an allocation per PDU.
#[allow(clippy::large_enum_variant)]
enum Inner {
    /// The connect task finished.
    Connected { conn: u64, transport: Transport },
    /// The connect task failed.
    ConnectFailed { conn: u64, kind: std::io::ErrorKind },
    /// The reader decoded a frame. The permit bounds how many wait in the mailbox.
    PduReceived {
        conn: u64,
        item: Result<Command, InvalidPdu>,
        permit: OwnedSemaphorePermit,
    },
    /// The reader or the writer stopped.
    ConnectionLost { conn: u64, reason: DisconnectReason },
    /// Time to check timeouts and keepalive.
    Tick,
    /// The back-off is over.
    Reconnect,
}

fn internal(inner: Inner) -> SessionMsg {
    SessionMsg::Internal(Internal(inner))
}

/// What a session tells its owner.
// A deliver_sm is the largest variant; boxing it would cost an allocation per receipt.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The bind succeeded; credit follows as [`SessionEvent::WindowFree`].
    Bound {
        /// The SMSC's `system_id` from the bind response.
        smsc_system_id: COctetString<16>,
    },
    /// The owner may send this many more submits.
    WindowFree(u32),
    /// The result of one [`SessionMsg::Submit`].
    Submitted {
        /// The submission's token.
        token: u64,
        /// What became of it.
        result: SubmitResult,
    },
    /// The SMSC answered `ESME_RTHROTTLED` or `ESME_RMSGQFUL`: slow down.
    Throttled {
        /// The status seen.
        status: CommandStatus,
    },
    /// A deliver_sm: a receipt ([`DeliverSm::is_receipt`]) or a mobile-originated message.
    /// The session answers it with deliver_sm_resp once `ack` is completed (or dropped).
    Deliver {
        /// The PDU as received.
        deliver: DeliverSm,
        /// Complete it once the deliver_sm is durable (or will never be).
        ack: DeliverAck,
    },
    /// The connection ended (all credit is void); unless the reason is `Drained` or `Stopped`,
    /// a reconnect follows after the back-off.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

/// What became of one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitResult {
    /// submit_sm_resp with `ESME_ROK`.
    Accepted {
        /// The SMSC's id, as receipts will name it.
        message_id: COctetString<65>,
    },
    /// submit_sm_resp with an error status, or generic_nack.
    Refused {
        /// The status.
        status: CommandStatus,
        /// What it means for the message.
        outcome: SubmitOutcome,
    },
    /// Written, but no usable response came (timeout, connection lost, unreadable response):
    /// it may have reached the carrier.
    InDoubt,
    /// Certainly never written.
    NotSent {
        /// Why.
        reason: NotSentReason,
    },
}

/// Why a submission was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotSentReason {
    /// The session is not bound (connecting, binding or backing off).
    NotBound,
    /// The bind is a receiver.
    ReceiveOnly,
    /// The session is draining or stopping.
    Draining,
    /// Window and backlog are full: the owner submitted beyond its credit.
    Overloaded,
    /// The connection died before it was written.
    ConnectionLost,
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// TCP connect or TLS handshake failed or timed out.
    ConnectFailed(std::io::ErrorKind),
    /// The SMSC refused the bind with this status.
    BindRefused(CommandStatus),
    /// No bind response within the response timeout.
    BindTimedOut,
    /// Reading or writing failed.
    Io(std::io::ErrorKind),
    /// The SMSC closed the connection.
    ClosedByPeer,
    /// A `command_length` below 16 or over the maximum.
    CorruptFraming,
    /// An enquire_link went unanswered.
    KeepaliveTimedOut,
    /// The SMSC sent unbind (answered).
    UnbindFromPeer,
    /// The SMSC stopped reading: our write queue filled up.
    WriteQueueFull,
    /// Drained on request; the session has stopped.
    Drained,
    /// The actor was stopped; the session has stopped.
    Stopped,
}

/// A submit in the window.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    token: u64,
    /// Position among the requests queued on this connection, compared with the writer's count
    /// to tell written from not written.
    index: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The connect task is running.
    Connecting,
    /// Connected; waiting for the SMSC's outbind.
    AwaitingOutbind,
    /// bind sent.
    Binding { seq: u32, deadline: Instant },
    /// Bound.
    Bound,
    /// unbind sent (drain).
    Unbinding { seq: u32, deadline: Instant },
    /// Waiting for the reconnect timer.
    Backoff,
    /// Finished; the actor is stopping.
    Closed,
}

/// The session's state (see the [module docs](self)).
pub struct SessionState {
    name: Arc<str>,
    myself: SessionRef,
    config: Arc<SessionConfig>,
    tls: Option<TlsConnector>,
    events: mpsc::Sender<SessionEvent>,
    owner_gone: bool,
    phase: Phase,
    /// The bind asked for on the current connection (a receiver after an outbind).
    mode: BindMode,
    /// Id of the current connection attempt; messages of older ones are ignored.
    conn: u64,
    link: Option<Link>,
    /// Requests queued on the current link.
    requests_queued: u64,
    sequence: SequenceAllocator,
    window: Window<InFlight>,
    backlog: VecDeque<(u64, SubmitSm)>,
    /// Credit granted and not yet used.
    granted: usize,
    keepalive: Keepalive,
    /// Failed attempts since the last successful bind.
    attempt: u32,
    /// Set by a drain: the time the grace period ends.
    draining: Option<Instant>,
    /// Set when the connection must be torn down at the end of the current message.
    broken: Option<DisconnectReason>,
    ticker: Option<JoinHandle<()>>,
    timer: Option<JoinHandle<Result<(), ractor::MessagingErr<SessionMsg>>>>,
    connect_task: Option<JoinHandle<()>>,
}

impl fmt::Debug for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionState")
            .field("name", &self.name)
            .field("phase", &self.phase)
            .field("conn", &self.conn)
            .field("outstanding", &self.window.len())
            .field("backlog", &self.backlog.len())
            .field("granted", &self.granted)
            .field("draining", &self.draining.is_some())
            .finish_non_exhaustive()
    }
}

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        myself: SessionRef,
        args: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        args.config.validate()?;
        let tls = args
            .config
            .tls
            .as_ref()
            .map(config::tls_connector)
            .transpose()?;
        let config = Arc::new(args.config);
        let now = Instant::now();
        Ok(SessionState {
            name: args.name,
            myself,
            tls,
            events: args.events,
            owner_gone: false,
            phase: Phase::Backoff,
            mode: config.bind_mode,
            conn: 0,
            link: None,
            requests_queued: 0,
            sequence: SequenceAllocator::new(),
            window: Window::new(config.window_len()),
            backlog: VecDeque::with_capacity(config.window_len()),
            granted: 0,
            keepalive: Keepalive::new(config.enquire_link_interval, config.response_timeout, now),
            attempt: 0,
            draining: None,
            broken: None,
            ticker: None,
            timer: None,
            connect_task: None,
            config,
        })
    }

    async fn post_start(
        &self,
        myself: SessionRef,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        let c = &state.config;
        let tick = (c.response_timeout.min(c.enquire_link_interval) / 4).clamp(MIN_TICK, MAX_TICK);
        state.ticker = Some(myself.send_interval(tick, || internal(Inner::Tick)));
        state.start_connect();
        Ok(())
    }

    async fn handle(
        &self,
        myself: SessionRef,
        message: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SessionMsg::Submit { token, pdu } => state.on_submit(token, pdu).await,
            SessionMsg::Drain => state.on_drain().await,
            SessionMsg::Internal(Internal(inner)) => state.on_internal(inner).await,
        }
        state.settle().await;
        if state.phase == Phase::Closed {
            myself.stop(None);
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: SessionRef,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        for task in [state.ticker.take(), state.connect_task.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        if state.phase != Phase::Closed {
            // Stopped from outside: report everything, with a best-effort unbind.
            state.draining.get_or_insert_with(Instant::now);
            if let Some(link) = &state.link {
                let _ = link.send(Command::new(state.sequence.allocate(), Pdu::Unbind));
            }
            state.connection_lost(DisconnectReason::Stopped, true).await;
        }
        Ok(())
    }
}

impl SessionState {
    // === Owner's messages ===

    async fn on_submit(&mut self, token: u64, pdu: SubmitSm) {
        self.granted = self.granted.saturating_sub(1);
        let refuse = if self.draining.is_some() || self.owner_gone {
            Some(NotSentReason::Draining)
        } else if !self.mode.can_submit() {
            Some(NotSentReason::ReceiveOnly)
        } else if self.phase != Phase::Bound || self.link.is_none() {
            Some(NotSentReason::NotBound)
        } else {
            None
        };
        if let Some(reason) = refuse {
            return self.not_sent(token, reason).await;
        }
        if self.backlog.is_empty() && self.has_slot() {
            if let Err(reason) = self.write_submit(token, pdu) {
                self.not_sent(token, reason).await;
            }
        } else if self.backlog.len() < self.window.capacity() {
            self.backlog.push_back((token, pdu));
        } else {
            self.not_sent(token, NotSentReason::Overloaded).await;
        }
    }

    async fn on_drain(&mut self) {
        if self.draining.is_some() {
            return;
        }
        info!(target: TARGET, session = %self.name, "draining");
        self.draining = Some(Instant::now() + self.config.drain_grace);
        self.granted = 0;
        while let Some((token, _)) = self.backlog.pop_front() {
            self.not_sent(token, NotSentReason::Draining).await;
        }
        match self.phase {
            // `settle` unbinds once the window is empty or the grace is over.
            Phase::Bound | Phase::Unbinding { .. } | Phase::Closed => {}
            Phase::Connecting | Phase::AwaitingOutbind | Phase::Binding { .. } | Phase::Backoff => {
                self.connection_lost(DisconnectReason::Drained, false).await;
            }
        }
    }

    // === Tasks' messages ===

    async fn on_internal(&mut self, inner: Inner) {
        match inner {
            Inner::Connected { conn, transport } => {
                if conn != self.conn || self.phase != Phase::Connecting {
                    return;
                }
                self.connect_task = None;
                self.link = Some(io::spawn_link(
                    transport,
                    self.myself.clone(),
                    conn,
                    &self.config,
                ));
                self.requests_queued = 0;
                self.keepalive.reset(Instant::now());
                if self.config.wait_for_outbind {
                    debug!(target: TARGET, session = %self.name, "connected; waiting for outbind");
                    self.phase = Phase::AwaitingOutbind;
                } else {
                    self.send_bind(self.config.bind_mode);
                }
            }
            Inner::ConnectFailed { conn, kind } => {
                if conn == self.conn && self.phase == Phase::Connecting {
                    self.connect_task = None;
                    self.connection_lost(DisconnectReason::ConnectFailed(kind), false)
                        .await;
                }
            }
            Inner::PduReceived { conn, item, permit } => {
                if conn != self.conn || self.link.is_none() {
                    return;
                }
                self.keepalive.on_received(Instant::now());
                match item {
                    Ok(command) => self.on_command(command, permit).await,
                    Err(invalid) => self.on_invalid(invalid).await,
                }
            }
            Inner::ConnectionLost { conn, reason } => {
                if conn == self.conn && self.link.is_some() {
                    self.broken.get_or_insert(reason);
                }
            }
            Inner::Tick => self.on_tick().await,
            Inner::Reconnect => {
                self.timer = None;
                if self.phase == Phase::Backoff && self.draining.is_none() {
                    self.start_connect();
                }
            }
        }
    }

    async fn on_command(&mut self, command: Command, permit: OwnedSemaphorePermit) {
        let Command {
            command_status: status,
            sequence_number: seq,
            pdu,
        } = command;
        match pdu {
            Pdu::SubmitSmResp(resp) => {
                self.on_submit_resp(seq, status, Some(resp.message_id))
                    .await
            }
            Pdu::GenericNack => self.on_generic_nack(seq, status).await,
            Pdu::BindTransceiverResp(resp)
            | Pdu::BindTransmitterResp(resp)
            | Pdu::BindReceiverResp(resp) => match self.phase {
                Phase::Binding { seq: s, .. } if s == seq => {
                    self.on_bind_resp(status, resp.system_id).await;
                }
                _ => debug!(target: TARGET, session = %self.name, seq, "unexpected bind response"),
            },
            Pdu::EnquireLinkResp => {
                if !self.keepalive.on_response(seq) {
                    debug!(target: TARGET, session = %self.name, seq, "unexpected enquire_link_resp");
                }
            }
            Pdu::UnbindResp => match self.phase {
                Phase::Unbinding { seq: s, .. } if s == seq => {
                    self.connection_lost(DisconnectReason::Drained, true).await;
                }
                _ => debug!(target: TARGET, session = %self.name, seq, "unexpected unbind_resp"),
            },
            Pdu::EnquireLink => self.reply(Command::new(seq, Pdu::EnquireLinkResp)),
            Pdu::DeliverSm(sm) => match self.phase {
                Phase::Bound | Phase::Unbinding { .. } => {
                    // Answered once the owner completes the ack (after its store write).
                    let (ack, answer) = DeliverAck::channel();
                    let event = SessionEvent::Deliver { deliver: sm, ack };
                    if !self.emit(event).await {
                        let status = CommandStatus::ESME_RX_T_APPN;
                        return self.reply(Command::with_status(
                            status,
                            seq,
                            DeliverSmResp::default(),
                        ));
                    }
                    let Some(writer) = self.link.as_ref().and_then(Link::writer) else {
                        return;
                    };
                    tokio::spawn(async move {
                        let status = answer.await.unwrap_or(DeliverStatus::Retry);
                        if let Some(tx) = writer.upgrade() {
                            let resp = Command::with_status(
                                status.command_status(),
                                seq,
                                DeliverSmResp::default(),
                            );
                            // A full queue means the peer is not reading: it will redeliver.
                            let _ = tx.try_send(resp);
                        }
                        drop(permit);
                    });
                }
                _ => self.reply(Command::generic_nack(seq, CommandStatus::ESME_RINVBNDSTS)),
            },
            Pdu::Unbind => {
                info!(target: TARGET, session = %self.name, "unbind from the SMSC");
                self.reply(Command::new(seq, Pdu::UnbindResp));
                // Graceful: the unbind_resp must reach the SMSC before the close.
                self.connection_lost(DisconnectReason::UnbindFromPeer, true)
                    .await;
            }
            Pdu::Outbind(_) => {
                if self.phase == Phase::AwaitingOutbind {
                    info!(target: TARGET, session = %self.name, "outbind: binding as receiver");
                    self.send_bind(BindMode::Receiver);
                } else {
                    debug!(target: TARGET, session = %self.name, "outbind ignored: already binding or bound");
                }
            }
            pdu => {
                let id = pdu.command_id();
                if id.is_response() {
                    debug!(target: TARGET, session = %self.name, seq, command_id = %id, "unexpected response ignored");
                } else if id.response_id().is_some() {
                    // A request an ESME does not serve (submit_sm from the SMSC, an unknown
                    // command_id, …).
                    debug!(target: TARGET, session = %self.name, seq, command_id = %id, "unsupported request");
                    self.reply(Command::generic_nack(seq, CommandStatus::ESME_RINVCMDID));
                }
            }
        }
    }

    async fn on_invalid(&mut self, invalid: InvalidPdu) {
        let header = invalid.header;
        debug!(target: TARGET, session = %self.name, error = %invalid, "malformed PDU");
        if !header.command_id.is_response() {
            return self.reply(invalid.generic_nack());
        }
        if matches!(
            header.command_id,
            CommandId::SUBMIT_SM_RESP | CommandId::GENERIC_NACK
        ) && let Some(flight) = self.window.remove(header.sequence_number)
        {
            let status = header.command_status;
            let result = if status.is_ok() {
                // Accepted, but its message id is unreadable: receipts cannot be matched.
                SubmitResult::InDoubt
            } else {
                self.refused(status).await
            };
            self.submitted(flight.token, result).await;
        }
    }

    async fn on_bind_resp(&mut self, status: CommandStatus, smsc_system_id: COctetString<16>) {
        if !status.is_ok() {
            warn!(target: TARGET, session = %self.name, %status, "bind refused");
            self.broken = Some(DisconnectReason::BindRefused(status));
            return;
        }
        info!(target: TARGET, session = %self.name, smsc = %smsc_system_id, "bound");
        self.phase = Phase::Bound;
        self.attempt = 0;
        self.emit(SessionEvent::Bound { smsc_system_id }).await;
    }

    async fn on_generic_nack(&mut self, seq: u32, status: CommandStatus) {
        if self.keepalive.on_response(seq) {
            // The SMSC answered: the link is alive even if it dislikes enquire_link.
            return;
        }
        match self.phase {
            Phase::Binding { seq: s, .. } if s == seq => {
                let status = if status.is_ok() {
                    CommandStatus::ESME_RBINDFAIL
                } else {
                    status
                };
                self.on_bind_resp(status, COctetString::empty()).await;
            }
            Phase::Unbinding { seq: s, .. } if s == seq => {
                self.connection_lost(DisconnectReason::Drained, true).await;
            }
            _ => {
                // A generic_nack with ESME_ROK makes no sense; treat it as a system error.
                let status = if status.is_ok() {
                    CommandStatus::ESME_RSYSERR
                } else {
                    status
                };
                self.on_submit_resp(seq, status, None).await;
            }
        }
    }

    async fn on_submit_resp(
        &mut self,
        seq: u32,
        status: CommandStatus,
        message_id: Option<COctetString<65>>,
    ) {
        let Some(flight) = self.window.remove(seq) else {
            debug!(target: TARGET, session = %self.name, seq, %status, "response for an unknown sequence number ignored");
            return;
        };
        let result = match message_id {
            Some(message_id) if status.is_ok() => SubmitResult::Accepted { message_id },
            _ => self.refused(status).await,
        };
        self.submitted(flight.token, result).await;
    }

    /// The result for an error status, signalling throttling first.
    async fn refused(&mut self, status: CommandStatus) -> SubmitResult {
        let outcome = classify_submit_status(status);
        if outcome == SubmitOutcome::Throttled {
            self.emit(SessionEvent::Throttled { status }).await;
        }
        SubmitResult::Refused { status, outcome }
    }

    async fn on_tick(&mut self) {
        let now = Instant::now();
        if self.window.next_deadline().is_some_and(|d| d <= now) {
            for (seq, flight) in self.window.expire(now) {
                warn!(target: TARGET, session = %self.name, seq, token = flight.token, "submit_sm_resp timed out: in doubt");
                self.submitted(flight.token, SubmitResult::InDoubt).await;
            }
        }
        match self.phase {
            Phase::Binding { deadline, .. } if deadline <= now => {
                self.broken.get_or_insert(DisconnectReason::BindTimedOut);
            }
            Phase::Unbinding { deadline, .. } if deadline <= now => {
                debug!(target: TARGET, session = %self.name, "no unbind_resp; closing");
                self.connection_lost(DisconnectReason::Drained, true).await;
            }
            Phase::Bound | Phase::AwaitingOutbind | Phase::Unbinding { .. } => {
                match self.keepalive.poll(now) {
                    KeepaliveAction::Dead => {
                        warn!(target: TARGET, session = %self.name, "enquire_link unanswered");
                        self.broken
                            .get_or_insert(DisconnectReason::KeepaliveTimedOut);
                    }
                    KeepaliveAction::SendEnquireLink if self.has_slot() => {
                        if let Some(seq) = self.send_request(Pdu::EnquireLink) {
                            self.keepalive.on_sent(seq, now);
                        }
                    }
                    KeepaliveAction::SendEnquireLink | KeepaliveAction::Wait => {}
                }
            }
            _ => {}
        }
    }

    // === After every message ===

    /// Tears down a broken connection, moves the backlog into free slots, starts the unbind of
    /// a drain when it is due, and grants credit.
    async fn settle(&mut self) {
        if self.owner_gone && self.draining.is_none() {
            self.on_drain().await;
        }
        loop {
            if let Some(reason) = self.broken.take() {
                self.connection_lost(reason, false).await;
            }
            while self.phase == Phase::Bound && self.broken.is_none() && self.has_slot() {
                let Some((token, pdu)) = self.backlog.pop_front() else {
                    break;
                };
                if let Err(reason) = self.write_submit(token, pdu) {
                    self.not_sent(token, reason).await;
                }
            }
            if self.broken.is_none() {
                break;
            }
        }
        if let Some(grace_end) = self.draining
            && self.phase == Phase::Bound
            && (self.window.is_empty() || Instant::now() >= grace_end)
        {
            self.start_unbind().await;
        }
        self.grant().await;
    }

    async fn grant(&mut self) {
        if self.phase != Phase::Bound || self.draining.is_some() || !self.mode.can_submit() {
            return;
        }
        let used = self.window.len() + self.backlog.len() + self.granted;
        let free = self.window.capacity().saturating_sub(used);
        if free > 0 {
            self.granted += free;
            let n = u32::try_from(free).unwrap_or(u32::MAX);
            self.emit(SessionEvent::WindowFree(n)).await;
        }
    }

    // === Connection life cycle ===

    fn start_connect(&mut self) {
        self.conn += 1;
        self.phase = Phase::Connecting;
        let conn = self.conn;
        let config = Arc::clone(&self.config);
        let tls = self.tls.clone();
        let actor = self.myself.clone();
        let name = Arc::clone(&self.name);
        debug!(target: TARGET, session = %name, conn, host = %config.host, port = config.port, "connecting");
        self.connect_task = Some(tokio::spawn(async move {
            let msg = match io::connect(&config, tls).await {
                Ok(transport) => Inner::Connected { conn, transport },
                Err(error) => {
                    warn!(target: TARGET, session = %name, %error, "connect failed");
                    Inner::ConnectFailed {
                        conn,
                        kind: error.kind(),
                    }
                }
            };
            // If the actor is gone the transport is dropped, which closes it.
            let _ = actor.cast(internal(msg));
        }));
    }

    fn send_bind(&mut self, mode: BindMode) {
        let body = self.config.bind_body();
        let pdu = match mode {
            BindMode::Transceiver => Pdu::BindTransceiver(body),
            BindMode::Transmitter => Pdu::BindTransmitter(body),
            BindMode::Receiver => Pdu::BindReceiver(body),
        };
        self.mode = mode;
        if let Some(seq) = self.send_request(pdu) {
            self.phase = Phase::Binding {
                seq,
                deadline: Instant::now() + self.config.response_timeout,
            };
        }
    }

    async fn start_unbind(&mut self) {
        debug!(target: TARGET, session = %self.name, outstanding = self.window.len(), "unbinding");
        match self.send_request(Pdu::Unbind) {
            Some(seq) => {
                self.phase = Phase::Unbinding {
                    seq,
                    deadline: Instant::now() + self.config.response_timeout,
                }
            }
            None => {
                self.broken = None;
                self.connection_lost(DisconnectReason::Drained, false).await;
            }
        }
    }

    /// Ends the current connection (if any) and reports everything it held; then reconnects
    /// after the back-off, or, when draining, closes the session. A `graceful` close lets the
    /// writer flush what is queued, so every outstanding request counts as written.
    async fn connection_lost(&mut self, reason: DisconnectReason, graceful: bool) {
        if let Some(task) = self.connect_task.take() {
            task.abort();
        }
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        let written = match self.link.take() {
            Some(link) if graceful => {
                link.close();
                u64::MAX
            }
            Some(link) => link.abort().await,
            None => 0,
        };
        self.conn += 1;
        self.broken = None;
        self.granted = 0;
        self.keepalive.reset(Instant::now());
        for (_, flight) in self.window.drain() {
            let result = if flight.index < written {
                SubmitResult::InDoubt
            } else {
                SubmitResult::NotSent {
                    reason: NotSentReason::ConnectionLost,
                }
            };
            self.submitted(flight.token, result).await;
        }
        let backlog_reason = match reason {
            DisconnectReason::Drained | DisconnectReason::Stopped => NotSentReason::Draining,
            _ => NotSentReason::ConnectionLost,
        };
        while let Some((token, _)) = self.backlog.pop_front() {
            self.not_sent(token, backlog_reason).await;
        }
        match reason {
            DisconnectReason::Drained | DisconnectReason::Stopped => {
                info!(target: TARGET, session = %self.name, ?reason, "session closed")
            }
            _ => {
                warn!(target: TARGET, session = %self.name, ?reason, attempt = self.attempt, "connection lost")
            }
        }
        self.emit(SessionEvent::Disconnected { reason }).await;
        if self.draining.is_some() || self.owner_gone {
            self.phase = Phase::Closed;
            return;
        }
        let delay = self
            .config
            .reconnect
            .delay(self.attempt, rand::random::<f64>());
        self.attempt = self.attempt.saturating_add(1);
        self.phase = Phase::Backoff;
        self.timer = Some(self.myself.send_after(delay, || internal(Inner::Reconnect)));
    }

    // === Writing ===

    /// Whether one more request may be outstanding (submits plus the enquire_link).
    fn has_slot(&self) -> bool {
        self.window.len() + usize::from(self.keepalive.is_outstanding()) < self.window.capacity()
    }

    /// Puts a submit in the window and queues it for the writer.
    fn write_submit(&mut self, token: u64, pdu: SubmitSm) -> Result<(), NotSentReason> {
        let Some(link) = &self.link else {
            return Err(NotSentReason::NotBound);
        };
        let now = Instant::now();
        let mut flight = InFlight {
            token,
            index: self.requests_queued,
        };
        // A duplicate means the allocator wrapped onto a request still outstanding; take the
        // next number (at most `capacity` can be taken).
        let seq = loop {
            let seq = self.sequence.allocate();
            match self
                .window
                .insert(seq, flight, now, self.config.response_timeout)
            {
                Ok(()) => break seq,
                Err((WindowError::Duplicate(_), f)) => flight = f,
                Err((WindowError::Full(_), _)) => return Err(NotSentReason::Overloaded),
            }
        };
        match link.send(Command::new(seq, pdu)) {
            Ok(()) => {
                self.requests_queued += 1;
                Ok(())
            }
            Err(_) => {
                self.window.remove(seq);
                self.broken.get_or_insert(DisconnectReason::WriteQueueFull);
                Err(NotSentReason::ConnectionLost)
            }
        }
    }

    /// Queues a request other than submit_sm; its sequence number, or `None` (and the
    /// connection marked broken) when it could not be queued.
    fn send_request(&mut self, pdu: Pdu) -> Option<u32> {
        let seq = self.sequence.allocate();
        let link = self.link.as_ref()?;
        if link.send(Command::new(seq, pdu)).is_err() {
            self.broken.get_or_insert(DisconnectReason::WriteQueueFull);
            return None;
        }
        self.requests_queued += 1;
        Some(seq)
    }

    /// Queues a response to the SMSC.
    fn reply(&mut self, command: Command) {
        if let Some(link) = &self.link
            && link.send(command).is_err()
        {
            self.broken.get_or_insert(DisconnectReason::WriteQueueFull);
        }
    }

    // === Events ===

    /// Sends an event, waiting while the owner's channel is full; `false` once the owner is
    /// gone (the session then drains itself).
    async fn emit(&mut self, event: SessionEvent) -> bool {
        if self.owner_gone {
            return false;
        }
        if self.events.send(event).await.is_err() {
            warn!(target: TARGET, session = %self.name, "event receiver dropped; draining");
            self.owner_gone = true;
            return false;
        }
        true
    }

    async fn submitted(&mut self, token: u64, result: SubmitResult) {
        self.emit(SessionEvent::Submitted { token, result }).await;
    }

    async fn not_sent(&mut self, token: u64, reason: NotSentReason) {
        self.submitted(token, SubmitResult::NotSent { reason })
            .await;
    }
}
