//! One ESME connection: a reader loop that owns the bind state and answers requests, and a
//! writer task fed by a bounded queue that batches writes (feed each PDU, flush when the queue
//! is empty) and holds delayed responses until their time.
//!
//! "Outstanding" requests — received, response not yet written — are counted per connection:
//! incremented when a response is queued, decremented when the writer writes it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use sairex_pdu::{
    Bind, BindResp, COctetString, CodecError, Command, CommandId, CommandStatus, DataSm,
    DataSmResp, DeliverSmResp, DestAddress, InvalidPdu, Pdu, QuerySmResp, SmppCodec, SubmitMulti,
    SubmitMultiResp, SubmitSm, SubmitSmResp, Tlvs,
};
use tokio::io::{AsyncRead, AsyncWrite, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::sim::config::ReceiptPolicy;
use crate::sim::delivery::{
    BindKind, DelivererMsg, Delivery, DeliveryKind, Outbound, SequenceNumbers, SessionEntry,
};
use crate::sim::receipt::{ReceiptSource, build_receipt};
use crate::sim::stats::{dec, inc};
use crate::sim::{ReceivedMessage, Shared, SubmitOperation};

/// `sc_interface_version` the simulator announces in bind responses: SMPP 3.4.
const SC_INTERFACE_VERSION: u8 = 0x34;

/// Whether the reader goes on after a PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// What woke the reader. Lives on the stack for one loop turn, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Event {
    Shutdown,
    WriterGone,
    BindTimeout,
    Frame(Option<Result<Result<Command, InvalidPdu>, CodecError>>),
}

/// Serves one connection until the ESME unbinds or leaves, the framing breaks, or the simulator
/// shuts down.
pub(crate) async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let counters = Arc::clone(&shared.counters);
    inc(&counters.accepted);
    inc(&counters.open);
    let (read_half, write_half) = tokio::io::split(stream);
    let codec = SmppCodec::with_max_command_length(shared.config.max_command_length);
    let mut frames = FramedRead::new(read_half, codec);
    let (tx, rx) = mpsc::channel(shared.config.connection_queue);
    let outstanding = Arc::new(AtomicU64::new(0));
    let mut writer = tracker.spawn(write_loop(
        FramedWrite::new(write_half, codec),
        rx,
        Arc::clone(&outstanding),
    ));
    let id = shared.next_session_id.fetch_add(1, Ordering::Relaxed);
    debug!(target: "sairex::loadtest::sim", session_id = id, %peer, "connection open");

    let unbind_timeout = shared.config.unbind_timeout;
    let mut session = Session {
        id,
        shutdown: shutdown.clone(),
        bind_deadline: Instant::now() + shared.config.bind_timeout,
        shared,
        tx,
        outstanding,
        sequence: Arc::default(),
        bound: None,
    };
    session.read_loop(&mut frames, &shutdown).await;
    session.end().await;
    drop(session);
    // The writer drains what is queued, then closes the socket; a peer that does not read must
    // not hold the simulator (or its shutdown) forever.
    if tokio::time::timeout(unbind_timeout, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    dec(&counters.open);
    debug!(target: "sairex::loadtest::sim", session_id = id, %peer, "connection closed");
}

