//! One customer connection: the reader loop (bind state, dispatch, timers) and the writer task
//! (a bounded queue, fed and flushed when idle, each write bounded by `write_timeout`).
//!
//! States (SMPP 3.4 §2.2): open → bound (transmitter, receiver or transceiver) → closed. Before
//! a bind only bind_*, enquire_link and unbind are served; any other request is answered
//! `ESME_RINVBNDSTS`, as is a submit on a receiver bind and a second bind (`ESME_RALYBND`).
//! Malformed bodies and unknown commands get generic_nack and the session goes on; corrupt
//! framing (a length below 16 or above the maximum) gets a generic_nack and closes it.

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};

use futures::{SinkExt, StreamExt};
use sairex_pdu::{
    Bind, BindResp, COctetString, Command, CommandStatus, DataSm, DataSmResp, DeliverSmResp,
    DestAddress, Pdu, QuerySm, QuerySmResp, SmppCodec, SmppTime, SubmitMulti, SubmitMultiResp,
    SubmitSm, SubmitSmResp, UnsuccessSme,
};
use sairex_store::{SmppAccount, SmppBindType};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, sleep_until};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::bind::{Credentials, authenticate};
use super::registry::SessionLink;
use super::submit::{Submission, submit};
use super::{ServerCtx, metrics, outbox, query};

/// Commands queued for the writer, at most: responses to a full window plus deliver_sm.
const WRITER_QUEUE: usize = 1024;

/// Where a connection is.
enum Bound {
    Open,
    Bound {
        account: Arc<SmppAccount>,
        kind: SmppBindType,
        session: u64,
        window: Arc<Semaphore>,
    },
}

/// The response a request is answered with when it carries only a status.
fn bare_response(pdu: &Pdu) -> Option<Pdu> {
    Some(match pdu {
        Pdu::BindTransmitter(_) => Pdu::BindTransmitterResp(BindResp::default()),
        Pdu::BindReceiver(_) => Pdu::BindReceiverResp(BindResp::default()),
        Pdu::BindTransceiver(_) => Pdu::BindTransceiverResp(BindResp::default()),
        Pdu::SubmitSm(_) => Pdu::SubmitSmResp(SubmitSmResp::default()),
        Pdu::SubmitMulti(_) => Pdu::SubmitMultiResp(SubmitMultiResp::default()),
        Pdu::DataSm(_) => Pdu::DataSmResp(DataSmResp::default()),
        Pdu::DeliverSm(_) => Pdu::DeliverSmResp(DeliverSmResp::default()),
        Pdu::QuerySm(_) => Pdu::QuerySmResp(QuerySmResp::default()),
        Pdu::CancelSm(_) => Pdu::CancelSmResp,
        Pdu::ReplaceSm(_) => Pdu::ReplaceSmResp,
        Pdu::EnquireLink => Pdu::EnquireLinkResp,
        Pdu::Unbind => Pdu::UnbindResp,
        _ => return None,
    })
}

fn is_request(pdu: &Pdu) -> bool {
    pdu.command_id().0 & 0x8000_0000 == 0
}

/// A status-only answer to `command`: its response type, or generic_nack if it has none.
fn answer(command: &Command, status: CommandStatus) -> Command {
    match bare_response(&command.pdu) {
        Some(pdu) => Command::with_status(status, command.sequence_number, pdu),
        None => Command::generic_nack(command.sequence_number, status),
    }
}

