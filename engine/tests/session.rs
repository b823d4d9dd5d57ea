//! The SMPP client session against real peers on loopback: the in-process SMSC simulator for
//! the ordinary protocol, and a hand-driven fake SMSC for what the simulator cannot be made to
//! do (ignore enquire_link, send unknown or malformed PDUs, corrupt the framing, outbind).
//! Every wait is bounded; timings are short real durations, checked loosely.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use sairex_engine::classify::SubmitOutcome;
use sairex_engine::session::{
    DeliverAck, DeliverStatus, DisconnectReason, NotSentReason, SessionActor, SessionArgs,
    SessionConfig, SessionEvent, SessionMsg, SessionRef, SubmitResult, TlsSettings,
};
use sairex_loadtest::sim::{ReceiptPolicy, SimConfig, SimHandle, SimServer, TlsConfig};
use sairex_pdu::{
    BindResp, COctetString, Command, CommandId, CommandStatus, DeliverSm, Outbind, Pdu,
    ShortMessage, SmppCodec, SubmitSm, SubmitSmResp,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::codec::Framed;

/// Upper bound on any single wait.
const WAIT: Duration = Duration::from_secs(10);

mod common;
use common::ms;

fn config_for(addr: SocketAddr) -> SessionConfig {
    common::sim_session(addr)
}

async fn sim(config: SimConfig) -> SimHandle {
    SimServer::start(SimConfig {
        receipts: ReceiptPolicy::Off,
        ..config
    })
    .await
    .unwrap()
}

fn submit_sm(text: &str, registered_delivery: u8) -> SubmitSm {
    SubmitSm {
        source_addr: "Sairex".try_into().unwrap(),
        destination_addr: "923001234567".try_into().unwrap(),
        short_message: ShortMessage::new(Bytes::copy_from_slice(text.as_bytes())).unwrap(),
        registered_delivery,
        ..SubmitSm::default()
    }
}

/// A running session and the owner's end of its event channel.
struct Owner {
    session: SessionRef,
    handle: JoinHandle<()>,
    events: mpsc::Receiver<SessionEvent>,
}

impl Owner {
    async fn start(config: SessionConfig) -> Self {
        let (tx, events) = mpsc::channel(1024);
        let (session, handle) = SessionActor::start(SessionArgs {
            config,
            events: tx,
            name: "test".into(),
        })
        .await
        .unwrap();
        Self {
            session,
            handle,
            events,
        }
    }

    async fn next(&mut self) -> SessionEvent {
        timeout(WAIT, self.events.recv())
            .await
            .expect("an event in time")
            .expect("the session keeps its channel open")
    }

    /// Skips events until a deliver_sm, returned with its ack.
    async fn deliver(&mut self, what: &str) -> (DeliverSm, DeliverAck) {
        let deadline = Instant::now() + WAIT;
        loop {
            let event = timeout(deadline - Instant::now(), self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("channel open");
            if let SessionEvent::Deliver { deliver, ack } = event {
                return (deliver, ack);
            }
        }
    }

    /// Skips events until `pick` accepts one.
    async fn until<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&SessionEvent) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let event = timeout(deadline - Instant::now(), self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("channel open");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }

    /// Waits for the bind and the credit that follows it.
    async fn bound(&mut self) -> u32 {
        self.until("Bound", |e| {
            matches!(e, SessionEvent::Bound { .. }).then_some(())
        })
        .await;
        match self.next().await {
            SessionEvent::WindowFree(n) => n,
            other => panic!("expected credit after the bind, got {other:?}"),
        }
    }

    fn submit(&self, token: u64, pdu: SubmitSm) {
        self.session
            .cast(SessionMsg::Submit { token, pdu })
            .unwrap();
    }

    async fn result(&mut self, token: u64) -> SubmitResult {
        self.until("a submit result", |e| match e {
            SessionEvent::Submitted { token: t, result } if *t == token => Some(result.clone()),
            _ => None,
        })
        .await
    }

    async fn disconnected(&mut self) -> DisconnectReason {
        self.until("Disconnected", |e| match e {
            SessionEvent::Disconnected { reason } => Some(*reason),
            _ => None,
        })
        .await
    }
}

async fn eventually(
    sim: &SimHandle,
    what: &str,
    check: impl Fn(&sairex_loadtest::sim::SimStats) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    while !check(&sim.stats()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            sim.stats()
        );
        tokio::time::sleep(ms(10)).await;
    }
}