/// Writes queued PDUs: feeds each one, flushes when the queue is empty (so a burst becomes one
/// write), and waits for a delayed response's time after flushing what came before it.
async fn write_loop<W>(
    mut sink: FramedWrite<WriteHalf<W>, SmppCodec>,
    mut rx: mpsc::Receiver<Outbound>,
    outstanding: Arc<AtomicU64>,
) where
    W: AsyncRead + AsyncWrite,
{
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(out) = next.take() {
            if let Some(at) = out.not_before.filter(|&at| at > Instant::now()) {
                if sink.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep_until(at).await;
            }
            if sink.feed(out.command).await.is_err() {
                return;
            }
            if out.answers_request {
                dec(&outstanding);
            }
            next = rx.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

struct Session {
    id: u64,
    /// The simulator's shutdown, watched wherever the reader may wait on a full queue: a peer
    /// that stops reading must not hold up shutdown.
    shutdown: CancellationToken,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Outbound>,
    outstanding: Arc<AtomicU64>,
    sequence: Arc<SequenceNumbers>,
    bound: Option<BindKind>,
    bind_deadline: Instant,
}

impl Session {
    async fn read_loop<R>(
        &mut self,
        frames: &mut FramedRead<R, SmppCodec>,
        shutdown: &CancellationToken,
    ) where
        R: AsyncRead + Unpin,
    {
        loop {
            let event = tokio::select! {
                biased;
                () = shutdown.cancelled() => Event::Shutdown,
                () = self.tx.closed() => Event::WriterGone,
                () = tokio::time::sleep_until(self.bind_deadline), if self.bound.is_none() => {
                    Event::BindTimeout
                }
                frame = frames.next() => Event::Frame(frame),
            };
            let flow = match event {
                Event::Shutdown => {
                    self.unbind_for_shutdown(frames).await;
                    Flow::Close
                }
                Event::WriterGone => Flow::Close,
                Event::BindTimeout => {
                    debug!(target: "sairex::loadtest::sim", session_id = self.id, "no bind in time");
                    Flow::Close
                }
                Event::Frame(None) => Flow::Close,
                Event::Frame(Some(Err(CodecError::Frame(error)))) => {
                    inc(&self.shared.counters.framing_errors);
                    warn!(target: "sairex::loadtest::sim", session_id = self.id, %error, "corrupt framing; closing");
                    Flow::Close
                }
                Event::Frame(Some(Err(error))) => {
                    debug!(target: "sairex::loadtest::sim", session_id = self.id, %error, "read failed");
                    Flow::Close
                }
                Event::Frame(Some(Ok(Err(invalid)))) => self.on_invalid(invalid).await,
                Event::Frame(Some(Ok(Ok(command)))) => self.on_command(command).await,
            };
            if flow == Flow::Close {
                return;
            }
        }
    }

    /// Leaves the registry and hands this connection's in-flight deliveries back.
    async fn end(&mut self) {
        self.shared.registry.deregister(self.id);
        if self.bound.take().is_some() {
            dec(&self.shared.counters.bound);
            let _ = self
                .shared
                .deliverer
                .send(DelivererMsg::SessionClosed { session: self.id })
                .await;
        }
    }

    /// Shutdown: unbind a bound ESME and wait a little for its unbind_resp.
    async fn unbind_for_shutdown<R>(&mut self, frames: &mut FramedRead<R, SmppCodec>)
    where
        R: AsyncRead + Unpin,
    {
        if self.bound.is_none() {
            return;
        }
        let unbind = Outbound {
            command: Command::new(self.sequence.next(), Pdu::Unbind),
            not_before: None,
            answers_request: false,
        };
        let deadline = Instant::now() + self.shared.config.unbind_timeout;
        if !matches!(
            tokio::time::timeout_at(deadline, self.tx.send(unbind)).await,
            Ok(Ok(()))
        ) {
            return;
        }
        inc(&self.shared.counters.unbinds_sent);
        loop {
            match tokio::time::timeout_at(deadline, frames.next()).await {
                Ok(Some(Ok(Ok(command)))) if command.command_id() == CommandId::UNBIND_RESP => {
                    return;
                }
                Ok(Some(Ok(_))) => {}
                _ => return,
            }
        }
    }

    /// Queues a response to a request of the ESME.
    async fn reply(&self, command: Command, not_before: Option<Instant>) -> Flow {
        let counters = &self.shared.counters;
        if command.command_id() == CommandId::GENERIC_NACK {
            inc(&counters.generic_nacks_sent);
        }
        let outstanding = self.outstanding.fetch_add(1, Ordering::Relaxed) + 1;
        counters
            .max_outstanding
            .fetch_max(outstanding, Ordering::Relaxed);
        if let Some(window) = self.shared.config.window
            && outstanding > u64::from(window)
        {
            inc(&counters.window_violations);
        }
        let out = Outbound {
            command,
            not_before,
            answers_request: true,
        };
        tokio::select! {
            sent = self.tx.send(out) => match sent {
                Ok(()) => Flow::Continue,
                Err(_) => Flow::Close,
            },
            () = self.shutdown.cancelled() => Flow::Close,
        }
    }

    async fn on_invalid(&mut self, invalid: InvalidPdu) -> Flow {
        inc(&self.shared.counters.malformed_pdus);
        debug!(target: "sairex::loadtest::sim", session_id = self.id, error = %invalid, "malformed PDU");
        let header = invalid.header;
        if header.command_id.is_response() {
            if header.command_id == CommandId::DELIVER_SM_RESP {
                // An answer we cannot read is no acknowledgement: let the deliverer retry.
                self.notify_resp(header.sequence_number, invalid.error.command_status())
                    .await;
            }
            return Flow::Continue;
        }
        self.reply(invalid.generic_nack(), None).await
    }

    async fn notify_resp(&self, sequence: u32, status: CommandStatus) {
        let _ = self
            .shared
            .deliverer
            .send(DelivererMsg::RespReceived {
                session: self.id,
                sequence,
                status,
            })
            .await;
    }

    async fn on_command(&mut self, command: Command) -> Flow {
        let seq = command.sequence_number;
        let status = command.command_status;
        match command.pdu {
            Pdu::Unknown { command_id, .. } => {
                debug!(target: "sairex::loadtest::sim", session_id = self.id, %command_id, "unknown command");
                self.reply(
                    Command::generic_nack(seq, CommandStatus::ESME_RINVCMDID),
                    None,
                )
                .await
            }
            Pdu::DeliverSmResp(_) => {
                self.notify_resp(seq, status).await;
                Flow::Continue
            }
            Pdu::GenericNack => {
                inc(&self.shared.counters.generic_nacks_received);
                self.notify_resp(seq, status).await;
                Flow::Continue
            }
            pdu if pdu.command_id().is_response() => {
                // enquire_link_resp, unbind_resp, … to requests we did not send: nothing to do.
                Flow::Continue
            }
            Pdu::BindTransmitter(bind) => self.on_bind(seq, BindKind::Transmitter, bind).await,
            Pdu::BindReceiver(bind) => self.on_bind(seq, BindKind::Receiver, bind).await,
            Pdu::BindTransceiver(bind) => self.on_bind(seq, BindKind::Transceiver, bind).await,
            Pdu::EnquireLink => {
                inc(&self.shared.counters.enquire_links);
                self.reply(Command::new(seq, Pdu::EnquireLinkResp), None)
                    .await
            }
            pdu => match self.bound {
                None => {
                    let reject =
                        error_response(pdu.command_id(), seq, CommandStatus::ESME_RINVBNDSTS);
                    self.reply(reject, None).await
                }
                Some(kind) => self.on_bound_request(seq, kind, pdu).await,
            },
        }
    }

    async fn on_bound_request(&mut self, seq: u32, kind: BindKind, pdu: Pdu) -> Flow {
        let id = pdu.command_id();
        match pdu {
            Pdu::Unbind => {
                inc(&self.shared.counters.unbinds_received);
                let _ = self.reply(Command::new(seq, Pdu::UnbindResp), None).await;
                Flow::Close
            }
            Pdu::SubmitSm(_) | Pdu::DataSm(_) | Pdu::SubmitMulti(_) if !kind.can_submit() => {
                self.reply(
                    error_response(id, seq, CommandStatus::ESME_RINVBNDSTS),
                    None,
                )
                .await
            }
            Pdu::SubmitSm(sm) => self.on_submit(seq, Submit::from_submit_sm(sm)).await,
            Pdu::DataSm(sm) => self.on_submit(seq, Submit::from_data_sm(sm)).await,
            Pdu::SubmitMulti(sm) => self.on_submit(seq, Submit::from_submit_multi(sm)).await,
            // The simulator keeps no message store to query, cancel or replace in.
            Pdu::QuerySm(_) => {
                self.reply(
                    error_response(id, seq, CommandStatus::ESME_RQUERYFAIL),
                    None,
                )
                .await
            }
            Pdu::CancelSm(_) => {
                self.reply(
                    error_response(id, seq, CommandStatus::ESME_RCANCELFAIL),
                    None,
                )
                .await
            }
            Pdu::ReplaceSm(_) => {
                self.reply(
                    error_response(id, seq, CommandStatus::ESME_RREPLACEFAIL),
                    None,
                )
                .await
            }
            // deliver_sm, outbind, alert_notification: operations an ESME does not send.
            _ => {
                self.reply(
                    Command::generic_nack(seq, CommandStatus::ESME_RINVCMDID),
                    None,
                )
                .await
            }
        }
    }

    async fn on_bind(&mut self, seq: u32, kind: BindKind, bind: Bind) -> Flow {
        let config = &self.shared.config;
        let counters = &self.shared.counters;
        let status = if self.bound.is_some() {
            CommandStatus::ESME_RALYBND
        } else if bind.system_id.as_bytes() != config.system_id.as_bytes() {
            config.bad_system_id_status
        } else if bind.password.as_bytes() != config.password.as_bytes() {
            CommandStatus::ESME_RINVPASWD
        } else {
            CommandStatus::ESME_ROK
        };
        let body = if status.is_ok() {
            let mut tlvs = Tlvs::new();
            tlvs.set_sc_interface_version(SC_INTERFACE_VERSION);
            BindResp {
                // Validated to fit at start.
                system_id: COctetString::from_str_checked(&config.smsc_system_id)
                    .unwrap_or_default(),
                tlvs,
            }
        } else {
            BindResp::default()
        };
        if status.is_ok() {
            inc(match kind {
                BindKind::Transmitter => &counters.bind_transmitter,
                BindKind::Receiver => &counters.bind_receiver,
                BindKind::Transceiver => &counters.bind_transceiver,
            });
            inc(&counters.bound);
            self.bound = Some(kind);
            // Registered before the response goes out, so an ESME that has its bind_resp can
            // be delivered to at once.
            self.shared.registry.register(
                self.id,
                SessionEntry {
                    kind,
                    tx: self.tx.clone(),
                    sequence: Arc::clone(&self.sequence),
                },
            );
        } else {
            inc(&counters.bind_failures);
            debug!(target: "sairex::loadtest::sim", session_id = self.id, %status, "bind refused");
        }
        let pdu = match kind {
            BindKind::Transmitter => Pdu::BindTransmitterResp(body),
            BindKind::Receiver => Pdu::BindReceiverResp(body),
            BindKind::Transceiver => Pdu::BindTransceiverResp(body),
        };
        self.reply(Command::with_status(status, seq, pdu), None)
            .await
    }

    async fn on_submit(&mut self, seq: u32, submit: Submit) -> Flow {
        let shared = Arc::clone(&self.shared);
        let counters = &shared.counters;
        let config = &shared.config;
        inc(&counters.submits);
        inc(match submit.operation {
            SubmitOperation::SubmitSm => &counters.submit_sm,
            SubmitOperation::DataSm => &counters.data_sm,
            SubmitOperation::SubmitMulti => &counters.submit_multi,
        });
        let now = Instant::now();
        let received_at = SystemTime::now();
        let status = shared.submit_status(now);
        let message_id = status.is_ok().then(|| shared.next_message_id());
        let wire_id: COctetString<65> = message_id
            .as_deref()
            .and_then(|id| COctetString::from_str_checked(id).ok())
            .unwrap_or_default();
        let pdu = match submit.operation {
            SubmitOperation::SubmitSm => Pdu::SubmitSmResp(SubmitSmResp {
                message_id: wire_id,
                tlvs: Tlvs::new(),
            }),
            SubmitOperation::DataSm => Pdu::DataSmResp(DataSmResp {
                message_id: wire_id,
                tlvs: Tlvs::new(),
            }),
            SubmitOperation::SubmitMulti => Pdu::SubmitMultiResp(SubmitMultiResp {
                message_id: wire_id,
                ..SubmitMultiResp::default()
            }),
        };
        counters.count_response(status);
        let latency = config.response_latency;
        let not_before = (!latency.is_zero()).then(|| now + latency);
        let flow = self
            .reply(Command::with_status(status, seq, pdu), not_before)
            .await;

        let wants_receipt = match config.receipts {
            ReceiptPolicy::Off => false,
            ReceiptPolicy::Requested => submit.registered_delivery & 0x03 != 0,
            ReceiptPolicy::Always => true,
        };
        if let (Some(id), true, Flow::Continue) = (&message_id, wants_receipt, flow) {
            self.schedule_receipts(id, &submit, received_at).await;
        }
        shared.record(ReceivedMessage {
            session_id: self.id,
            operation: submit.operation,
            sequence_number: seq,
            message_id,
            status,
            source_addr: submit.source_addr,
            destination_addrs: submit.destinations.into_iter().map(|d| d.addr).collect(),
            esm_class: submit.esm_class,
            data_coding: submit.data_coding,
            registered_delivery: submit.registered_delivery,
            short_message: submit.short_message,
            tlvs: submit.tlvs,
            received_at,
        });
        flow
    }

    /// One receipt per SME destination, due `response_latency + receipt_delay` after the submit
    /// so a receipt never overtakes its own submit response on one connection.
    async fn schedule_receipts(&self, message_id: &str, submit: &Submit, at: SystemTime) {
        let config = &self.shared.config;
        let delay = config.response_latency + config.receipt_delay;
        let text = if submit.short_message.is_empty() {
            submit.tlvs.message_payload().cloned().unwrap_or_default()
        } else {
            submit.short_message.clone()
        };
        for dest in submit.destinations.iter().filter(|d| d.is_sme) {
            let source = ReceiptSource {
                message_id: message_id.to_owned(),
                source_addr: submit.source_addr.clone(),
                source_ton_npi: submit.source_ton_npi,
                destination_addr: dest.addr.clone(),
                dest_ton_npi: dest.ton_npi,
                text: text.clone(),
                submitted_at: at,
            };
            let state = self.shared.final_state();
            let pdu = build_receipt(&source, state, at + delay);
            let delivery = Delivery {
                kind: DeliveryKind::Receipt,
                pdu: Box::new(pdu),
                attempts: 0,
                give_up_at: Instant::now() + delay + config.delivery_hold,
            };
            // Fails only when the simulator is shutting down; the receipt is moot then.
            let _ = self
                .shared
                .deliverer
                .send(DelivererMsg::Schedule { delivery, delay })
                .await;
        }
    }
}

/// The response to `request` carrying only an error `status`: the request's own response type
/// when it has one, generic_nack otherwise (SMPP 3.4 §4.3).
fn error_response(request: CommandId, seq: u32, status: CommandStatus) -> Command {
    let pdu = match request.response_id() {
        Some(CommandId::SUBMIT_SM_RESP) => Pdu::SubmitSmResp(SubmitSmResp::default()),
        Some(CommandId::DATA_SM_RESP) => Pdu::DataSmResp(DataSmResp::default()),
        Some(CommandId::SUBMIT_MULTI_RESP) => Pdu::SubmitMultiResp(SubmitMultiResp::default()),
        Some(CommandId::DELIVER_SM_RESP) => Pdu::DeliverSmResp(DeliverSmResp::default()),
        Some(CommandId::QUERY_SM_RESP) => Pdu::QuerySmResp(QuerySmResp::default()),
        Some(CommandId::CANCEL_SM_RESP) => Pdu::CancelSmResp,
        Some(CommandId::REPLACE_SM_RESP) => Pdu::ReplaceSmResp,
        Some(CommandId::UNBIND_RESP) => Pdu::UnbindResp,
        Some(CommandId::ENQUIRE_LINK_RESP) => Pdu::EnquireLinkResp,
        _ => Pdu::GenericNack,
    };
    Command::with_status(status, seq, pdu)
}

/// A destination of a submit.
struct Destination {
    addr: Bytes,
    ton_npi: (u8, u8),
    /// False for a submit_multi distribution list, which gets no receipt.
    is_sme: bool,
}

/// The fields of submit_sm, data_sm and submit_multi the simulator looks at.
struct Submit {
    operation: SubmitOperation,
    source_addr: Bytes,
    source_ton_npi: (u8, u8),
    destinations: Vec<Destination>,
    esm_class: u8,
    data_coding: u8,
    registered_delivery: u8,
    short_message: Bytes,
    tlvs: Tlvs,
}

impl Submit {
    fn from_submit_sm(sm: SubmitSm) -> Self {
        Self {
            operation: SubmitOperation::SubmitSm,
            source_addr: sm.source_addr.to_bytes(),
            source_ton_npi: (sm.source_addr_ton, sm.source_addr_npi),
            destinations: vec![Destination {
                addr: sm.destination_addr.to_bytes(),
                ton_npi: (sm.dest_addr_ton, sm.dest_addr_npi),
                is_sme: true,
            }],
            esm_class: sm.esm_class,
            data_coding: sm.data_coding,
            registered_delivery: sm.registered_delivery,
            short_message: sm.short_message.to_bytes(),
            tlvs: sm.tlvs,
        }
    }

    fn from_data_sm(sm: DataSm) -> Self {
        Self {
            operation: SubmitOperation::DataSm,
            source_addr: sm.source_addr.to_bytes(),
            source_ton_npi: (sm.source_addr_ton, sm.source_addr_npi),
            destinations: vec![Destination {
                addr: sm.destination_addr.to_bytes(),
                ton_npi: (sm.dest_addr_ton, sm.dest_addr_npi),
                is_sme: true,
            }],
            esm_class: sm.esm_class,
            data_coding: sm.data_coding,
            registered_delivery: sm.registered_delivery,
            short_message: Bytes::new(),
            tlvs: sm.tlvs,
        }
    }

    fn from_submit_multi(sm: SubmitMulti) -> Self {
        let destinations = sm
            .dest_addresses
            .into_vec()
            .into_iter()
            .map(|d| match d {
                DestAddress::SmeAddress {
                    dest_addr_ton,
                    dest_addr_npi,
                    destination_addr,
                } => Destination {
                    addr: destination_addr.to_bytes(),
                    ton_npi: (dest_addr_ton, dest_addr_npi),
                    is_sme: true,
                },
                DestAddress::DistributionList { dl_name } => Destination {
                    addr: dl_name.to_bytes(),
                    ton_npi: (0, 0),
                    is_sme: false,
                },
            })
            .collect();
        Self {
            operation: SubmitOperation::SubmitMulti,
            source_addr: sm.source_addr.to_bytes(),
            source_ton_npi: (sm.source_addr_ton, sm.source_addr_npi),
            destinations,
            esm_class: sm.esm_class,
            data_coding: sm.data_coding,
            registered_delivery: sm.registered_delivery,
            short_message: sm.short_message.to_bytes(),
            tlvs: sm.tlvs,
        }
    }
}