/// Serves one connection until it closes.
pub(crate) async fn run<S>(stream: S, peer: SocketAddr, ctx: Arc<ServerCtx>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read, write) = tokio::io::split(stream);
    let codec = SmppCodec::with_max_command_length(ctx.settings.max_command_length);
    let mut reader = FramedRead::new(read, codec);
    let (tx, rx) = mpsc::channel::<Command>(WRITER_QUEUE);
    let broken = CancellationToken::new();
    let writer = tokio::spawn(write_loop(
        FramedWrite::new(write, codec),
        rx,
        ctx.settings.write_timeout,
        broken.clone(),
    ));
    let link = SessionLink::new(tx.clone());
    let mut bound = Bound::Open;
    let settings = Arc::clone(&ctx.settings);
    let bind_deadline = Instant::now() + settings.bind_timeout;
    let mut last_rx = Instant::now();
    let mut enquired_at: Option<Instant> = None;
    let reason = loop {
        let is_bound = matches!(bound, Bound::Bound { .. });
        let enquire_at =
            last_rx.max(enquired_at.unwrap_or(last_rx)) + settings.enquire_link_interval;
        tokio::select! {
            () = broken.cancelled() => break "write failed or timed out",
            () = ctx.shutdown.cancelled() => {
                let _ = tx.send(Command::new(link.next_seq(), Pdu::Unbind)).await;
                break "server shutting down";
            }
            () = link.kick.cancelled(), if is_bound => {
                let _ = tx.send(Command::new(link.next_seq(), Pdu::Unbind)).await;
                break "account changed";
            }
            () = sleep_until(bind_deadline), if !is_bound => break "no bind in time",
            () = sleep_until(last_rx + settings.idle_timeout) => {
                let _ = tx.send(Command::new(link.next_seq(), Pdu::Unbind)).await;
                break "idle";
            }
            () = sleep_until(enquire_at), if is_bound => {
                enquired_at = Some(Instant::now());
                if tx.try_send(Command::new(link.next_seq(), Pdu::EnquireLink)).is_err() {
                    break "writer queue full";
                }
            }
            frame = reader.next() => {
                let command = match frame {
                    None => break "peer closed",
                    Some(Err(e)) => {
                        // Corrupt framing: nothing after it can be trusted.
                        metrics::nack();
                        debug!(%peer, error = %e, "SMPP server: bad frame");
                        let _ = tx.send(Command::generic_nack(0, CommandStatus::ESME_RINVCMDLEN)).await;
                        break "bad frame";
                    }
                    Some(Ok(Err(invalid))) => {
                        metrics::nack();
                        last_rx = Instant::now();
                        if tx.send(invalid.generic_nack()).await.is_err() {
                            break "writer gone";
                        }
                        continue;
                    }
                    Some(Ok(Ok(command))) => command,
                };
                last_rx = Instant::now();
                match handle(&ctx, peer, &link, &mut bound, command).await {
                    Flow::Go => {}
                    Flow::Stop(why) => break why,
                }
            }
        }
    };
    if let Bound::Bound {
        account, session, ..
    } = &bound
    {
        ctx.state.smpp_sessions().deregister(account.id, *session);
        metrics::bound(account.id, ctx.state.smpp_sessions().bound(account.id));
        info!(%peer, system_id = %account.system_id, reason, "SMPP server: session closed");
    } else {
        debug!(%peer, reason, "SMPP server: connection closed");
    }
    // deliver_sm still unanswered go back to the outbox (their senders drop here).
    link.pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    drop(link);
    drop(tx);
    // The writer sends what is queued (the unbind, the last responses), bounded by its
    // write timeout.
    let _ = writer.await;
}