#[tokio::test]
async fn binds_as_transceiver_and_a_submit_is_accepted_with_the_simulators_id() {
    let sim = sim(SimConfig::default()).await;
    let mut owner = Owner::start(config_for(sim.addr())).await;
    assert_eq!(
        owner.bound().await,
        64,
        "the whole default window is granted"
    );
    owner.submit(1, submit_sm("hello", 0));
    let SubmitResult::Accepted { message_id } = owner.result(1).await else {
        panic!("not accepted");
    };
    let received = sim.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].message_id.as_deref(),
        Some(message_id.to_str().unwrap())
    );
    assert_eq!(&received[0].short_message[..], b"hello");
    assert_eq!(sim.stats().binds.transceiver, 1);
}

#[tokio::test]
async fn a_wrong_password_is_reported_and_reconnects_back_off() {
    let sim = sim(SimConfig::default()).await;
    let mut owner = Owner::start(SessionConfig {
        password: "wrong".try_into().unwrap(),
        ..config_for(sim.addr())
    })
    .await;
    // Not bound: a submit is refused at once, never written.
    owner.submit(1, submit_sm("early", 0));
    let mut at = Vec::new();
    let mut saw_not_sent = false;
    while at.len() < 5 {
        match owner.next().await {
            SessionEvent::Disconnected {
                reason: DisconnectReason::BindRefused(status),
            } => {
                assert_eq!(status, CommandStatus::ESME_RINVPASWD);
                at.push(Instant::now());
            }
            SessionEvent::Submitted { token: 1, result } => {
                assert_eq!(
                    result,
                    SubmitResult::NotSent {
                        reason: NotSentReason::NotBound
                    }
                );
                saw_not_sent = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_not_sent);
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    // Back-off 50 ms doubling to 200 ms, jittered into the upper half, never below 50 ms:
    // attempts 0 and 1 wait at least 50 ms, attempts 2 and later at least 100 ms.
    for (i, gap) in gaps.iter().enumerate() {
        let floor = if i < 2 { ms(45) } else { ms(95) };
        assert!(*gap >= floor, "gap {i} was {gap:?}: {gaps:?}");
        assert!(*gap < ms(1000), "gap {i} was {gap:?}: capped at 200 ms");
    }
    assert!(sim.stats().binds.failures >= 5);
    assert_eq!(sim.stats().binds.transceiver, 0);
}

#[tokio::test]
async fn the_window_is_honoured_by_an_owner_that_follows_credit_and_one_that_does_not() {
    const WINDOW: u32 = 8;
    let sim = sim(SimConfig {
        window: Some(WINDOW),
        response_latency: ms(20),
        ..SimConfig::default()
    })
    .await;
    let mut owner = Owner::start(SessionConfig {
        window: NonZeroU32::new(WINDOW).unwrap(),
        ..config_for(sim.addr())
    })
    .await;
    let mut credit = owner.bound().await;
    assert_eq!(credit, WINDOW);

    // An owner that pulls by credit: 10 windows' worth.
    let total = u64::from(WINDOW) * 10;
    let (mut sent, mut done) = (0u64, 0u64);
    while done < total {
        while credit > 0 && sent < total {
            owner.submit(sent, submit_sm("w", 0));
            sent += 1;
            credit -= 1;
        }
        match owner.next().await {
            SessionEvent::WindowFree(n) => credit += n,
            SessionEvent::Submitted {
                result: SubmitResult::Accepted { .. },
                ..
            } => done += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let stats = sim.stats();
    assert_eq!(stats.window_violations, 0);
    assert_eq!(
        stats.max_outstanding,
        u64::from(WINDOW),
        "the window was used in full"
    );

    // An owner that ignores credit: the backlog holds one more window, the rest is refused.
    let burst = u64::from(WINDOW) * 2 + 3;
    for token in 1000..1000 + burst {
        owner.submit(token, submit_sm("b", 0));
    }
    let (mut accepted, mut overloaded) = (0, 0);
    while accepted + overloaded < burst {
        match owner.next().await {
            SessionEvent::Submitted {
                result: SubmitResult::Accepted { .. },
                ..
            } => accepted += 1,
            SessionEvent::Submitted {
                result:
                    SubmitResult::NotSent {
                        reason: NotSentReason::Overloaded,
                    },
                ..
            } => overloaded += 1,
            SessionEvent::WindowFree(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(overloaded, 3);
    assert_eq!(sim.stats().window_violations, 0);
}

#[tokio::test]
async fn throttling_is_refused_as_throttled_with_an_event() {
    let sim = sim(SimConfig {
        error_rate: 1.0,
        error_status: CommandStatus::ESME_RTHROTTLED,
        ..SimConfig::default()
    })
    .await;
    let mut owner = Owner::start(config_for(sim.addr())).await;
    owner.bound().await;
    owner.submit(1, submit_sm("slow down", 0));
    assert!(matches!(
        owner.next().await,
        SessionEvent::Throttled {
            status: CommandStatus::ESME_RTHROTTLED
        }
    ));
    assert_eq!(
        owner.result(1).await,
        SubmitResult::Refused {
            status: CommandStatus::ESME_RTHROTTLED,
            outcome: SubmitOutcome::Throttled
        }
    );
}

#[tokio::test]
async fn a_response_timeout_leaves_the_submit_in_doubt_and_the_bind_up() {
    let sim = sim(SimConfig {
        response_latency: ms(1500),
        ..SimConfig::default()
    })
    .await;
    let mut owner = Owner::start(SessionConfig {
        response_timeout: ms(200),
        ..config_for(sim.addr())
    })
    .await;
    owner.bound().await;
    let sent = Instant::now();
    owner.submit(1, submit_sm("late", 0));
    assert_eq!(owner.result(1).await, SubmitResult::InDoubt);
    let waited = sent.elapsed();
    assert!(waited >= ms(200) && waited < ms(1000), "{waited:?}");
    // The slot comes back as credit, and the late response (for a sequence number no longer
    // outstanding) is ignored: no further result, no disconnect.
    assert!(matches!(owner.next().await, SessionEvent::WindowFree(1)));
    eventually(&sim, "the late response", |s| {
        s.submits.responses.get("ESME_ROK") == Some(&1)
    })
    .await;
    tokio::time::sleep(ms(100)).await;
    assert!(owner.events.try_recv().is_err(), "nothing more to say");
}

#[tokio::test]
async fn receipts_and_mos_arrive_as_deliver_events_and_are_acknowledged() {
    let sim = SimServer::start(SimConfig {
        receipts: ReceiptPolicy::Requested,
        receipt_delay: ms(10),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut owner = Owner::start(config_for(sim.addr())).await;
    owner.bound().await;
    owner.submit(1, submit_sm("with receipt", 1));
    let SubmitResult::Accepted { message_id } = owner.result(1).await else {
        panic!("not accepted");
    };
    let (receipt, receipt_ack) = owner.deliver("the receipt").await;
    assert!(receipt.is_receipt());
    assert_eq!(receipt.receipt().unwrap().id, message_id.to_str().unwrap());

    sim.send_mo("923001234567", "Sairex", "STOP").await.unwrap();
    let (mo, mo_ack) = owner.deliver("the MO").await;
    assert!(!mo.is_receipt());
    assert_eq!(mo.short_message.as_bytes(), b"STOP");

    // Nothing is answered before the owner completes the acks (after its store write).
    tokio::time::sleep(ms(100)).await;
    let s = sim.stats();
    assert_eq!(
        (s.receipts.acked, s.mo.acked),
        (0, 0),
        "answered early: {s:?}"
    );
    receipt_ack.complete(DeliverStatus::Done);
    mo_ack.complete(DeliverStatus::Done);
    eventually(&sim, "both acknowledged", |s| {
        s.receipts.acked == 1 && s.mo.acked == 1
    })
    .await;
}

#[tokio::test]
async fn a_deliver_not_made_durable_is_answered_with_a_temporary_error_and_redelivered() {
    let sim = SimServer::start(SimConfig {
        delivery_retry_interval: ms(50),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut owner = Owner::start(config_for(sim.addr())).await;
    owner.bound().await;
    sim.send_mo("923001234567", "Sairex", "hello")
        .await
        .unwrap();
    let (_, ack) = owner.deliver("the MO").await;
    ack.complete(DeliverStatus::Retry);
    let (again, ack) = owner.deliver("the MO again").await;
    assert_eq!(again.short_message.as_bytes(), b"hello");
    // Dropped without an answer: also a temporary error.
    drop(ack);
    let (_, ack) = owner.deliver("the MO a third time").await;
    ack.complete(DeliverStatus::Done);
    eventually(&sim, "nacked twice, then acknowledged", |s| {
        s.mo.nacked == 2 && s.mo.acked == 1
    })
    .await;
}

#[tokio::test]
async fn reconnects_and_binds_again_after_the_simulator_restarts_on_the_same_port() {
    let first = sim(SimConfig::default()).await;
    let addr = first.addr();
    let mut owner = Owner::start(config_for(addr)).await;
    owner.bound().await;
    first.shutdown().await;
    assert_eq!(owner.disconnected().await, DisconnectReason::UnbindFromPeer);
    // Connection refused while it is down: reported, and retried with back-off.
    assert!(matches!(
        owner.disconnected().await,
        DisconnectReason::ConnectFailed(_) | DisconnectReason::ClosedByPeer
    ));
    let second = sim(SimConfig {
        listen: addr,
        ..SimConfig::default()
    })
    .await;
    assert_eq!(owner.bound().await, 64);
    owner.submit(2, submit_sm("again", 0));
    assert!(matches!(
        owner.result(2).await,
        SubmitResult::Accepted { .. }
    ));
    assert_eq!(second.stats().binds.transceiver, 1);
}

#[tokio::test]
async fn enquire_link_keeps_an_idle_bind_alive() {
    let sim = sim(SimConfig::default()).await;
    let mut owner = Owner::start(SessionConfig {
        enquire_link_interval: ms(100),
        ..config_for(sim.addr())
    })
    .await;
    owner.bound().await;
    eventually(&sim, "three enquire_links", |s| s.enquire_links >= 3).await;
    while let Ok(event) = owner.events.try_recv() {
        assert!(
            !matches!(event, SessionEvent::Disconnected { .. }),
            "answered enquire_links keep the bind: {event:?}"
        );
    }
    assert_eq!(sim.stats().binds.transceiver, 1);
}

#[tokio::test]
async fn binds_over_tls_with_a_private_ca() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let sim = sim(SimConfig {
        tls: Some(TlsConfig::Pem {
            cert: certified.cert.pem().into_bytes(),
            key: certified.signing_key.serialize_pem().into_bytes(),
        }),
        ..SimConfig::default()
    })
    .await;
    let mut owner = Owner::start(SessionConfig {
        tls: Some(TlsSettings {
            ca_pem: certified.cert.pem().into_bytes(),
            client_cert_pem: None,
            client_key_pem: None,
            server_name: Some("localhost".into()),
        }),
        ..config_for(sim.addr())
    })
    .await;
    owner.bound().await;
    owner.submit(1, submit_sm("over TLS", 0));
    assert!(matches!(
        owner.result(1).await,
        SubmitResult::Accepted { .. }
    ));

    // A CA that did not sign the server's certificate: the handshake fails, and is retried.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let mut wrong = Owner::start(SessionConfig {
        tls: Some(TlsSettings {
            ca_pem: other.cert.pem().into_bytes(),
            client_cert_pem: None,
            client_key_pem: None,
            server_name: Some("localhost".into()),
        }),
        ..config_for(sim.addr())
    })
    .await;
    assert!(matches!(
        wrong.disconnected().await,
        DisconnectReason::ConnectFailed(_)
    ));
}

#[tokio::test]
async fn drain_waits_for_in_flight_unbinds_and_stops() {
    let sim = sim(SimConfig {
        response_latency: ms(150),
        ..SimConfig::default()
    })
    .await;
    let mut owner = Owner::start(config_for(sim.addr())).await;
    owner.bound().await;
    for token in 1..=5 {
        owner.submit(token, submit_sm("in flight", 0));
    }
    owner.session.cast(SessionMsg::Drain).unwrap();
    owner.submit(6, submit_sm("too late", 0));
    let mut results = std::collections::BTreeMap::new();
    let reason = loop {
        match owner.next().await {
            SessionEvent::Submitted { token, result } => {
                assert!(
                    results.insert(token, result).is_none(),
                    "one result per submit"
                );
            }
            SessionEvent::Disconnected { reason } => break reason,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(reason, DisconnectReason::Drained);
    assert_eq!(results.len(), 6, "every submit reported: {results:?}");
    for token in 1..=5 {
        assert!(matches!(results[&token], SubmitResult::Accepted { .. }));
    }
    assert_eq!(
        results[&6],
        SubmitResult::NotSent {
            reason: NotSentReason::Draining
        }
    );
    timeout(WAIT, owner.handle).await.unwrap().unwrap();
    eventually(&sim, "the unbind", |s| s.binds.unbinds_received == 1).await;
}

#[tokio::test]
async fn drain_past_its_grace_reports_what_is_unanswered_in_doubt() {
    let sim = sim(SimConfig {
        response_latency: Duration::from_secs(3),
        ..SimConfig::default()
    })
    .await;
    let mut owner = Owner::start(SessionConfig {
        drain_grace: ms(100),
        response_timeout: ms(500),
        ..config_for(sim.addr())
    })
    .await;
    owner.bound().await;
    for token in 1..=3 {
        owner.submit(token, submit_sm("slow", 0));
    }
    let started = Instant::now();
    owner.session.cast(SessionMsg::Drain).unwrap();
    let mut in_doubt = 0;
    loop {
        match owner.next().await {
            SessionEvent::Submitted {
                result: SubmitResult::InDoubt,
                ..
            } => in_doubt += 1,
            SessionEvent::Disconnected { reason } => {
                assert_eq!(reason, DisconnectReason::Drained);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(in_doubt, 3);
    timeout(WAIT, owner.handle).await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by grace and timeouts"
    );
    eventually(&sim, "the unbind", |s| s.binds.unbinds_received == 1).await;
}

// === A hand-driven SMSC ===

type Peer = Framed<TcpStream, SmppCodec>;

async fn accept(listener: &TcpListener) -> Peer {
    let (tcp, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    Framed::new(tcp, SmppCodec::new())
}

async fn read(peer: &mut Peer) -> Command {
    timeout(WAIT, peer.next())
        .await
        .expect("a PDU in time")
        .expect("connection open")
        .expect("framing")
        .expect("a valid PDU")
}

/// Reads the next PDU that is not an enquire_link, answering enquire_links on the way.
async fn read_skipping_keepalive(peer: &mut Peer) -> Command {
    loop {
        let command = read(peer).await;
        if command.pdu == Pdu::EnquireLink {
            peer.send(Command::new(command.sequence_number, Pdu::EnquireLinkResp))
                .await
                .unwrap();
        } else {
            return command;
        }
    }
}

async fn accept_bind(peer: &mut Peer) {
    let bind = read(peer).await;
    let Pdu::BindTransceiver(body) = bind.pdu else {
        panic!("expected bind_transceiver, got {bind:?}");
    };
    assert_eq!(body.system_id.as_bytes(), b"sairex");
    peer.send(Command::new(
        bind.sequence_number,
        Pdu::BindTransceiverResp(BindResp {
            system_id: "fake".try_into().unwrap(),
            ..BindResp::default()
        }),
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn protocol_edges_against_a_hand_driven_smsc() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut owner = Owner::start(SessionConfig {
        enquire_link_interval: ms(100),
        response_timeout: ms(300),
        ..config_for(listener.local_addr().unwrap())
    })
    .await;

    // Connection 1.
    let mut peer = accept(&listener).await;
    accept_bind(&mut peer).await;
    owner.bound().await;

    // An unknown command is answered generic_nack / ESME_RINVCMDID.
    peer.send(Command::new(
        41,
        Pdu::Unknown {
            command_id: CommandId(0x0000_0999),
            body: Bytes::new(),
        },
    ))
    .await
    .unwrap();
    let nack = read_skipping_keepalive(&mut peer).await;
    assert_eq!(
        (nack.pdu, nack.command_status, nack.sequence_number),
        (Pdu::GenericNack, CommandStatus::ESME_RINVCMDID, 41)
    );

    // A deliver_sm whose body does not parse is answered with the decoder's generic_nack.
    let mut raw = Vec::new();
    raw.extend_from_slice(&19u32.to_be_bytes());
    raw.extend_from_slice(&CommandId::DELIVER_SM.0.to_be_bytes());
    raw.extend_from_slice(&0u32.to_be_bytes());
    raw.extend_from_slice(&42u32.to_be_bytes());
    raw.extend_from_slice(b"abc");
    peer.get_mut().write_all(&raw).await.unwrap();
    let nack = read_skipping_keepalive(&mut peer).await;
    assert_eq!((nack.pdu, nack.sequence_number), (Pdu::GenericNack, 42));
    assert!(!nack.command_status.is_ok());

    // A response for a sequence number never sent is ignored; the session answers enquire_link.
    peer.send(Command::new(
        4242,
        SubmitSmResp {
            message_id: "stray".try_into().unwrap(),
            ..SubmitSmResp::default()
        },
    ))
    .await
    .unwrap();
    peer.send(Command::new(43, Pdu::EnquireLink)).await.unwrap();
    let resp = read_skipping_keepalive(&mut peer).await;
    assert_eq!((resp.pdu, resp.sequence_number), (Pdu::EnquireLinkResp, 43));

    // generic_nack for a submit: refused with its status.
    owner.submit(1, submit_sm("nacked", 0));
    let submit = read_skipping_keepalive(&mut peer).await;
    assert_eq!(submit.command_id(), CommandId::SUBMIT_SM);
    peer.send(Command::generic_nack(
        submit.sequence_number,
        CommandStatus::ESME_RSYSERR,
    ))
    .await
    .unwrap();
    assert_eq!(
        owner.result(1).await,
        SubmitResult::Refused {
            status: CommandStatus::ESME_RSYSERR,
            outcome: SubmitOutcome::Temporary
        }
    );

    // The SMSC reads a submit and vanishes: the submit is in doubt, then the loss reported.
    owner.submit(2, submit_sm("lost", 0));
    let submit = read_skipping_keepalive(&mut peer).await;
    assert_eq!(submit.command_id(), CommandId::SUBMIT_SM);
    drop(peer);
    assert_eq!(owner.result(2).await, SubmitResult::InDoubt);
    assert_eq!(owner.disconnected().await, DisconnectReason::ClosedByPeer);

    // Connection 2: enquire_link is never answered, so the session gives up on it.
    let mut peer = accept(&listener).await;
    accept_bind(&mut peer).await;
    owner.bound().await;
    let enquire = read(&mut peer).await;
    assert_eq!(enquire.pdu, Pdu::EnquireLink);
    assert_eq!(
        owner.disconnected().await,
        DisconnectReason::KeepaliveTimedOut
    );
    drop(peer);

    // Connection 3: corrupt framing (command_length 5) closes the connection.
    let mut peer = accept(&listener).await;
    accept_bind(&mut peer).await;
    owner.bound().await;
    peer.get_mut()
        .write_all(&[0, 0, 0, 5, 0, 0, 0, 0])
        .await
        .unwrap();
    assert_eq!(owner.disconnected().await, DisconnectReason::CorruptFraming);

    // Connection 4: and the session is back.
    let mut peer = accept(&listener).await;
    accept_bind(&mut peer).await;
    owner.bound().await;
}

#[tokio::test]
async fn outbind_is_answered_with_a_receiver_bind() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut owner = Owner::start(SessionConfig {
        wait_for_outbind: true,
        ..config_for(listener.local_addr().unwrap())
    })
    .await;
    let mut peer = accept(&listener).await;
    peer.send(Command::new(
        1,
        Outbind {
            system_id: "fake".try_into().unwrap(),
            password: COctetString::empty(),
        },
    ))
    .await
    .unwrap();
    let bind = read(&mut peer).await;
    assert_eq!(bind.command_id(), CommandId::BIND_RECEIVER);
    peer.send(Command::new(
        bind.sequence_number,
        Pdu::BindReceiverResp(BindResp::default()),
    ))
    .await
    .unwrap();
    owner
        .until("Bound", |e| {
            matches!(e, SessionEvent::Bound { .. }).then_some(())
        })
        .await;
    // A receiver bind grants no credit and refuses submits.
    owner.submit(1, submit_sm("no", 0));
    assert!(matches!(
        owner.next().await,
        SessionEvent::Submitted {
            token: 1,
            result: SubmitResult::NotSent {
                reason: NotSentReason::ReceiveOnly
            }
        }
    ));
}