enum Flow {
    Go,
    Stop(&'static str),
}

async fn send(link: &SessionLink, command: Command) -> Flow {
    match link.tx.send(command).await {
        Ok(()) => Flow::Go,
        Err(_) => Flow::Stop("writer gone"),
    }
}

async fn handle(
    ctx: &Arc<ServerCtx>,
    peer: SocketAddr,
    link: &SessionLink,
    bound: &mut Bound,
    command: Command,
) -> Flow {
    let seq = command.sequence_number;
    if !is_request(&command.pdu) {
        on_response(link, &command);
        return match command.pdu {
            Pdu::UnbindResp => Flow::Stop("unbound"),
            _ => Flow::Go,
        };
    }
    match &command.pdu {
        Pdu::EnquireLink => return send(link, Command::new(seq, Pdu::EnquireLinkResp)).await,
        Pdu::Unbind => {
            let flow = send(link, Command::new(seq, Pdu::UnbindResp)).await;
            return match flow {
                Flow::Go => Flow::Stop("unbind"),
                stop => stop,
            };
        }
        Pdu::BindTransmitter(b) | Pdu::BindReceiver(b) | Pdu::BindTransceiver(b) => {
            let kind = match &command.pdu {
                Pdu::BindTransmitter(_) => SmppBindType::Transmitter,
                Pdu::BindReceiver(_) => SmppBindType::Receiver,
                _ => SmppBindType::Transceiver,
            };
            if matches!(bound, Bound::Bound { .. }) {
                return send(link, answer(&command, CommandStatus::ESME_RALYBND)).await;
            }
            return on_bind(ctx, peer, link, bound, &command, kind, b).await;
        }
        _ => {}
    }
    let Bound::Bound {
        account,
        kind,
        window,
        ..
    } = bound
    else {
        return send(link, answer(&command, CommandStatus::ESME_RINVBNDSTS)).await;
    };
    let transmits = matches!(kind, SmppBindType::Transmitter | SmppBindType::Transceiver);
    match command.pdu {
        Pdu::SubmitSm(_)
        | Pdu::DataSm(_)
        | Pdu::SubmitMulti(_)
        | Pdu::QuerySm(_)
        | Pdu::CancelSm(_)
        | Pdu::ReplaceSm(_)
            if !transmits =>
        {
            send(link, answer(&command, CommandStatus::ESME_RINVBNDSTS)).await
        }
        Pdu::SubmitSm(_)
        | Pdu::DataSm(_)
        | Pdu::SubmitMulti(_)
        | Pdu::QuerySm(_)
        | Pdu::CancelSm(_) => {
            let Ok(permit) = Arc::clone(window).try_acquire_owned() else {
                metrics::refused(account.id, CommandStatus::ESME_RMSGQFUL);
                return send(link, answer(&command, CommandStatus::ESME_RMSGQFUL)).await;
            };
            metrics::window(account.id, 1.0);
            let (state, account, tx) = (ctx.state.clone(), Arc::clone(account), link.tx.clone());
            // Answered from its own task: the reader goes on (the window bounds how many).
            tokio::spawn(async move {
                let response = serve_request(&state, &account, command).await;
                let _ = tx.send(response).await;
                metrics::window(account.id, -1.0);
                drop(permit);
            });
            Flow::Go
        }
        // replace_sm is not offered: the queue keeps no replaceable copies.
        Pdu::ReplaceSm(_) => send(link, answer(&command, CommandStatus::ESME_RREPLACEFAIL)).await,
        // deliver_sm, outbind and alert_notification go from an SMSC to an ESME, never to us.
        Pdu::DeliverSm(_) => send(link, answer(&command, CommandStatus::ESME_RINVBNDSTS)).await,
        _ => {
            metrics::nack();
            send(
                link,
                Command::generic_nack(seq, CommandStatus::ESME_RINVCMDID),
            )
            .await
        }
    }
}

/// A response from the customer: deliver_sm_resp (or a generic_nack of our deliver_sm) settles
/// the outbox entry waiting on that sequence number.
fn on_response(link: &SessionLink, command: &Command) {
    if matches!(command.pdu, Pdu::DeliverSmResp(_) | Pdu::GenericNack) {
        let waiting = link
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&command.sequence_number);
        if let Some(waiting) = waiting {
            let status =
                if matches!(command.pdu, Pdu::GenericNack) && command.command_status.is_ok() {
                    CommandStatus::ESME_RUNKNOWNERR
                } else {
                    command.command_status
                };
            let _ = waiting.send(status);
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn on_bind(
    ctx: &Arc<ServerCtx>,
    peer: SocketAddr,
    link: &SessionLink,
    bound: &mut Bound,
    command: &Command,
    kind: SmppBindType,
    bind: &Bind,
) -> Flow {
    let credentials = Credentials {
        kind,
        system_id: bind.system_id.to_string_lossy(),
        password: bind.password.as_bytes().to_vec(),
    };
    let account = match authenticate(&ctx.state, &ctx.lockout, peer.ip(), &credentials).await {
        Ok(a) => a,
        // The connection stays open (SMPP 3.4 §2.2: still OPEN), within the bind timeout.
        Err(status) => return send(link, answer(command, status)).await,
    };
    let registry = ctx.state.smpp_sessions();
    let (session, start_pump) =
        match registry.register(account.id, account.max_binds, kind, link.clone()) {
            Ok(r) => r,
            Err(_) => {
                metrics::bad_bind("too_many_binds");
                let _ = send(link, answer(command, CommandStatus::ESME_RBINDFAIL)).await;
                return Flow::Stop("too many binds");
            }
        };
    metrics::bound(account.id, registry.bound(account.id));
    let mut resp = BindResp {
        system_id: COctetString::from_str_checked(&ctx.settings.system_id).unwrap_or_default(),
        ..BindResp::default()
    };
    resp.tlvs.set_sc_interface_version(0x34);
    let pdu = match kind {
        SmppBindType::Transmitter => Pdu::BindTransmitterResp(resp),
        SmppBindType::Receiver => Pdu::BindReceiverResp(resp),
        SmppBindType::Transceiver => Pdu::BindTransceiverResp(resp),
    };
    info!(%peer, system_id = %account.system_id, ?kind, "SMPP server: bound");
    let window = Arc::new(Semaphore::new(
        usize::try_from(account.max_window).unwrap_or(1),
    ));
    let account = Arc::new(account);
    *bound = Bound::Bound {
        account: Arc::clone(&account),
        kind,
        session,
        window,
    };
    let flow = send(link, Command::new(command.sequence_number, pdu)).await;
    if start_pump {
        outbox::spawn_pump(
            ctx.state.clone(),
            Arc::clone(&ctx.settings),
            (*account).clone(),
        );
    }
    flow
}

fn submission_of_submit(s: SubmitSm) -> Submission {
    Submission {
        source_addr: s.source_addr.to_string_lossy(),
        dest_ton: s.dest_addr_ton,
        destination: s.destination_addr.to_string_lossy(),
        esm_class: s.esm_class,
        data_coding: s.data_coding,
        registered_delivery: s.registered_delivery,
        priority_flag: s.priority_flag,
        schedule_delivery_time: s.schedule_delivery_time.as_bytes().to_vec(),
        validity_period: s.validity_period.as_bytes().to_vec(),
        short_message: s.short_message.to_bytes(),
        tlvs: s.tlvs,
    }
}

fn submission_of_data(d: DataSm) -> Submission {
    Submission {
        source_addr: d.source_addr.to_string_lossy(),
        dest_ton: d.dest_addr_ton,
        destination: d.destination_addr.to_string_lossy(),
        esm_class: d.esm_class,
        data_coding: d.data_coding,
        registered_delivery: d.registered_delivery,
        priority_flag: 0,
        schedule_delivery_time: Vec::new(),
        validity_period: Vec::new(),
        short_message: bytes::Bytes::new(),
        tlvs: d.tlvs,
    }
}

/// Serves a submit, query or cancel; the response to write.
async fn serve_request(
    state: &crate::state::AppState,
    account: &SmppAccount,
    command: Command,
) -> Command {
    let seq = command.sequence_number;
    let bare = bare_response(&command.pdu);
    let id_text = |id| account.receipt_id_format.format(id);
    let message_id = |id| COctetString::from_str_checked(&id_text(id)).unwrap_or_default();
    let result = match command.pdu {
        Pdu::SubmitSm(s) => submit(state, account, submission_of_submit(s))
            .await
            .map(|id| {
                Pdu::SubmitSmResp(SubmitSmResp {
                    message_id: message_id(id),
                    ..SubmitSmResp::default()
                })
            }),
        Pdu::DataSm(d) => submit(state, account, submission_of_data(d))
            .await
            .map(|id| {
                Pdu::DataSmResp(DataSmResp {
                    message_id: message_id(id),
                    ..DataSmResp::default()
                })
            }),
        Pdu::SubmitMulti(m) => Ok(submit_multi(state, account, m, &id_text).await),
        Pdu::QuerySm(q) => query_sm(state, account, &q),
        Pdu::CancelSm(c) => query::cancel(state, account, &c.message_id.to_string_lossy())
            .await
            .map(|()| Pdu::CancelSmResp),
        _ => Err(CommandStatus::ESME_RINVCMDID),
    };
    match result {
        Ok(pdu) => Command::new(seq, pdu),
        Err(status) => {
            metrics::refused(account.id, status);
            match bare {
                Some(bare) => Command::with_status(status, seq, bare),
                None => Command::generic_nack(seq, status),
            }
        }
    }
}

/// submit_multi (SMPP 3.4 §4.5): one message per SME address; the first accepted id is
/// the answer, refused addresses are listed in `unsuccess_sme`. Distribution lists are not
/// kept here (`ESME_RINVDESTFLAG` for each).
async fn submit_multi(
    state: &crate::state::AppState,
    account: &SmppAccount,
    m: SubmitMulti,
    id_text: &(dyn Fn(u64) -> String + Sync),
) -> Pdu {
    let mut first = None;
    let mut unsuccess = Vec::new();
    for dest in m.dest_addresses.as_slice() {
        let (ton, npi, addr) = match dest {
            DestAddress::SmeAddress {
                dest_addr_ton,
                dest_addr_npi,
                destination_addr,
            } => (*dest_addr_ton, *dest_addr_npi, destination_addr.clone()),
            DestAddress::DistributionList { .. } => {
                unsuccess.push(UnsuccessSme {
                    error_status_code: CommandStatus::ESME_RINVDESTFLAG,
                    ..UnsuccessSme::default()
                });
                continue;
            }
        };
        let sub = Submission {
            source_addr: m.source_addr.to_string_lossy(),
            dest_ton: ton,
            destination: addr.to_string_lossy(),
            esm_class: m.esm_class,
            data_coding: m.data_coding,
            registered_delivery: m.registered_delivery,
            priority_flag: m.priority_flag,
            schedule_delivery_time: m.schedule_delivery_time.as_bytes().to_vec(),
            validity_period: m.validity_period.as_bytes().to_vec(),
            short_message: m.short_message.to_bytes(),
            tlvs: m.tlvs.clone(),
        };
        match submit(state, account, sub).await {
            Ok(id) => {
                first.get_or_insert(id);
            }
            Err(status) => unsuccess.push(UnsuccessSme {
                dest_addr_ton: ton,
                dest_addr_npi: npi,
                destination_addr: addr,
                error_status_code: status,
            }),
        }
    }
    Pdu::SubmitMultiResp(SubmitMultiResp {
        message_id: first
            .and_then(|id| COctetString::from_str_checked(&id_text(id)).ok())
            .unwrap_or_default(),
        unsuccess_smes: sairex_pdu::SmeList::new(unsuccess).unwrap_or_default(),
        ..SubmitMultiResp::default()
    })
}

fn query_sm(
    state: &crate::state::AppState,
    account: &SmppAccount,
    q: &QuerySm,
) -> Result<Pdu, CommandStatus> {
    let answer = query::query(state, account, &q.message_id.to_string_lossy())?;
    Ok(Pdu::QuerySmResp(QuerySmResp {
        message_id: q.message_id.clone(),
        final_date: SmppTime::new(&answer.final_date).unwrap_or_default(),
        message_state: answer.state as u8,
        error_code: 0,
    }))
}

async fn write_loop<W>(
    mut sink: FramedWrite<W, SmppCodec>,
    mut rx: mpsc::Receiver<Command>,
    timeout: std::time::Duration,
    broken: CancellationToken,
) where
    W: AsyncWrite + Unpin,
{
    while let Some(first) = rx.recv().await {
        let burst = async {
            sink.feed(first).await?;
            // A burst becomes one write: feed what is queued, flush once.
            while let Ok(next) = rx.try_recv() {
                sink.feed(next).await?;
            }
            sink.flush().await
        };
        match tokio::time::timeout(timeout, burst).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => {
                broken.cancel();
                return;
            }
        }
    }
    let _ = tokio::time::timeout(timeout, SinkExt::<Command>::close(&mut sink)).await;
}
