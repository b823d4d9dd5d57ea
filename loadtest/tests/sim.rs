//! The SMSC simulator over real TCP (and TLS) on 127.0.0.1, driven by a bare `Framed` client.
//!
//! Waits are bounded by `WAIT`; the only fixed pauses are the short silence windows that prove
//! something did *not* happen, and the ordering tricks used instead of them are explained where
//! they are used.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use sairex_loadtest::sim::{
    FinalState, IdFormat, ReceiptMix, ReceiptPolicy, SimConfig, SimError, SimHandle, SimServer,
    SimStats, SubmitOperation, TlsConfig,
};
use sairex_pdu::{
    Bind, Command, CommandId, CommandStatus, DataSm, DeliverSm, DeliverSmResp, DestAddress, Pdu,
    ShortMessage, SmeList, SmppCodec, SubmitMulti, SubmitSm, Tlvs,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_util::codec::{Decoder, Framed};

/// Upper bound on any single wait; tests normally finish far sooner.
const WAIT: Duration = Duration::from_secs(5);

type Client<T = TcpStream> = Framed<T, SmppCodec>;

#[derive(Clone, Copy)]
enum Kind {
    Tx,
    Rx,
    Trx,
}

async fn start(config: SimConfig) -> SimHandle {
    SimServer::start(config).await.expect("simulator starts")
}

async fn connect(sim: &SimHandle) -> Client {
    let tcp = timeout(WAIT, TcpStream::connect(sim.addr()))
        .await
        .expect("connect in time")
        .expect("connect");
    Framed::new(tcp, SmppCodec::new())
}

async fn send<T: AsyncRead + AsyncWrite + Unpin>(client: &mut Client<T>, command: Command) {
    timeout(WAIT, client.send(command))
        .await
        .expect("send in time")
        .expect("send");
}

async fn recv<T: AsyncRead + AsyncWrite + Unpin>(client: &mut Client<T>) -> Command {
    timeout(WAIT, client.next())
        .await
        .expect("a PDU in time")
        .expect("connection open")
        .expect("sound framing")
        .expect("valid PDU")
}

/// Flushes fed PDUs. (`SmppCodec` encodes both `Command` and `&Command`, so the sink's item type
/// must be named.)
async fn flush<T: AsyncRead + AsyncWrite + Unpin>(client: &mut Client<T>) {
    timeout(WAIT, client.flush())
        .await
        .expect("flush in time")
        .expect("flush");
}

/// Asserts the simulator closes the connection (EOF or a reset) soon.
async fn assert_closed<T: AsyncRead + AsyncWrite + Unpin>(client: &mut Client<T>) {
    loop {
        match timeout(WAIT, client.next()).await.expect("closed in time") {
            None | Some(Err(_)) => return,
            Some(Ok(_)) => {}
        }
    }
}

fn bind_pdu(kind: Kind, system_id: &str, password: &str) -> Pdu {
    let bind = Bind {
        system_id: system_id.try_into().unwrap(),
        password: password.try_into().unwrap(),
        interface_version: 0x34,
        ..Bind::default()
    };
    match kind {
        Kind::Tx => Pdu::BindTransmitter(bind),
        Kind::Rx => Pdu::BindReceiver(bind),
        Kind::Trx => Pdu::BindTransceiver(bind),
    }
}

async fn bind_as<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<T>,
    kind: Kind,
    system_id: &str,
    password: &str,
) -> Command {
    send(client, Command::new(1, bind_pdu(kind, system_id, password))).await;
    recv(client).await
}

/// A connection bound with the default credentials.
async fn bound(sim: &SimHandle, kind: Kind) -> Client {
    let mut client = connect(sim).await;
    let resp = bind_as(&mut client, kind, "sairex", "secret").await;
    assert_eq!(resp.command_status, CommandStatus::ESME_ROK);
    client
}

fn submit_sm(dest: &str, text: &str, registered_delivery: u8) -> SubmitSm {
    SubmitSm {
        source_addr: "Sairex".try_into().unwrap(),
        destination_addr: dest.try_into().unwrap(),
        short_message: ShortMessage::new(Bytes::copy_from_slice(text.as_bytes())).unwrap(),
        registered_delivery,
        ..SubmitSm::default()
    }
}

/// Submits and returns the response.
async fn submit<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut Client<T>,
    seq: u32,
    sm: SubmitSm,
) -> Command {
    send(client, Command::new(seq, sm)).await;
    let resp = recv(client).await;
    assert_eq!(resp.sequence_number, seq);
    resp
}

fn message_id(resp: &Command) -> String {
    match &resp.pdu {
        Pdu::SubmitSmResp(r) => r.message_id.to_string_lossy(),
        Pdu::DataSmResp(r) => r.message_id.to_string_lossy(),
        Pdu::SubmitMultiResp(r) => r.message_id.to_string_lossy(),
        other => panic!("not a submit response: {other:?}"),
    }
}

fn deliver_sm(command: &Command) -> &DeliverSm {
    match &command.pdu {
        Pdu::DeliverSm(d) => d,
        other => panic!("expected deliver_sm, got {other:?}"),
    }
}

async fn ack<T: AsyncRead + AsyncWrite + Unpin>(client: &mut Client<T>, deliver: &Command) {
    let resp = Command::new(deliver.sequence_number, DeliverSmResp::default());
    send(client, resp).await;
}

/// Polls the counters until `done` holds (end-to-end effects land asynchronously).
async fn eventually(sim: &SimHandle, what: &str, done: impl Fn(&SimStats) -> bool) -> SimStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = sim.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {stats:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn quick_receipts() -> SimConfig {
    SimConfig {
        receipt_delay: Duration::ZERO,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn binds_of_every_kind_succeed_with_the_right_credentials() {
    let sim = start(SimConfig::default()).await;
    let mut clients = Vec::new();
    for (kind, expected) in [
        (Kind::Tx, CommandId::BIND_TRANSMITTER_RESP),
        (Kind::Rx, CommandId::BIND_RECEIVER_RESP),
        (Kind::Trx, CommandId::BIND_TRANSCEIVER_RESP),
    ] {
        let mut client = connect(&sim).await;
        let resp = bind_as(&mut client, kind, "sairex", "secret").await;
        assert_eq!(resp.command_id(), expected);
        assert_eq!(resp.command_status, CommandStatus::ESME_ROK);
        assert_eq!(resp.sequence_number, 1);
        match resp.pdu {
            Pdu::BindTransmitterResp(b)
            | Pdu::BindReceiverResp(b)
            | Pdu::BindTransceiverResp(b) => {
                assert_eq!(b.system_id.as_bytes(), b"sairex-sim");
                assert_eq!(b.tlvs.sc_interface_version(), Some(0x34));
            }
            other => panic!("{other:?}"),
        }
        // A second bind on a bound connection is refused.
        let again = bind_as(&mut client, kind, "sairex", "secret").await;
        assert_eq!(again.command_status, CommandStatus::ESME_RALYBND);
        clients.push(client);
    }
    let stats = eventually(&sim, "three binds", |s| s.binds.bound == 3).await;
    assert_eq!(
        (
            stats.binds.transmitter,
            stats.binds.receiver,
            stats.binds.transceiver
        ),
        (1, 1, 1)
    );
    assert_eq!(stats.binds.failures, 3);
}

#[tokio::test]
async fn wrong_password_is_refused_with_rinvpaswd() {
    let sim = start(SimConfig::default()).await;
    let mut client = connect(&sim).await;
    let resp = bind_as(&mut client, Kind::Trx, "sairex", "wrong").await;
    assert_eq!(resp.command_id(), CommandId::BIND_TRANSCEIVER_RESP);
    assert_eq!(resp.command_status, CommandStatus::ESME_RINVPASWD);
    // Not bound: a submit is refused for the bind state, and the right password still works.
    let refused = submit(&mut client, 2, submit_sm("923001234567", "x", 0)).await;
    assert_eq!(refused.command_id(), CommandId::SUBMIT_SM_RESP);
    assert_eq!(refused.command_status, CommandStatus::ESME_RINVBNDSTS);
    let resp = bind_as(&mut client, Kind::Trx, "sairex", "secret").await;
    assert_eq!(resp.command_status, CommandStatus::ESME_ROK);
    assert_eq!(sim.stats().binds.failures, 1);
}

#[tokio::test]
async fn wrong_system_id_is_refused_with_the_configured_status() {
    let sim = start(SimConfig::default()).await;
    let mut client = connect(&sim).await;
    let resp = bind_as(&mut client, Kind::Tx, "intruder", "secret").await;
    assert_eq!(resp.command_status, CommandStatus::ESME_RINVSYSID);

    let sim = start(SimConfig {
        bad_system_id_status: CommandStatus::ESME_RBINDFAIL,
        ..SimConfig::default()
    })
    .await;
    let mut client = connect(&sim).await;
    let resp = bind_as(&mut client, Kind::Rx, "intruder", "secret").await;
    assert_eq!(resp.command_id(), CommandId::BIND_RECEIVER_RESP);
    assert_eq!(resp.command_status, CommandStatus::ESME_RBINDFAIL);
}

#[tokio::test]
async fn submits_get_unique_ids_and_are_recorded() {
    let sim = start(SimConfig::default()).await;
    let mut client = bound(&sim, Kind::Tx).await;
    // Pipelined: all requests go out before any response is read.
    for seq in 10..60 {
        let text = format!("message {seq}");
        client
            .feed(Command::new(seq, submit_sm("923001234567", &text, 0)))
            .await
            .unwrap();
    }
    flush(&mut client).await;
    let mut ids = HashSet::new();
    for seq in 10..60 {
        let resp = recv(&mut client).await;
        assert_eq!(resp.sequence_number, seq, "responses keep request order");
        assert_eq!(resp.command_status, CommandStatus::ESME_ROK);
        let id = message_id(&resp);
        assert_eq!(id.len(), 8, "hex ids are at least 8 digits: {id}");
        assert!(u64::from_str_radix(&id, 16).is_ok());
        assert!(ids.insert(id));
    }
    let received = sim.received();
    assert_eq!(received.len(), 50);
    let first = &received[0];
    assert_eq!(first.operation, SubmitOperation::SubmitSm);
    assert_eq!(first.sequence_number, 10);
    assert_eq!(&first.source_addr[..], b"Sairex");
    assert_eq!(
        first.destination_addrs,
        vec![Bytes::from_static(b"923001234567")]
    );
    assert_eq!(&first.short_message[..], b"message 10");
    assert_eq!(first.status, CommandStatus::ESME_ROK);
    let recorded: HashSet<String> = received
        .iter()
        .filter_map(|m| m.message_id.clone())
        .collect();
    assert_eq!(recorded, ids);
}

#[tokio::test]
async fn decimal_ids_count_up_from_the_first_id() {
    let sim = start(SimConfig {
        id_format: IdFormat::Decimal,
        first_message_id: 1000,
        ..SimConfig::default()
    })
    .await;
    let mut client = bound(&sim, Kind::Trx).await;
    let a = submit(&mut client, 2, submit_sm("1", "a", 0)).await;
    let b = submit(&mut client, 3, submit_sm("1", "b", 0)).await;
    assert_eq!(
        (message_id(&a), message_id(&b)),
        ("1000".into(), "1001".into())
    );
}

#[tokio::test]
async fn data_sm_and_submit_multi_are_acknowledged_too() {
    let sim = start(SimConfig {
        receipts: ReceiptPolicy::Always,
        ..quick_receipts()
    })
    .await;
    let mut client = bound(&sim, Kind::Trx).await;
    let mut tlvs = Tlvs::new();
    tlvs.set_message_payload(Bytes::from_static(b"payload text"))
        .unwrap();
    let data = DataSm {
        source_addr: "Sairex".try_into().unwrap(),
        destination_addr: "923001111111".try_into().unwrap(),
        tlvs,
        ..DataSm::default()
    };
    send(&mut client, Command::new(5, data)).await;
    let resp = recv(&mut client).await;
    assert_eq!(resp.command_id(), CommandId::DATA_SM_RESP);
    let data_id = message_id(&resp);

    let multi = SubmitMulti {
        source_addr: "Sairex".try_into().unwrap(),
        dest_addresses: SmeList::new(vec![
            DestAddress::SmeAddress {
                dest_addr_ton: 1,
                dest_addr_npi: 1,
                destination_addr: "923002222222".try_into().unwrap(),
            },
            DestAddress::SmeAddress {
                dest_addr_ton: 1,
                dest_addr_npi: 1,
                destination_addr: "923003333333".try_into().unwrap(),
            },
        ])
        .unwrap(),
        short_message: ShortMessage::new(&b"to two"[..]).unwrap(),
        ..SubmitMulti::default()
    };
    send(&mut client, Command::new(6, multi)).await;
    // The data_sm's receipt may come before the submit_multi_resp.
    let mut receipts = Vec::new();
    let multi_id = loop {
        let cmd = recv(&mut client).await;
        if cmd.command_id() == CommandId::SUBMIT_MULTI_RESP {
            assert_eq!(cmd.sequence_number, 6);
            break message_id(&cmd);
        }
        ack(&mut client, &cmd).await;
        receipts.push(deliver_sm(&cmd).clone());
    };
    assert_ne!(data_id, multi_id);
    while receipts.len() < 3 {
        let cmd = recv(&mut client).await;
        ack(&mut client, &cmd).await;
        receipts.push(deliver_sm(&cmd).clone());
    }
    let mut about: Vec<(String, String)> = receipts
        .iter()
        .map(|r| {
            let id = String::from_utf8(r.tlvs.receipted_message_id().unwrap().to_vec()).unwrap();
            (id, r.source_addr.to_string_lossy())
        })
        .collect();
    about.sort();
    let mut expected = vec![
        (data_id, "923001111111".to_owned()),
        (multi_id.clone(), "923002222222".to_owned()),
        (multi_id, "923003333333".to_owned()),
    ];
    expected.sort();
    assert_eq!(
        about, expected,
        "one receipt per destination, from the destination"
    );
    let ops: Vec<SubmitOperation> = sim.received().iter().map(|m| m.operation).collect();
    assert_eq!(ops, [SubmitOperation::DataSm, SubmitOperation::SubmitMulti]);
    let stats = eventually(&sim, "3 receipts acked", |s| s.receipts.acked == 3).await;
    assert_eq!((stats.submits.data_sm, stats.submits.submit_multi), (1, 1));
}

#[tokio::test]
async fn transceiver_gets_a_receipt_matching_its_submit() {
    let sim = start(quick_receipts()).await;
    let mut client = bound(&sim, Kind::Trx).await;
    let resp = submit(
        &mut client,
        2,
        submit_sm("923001234567", "Fee due on Friday", 1),
    )
    .await;
    let id = message_id(&resp);

    let receipt = recv(&mut client).await;
    let dsm = deliver_sm(&receipt);
    assert_eq!(dsm.esm_class, 0x04);
    assert_eq!(dsm.tlvs.receipted_message_id(), Some(id.as_bytes()));
    assert_eq!(dsm.tlvs.message_state(), Some(2));
    assert_eq!(dsm.source_addr.as_bytes(), b"923001234567");
    assert_eq!(dsm.destination_addr.as_bytes(), b"Sairex");
    let text = String::from_utf8(dsm.short_message.as_bytes().to_vec()).unwrap();
    assert!(
        text.starts_with(&format!("id:{id} sub:001 dlvrd:001 submit date:")),
        "{text}"
    );
    assert!(
        text.contains(" stat:DELIVRD err:000 text:Fee due on Friday"),
        "{text}"
    );
    ack(&mut client, &receipt).await;
    let stats = eventually(&sim, "receipt acked", |s| s.receipts.acked == 1).await;
    assert_eq!(stats.receipts.sent, 1);
    assert_eq!(stats.deliveries_pending, 0);
}

#[tokio::test]
async fn receipt_mix_sets_the_final_state() {
    let sim = start(SimConfig {
        receipt_mix: ReceiptMix::only(FinalState::Rejected),
        ..quick_receipts()
    })
    .await;
    let mut client = bound(&sim, Kind::Trx).await;
    let id = message_id(&submit(&mut client, 2, submit_sm("1", "x", 1)).await);
    let receipt = recv(&mut client).await;
    let dsm = deliver_sm(&receipt);
    assert_eq!(dsm.tlvs.receipted_message_id(), Some(id.as_bytes()));
    assert_eq!(dsm.tlvs.message_state(), Some(8));
    let text = String::from_utf8_lossy(dsm.short_message.as_bytes()).into_owned();
    assert!(
        text.contains("dlvrd:000") && text.contains("stat:REJECTD"),
        "{text}"
    );
}

#[tokio::test]
async fn receipts_go_to_a_receiver_bind_not_the_transmitter() {
    let sim = start(quick_receipts()).await;
    let mut tx = bound(&sim, Kind::Tx).await;
    let mut rx = bound(&sim, Kind::Rx).await;
    let id = message_id(&submit(&mut tx, 2, submit_sm("1", "x", 1)).await);
    let receipt = recv(&mut rx).await;
    assert_eq!(
        deliver_sm(&receipt).tlvs.receipted_message_id(),
        Some(id.as_bytes())
    );
    ack(&mut rx, &receipt).await;
    eventually(&sim, "receipt acked", |s| s.receipts.acked == 1).await;
}

/// Proves no receipt was scheduled for a submit without waiting for one: the deliverer handles
/// its inbox in order, so once the MO sent after the submit is counted as scheduled, a receipt
/// for the submit would have been counted before it.
async fn assert_no_receipt_for(sim: &SimHandle, client: &mut Client, sm: SubmitSm) {
    let resp = submit(client, 2, sm).await;
    assert_eq!(resp.command_status, CommandStatus::ESME_ROK);
    // The reader handles PDUs in order: once this is answered, the submit is fully handled.
    send(client, Command::new(3, Pdu::EnquireLink)).await;
    assert_eq!(
        recv(client).await.command_id(),
        CommandId::ENQUIRE_LINK_RESP
    );
    sim.send_mo("923001234567", "8001", "marker").await.unwrap();
    let stats = eventually(sim, "MO scheduled", |s| s.mo.scheduled == 1).await;
    assert_eq!(stats.receipts.scheduled, 0);
    let first = recv(client).await;
    assert_eq!(deliver_sm(&first).esm_class, 0, "the MO, not a receipt");
}

#[tokio::test]
async fn receipts_off_sends_none() {
    let sim = start(SimConfig {
        receipts: ReceiptPolicy::Off,
        ..quick_receipts()
    })
    .await;
    let mut client = bound(&sim, Kind::Trx).await;
    assert_no_receipt_for(&sim, &mut client, submit_sm("1", "x", 1)).await;
}

#[tokio::test]
async fn no_receipt_unless_requested() {
    let sim = start(quick_receipts()).await;
    let mut client = bound(&sim, Kind::Trx).await;
    assert_no_receipt_for(&sim, &mut client, submit_sm("1", "x", 0)).await;
}

#[tokio::test]
async fn unacknowledged_receipts_are_retried_then_given_up() {
    let sim = start(SimConfig {
        delivery_resp_timeout: Duration::from_millis(100),
        delivery_retry_interval: Duration::from_millis(10),
        delivery_max_attempts: 2,
        ..quick_receipts()
    })
    .await;
    let mut client = bound(&sim, Kind::Trx).await;
    let id = message_id(&submit(&mut client, 2, submit_sm("1", "x", 1)).await);
    let first = recv(&mut client).await; // ignored: times out
    let second = recv(&mut client).await;
    assert_ne!(first.sequence_number, second.sequence_number);
    assert_eq!(
        deliver_sm(&second).tlvs.receipted_message_id(),
        Some(id.as_bytes())
    );
    // An error status is no acknowledgement either; the attempts are spent.
    send(
        &mut client,
        Command::with_status(
            CommandStatus::ESME_RX_T_APPN,
            second.sequence_number,
            DeliverSmResp::default(),
        ),
    )
    .await;
    let stats = eventually(&sim, "receipt given up", |s| s.receipts.unacked == 1).await;
    assert_eq!(
        (
            stats.receipts.sent,
            stats.receipts.timed_out,
            stats.receipts.nacked
        ),
        (2, 1, 1)
    );
    assert_eq!((stats.receipts.retried, stats.receipts.acked), (1, 0));
    assert_eq!(stats.deliveries_pending, 0);
}

#[tokio::test]
async fn error_rate_of_one_answers_every_submit_with_the_status() {
    let sim = start(SimConfig {
        error_rate: 1.0,
        error_status: CommandStatus::ESME_RMSGQFUL,
        ..quick_receipts()
    })
    .await;
    let mut client = bound(&sim, Kind::Trx).await;
    for seq in 2..7 {
        let resp = submit(&mut client, seq, submit_sm("1", "x", 1)).await;
        assert_eq!(resp.command_status, CommandStatus::ESME_RMSGQFUL);
        assert_eq!(message_id(&resp), "");
    }
    let stats = sim.stats();
    assert_eq!(stats.responses_with(CommandStatus::ESME_RMSGQFUL), 5);
    assert_eq!(stats.responses_with(CommandStatus::ESME_ROK), 0);
    assert!(sim.received().iter().all(|m| m.message_id.is_none()));
}

#[tokio::test]
async fn submits_over_the_tps_are_throttled() {
    // Three tokens, refilled one per 333 ms: ten pipelined submits read in a few milliseconds
    // find exactly three.
    let sim = start(SimConfig {
        throttle_tps: Some(3),
        ..SimConfig::default()
    })
    .await;
    let mut client = bound(&sim, Kind::Tx).await;
    for seq in 2..12 {
        client
            .feed(Command::new(seq, submit_sm("1", "x", 0)))
            .await
            .unwrap();
    }
    flush(&mut client).await;
    let mut statuses = Vec::new();
    for _ in 2..12 {
        statuses.push(recv(&mut client).await.command_status);
    }
    let ok = CommandStatus::ESME_ROK;
    let throttled = CommandStatus::ESME_RTHROTTLED;
    assert_eq!(&statuses[..3], [ok; 3]);
    assert_eq!(&statuses[3..], [throttled; 7]);
    assert_eq!(sim.stats().responses_with(throttled), 7);
}

#[tokio::test]
async fn window_violations_are_counted_while_responses_are_delayed() {
    let latency = Duration::from_millis(200);
    let sim = start(SimConfig {
        window: Some(2),
        response_latency: latency,
        ..SimConfig::default()
    })
    .await;
    let mut client = bound(&sim, Kind::Tx).await;
    // One at a time: never more than one outstanding, and each answer takes the latency.
    for seq in 2..4 {
        let sent = Instant::now();
        submit(&mut client, seq, submit_sm("1", "x", 0)).await;
        assert!(sent.elapsed() >= latency);
    }
    assert_eq!(sim.stats().window_violations, 0);
    // Five at once against a window of two: the 3rd, 4th and 5th violate it.
    for seq in 10..15 {
        client
            .feed(Command::new(seq, submit_sm("1", "x", 0)))
            .await
            .unwrap();
    }
    flush(&mut client).await;
    for seq in 10..15 {
        let resp = recv(&mut client).await;
        assert_eq!(
            (resp.sequence_number, resp.command_status),
            (seq, CommandStatus::ESME_ROK)
        );
    }
    let stats = sim.stats();
    assert_eq!(stats.window_violations, 3);
    assert_eq!(stats.max_outstanding, 5);
}

#[tokio::test]
async fn enquire_link_is_answered_before_and_after_bind() {
    let sim = start(SimConfig::default()).await;
    let mut client = connect(&sim).await;
    send(&mut client, Command::new(41, Pdu::EnquireLink)).await;
    let resp = recv(&mut client).await;
    assert_eq!(
        (resp.command_id(), resp.sequence_number),
        (CommandId::ENQUIRE_LINK_RESP, 41)
    );
    bind_as(&mut client, Kind::Trx, "sairex", "secret").await;
    send(&mut client, Command::new(42, Pdu::EnquireLink)).await;
    let resp = recv(&mut client).await;
    assert_eq!(
        (resp.command_id(), resp.sequence_number),
        (CommandId::ENQUIRE_LINK_RESP, 42)
    );
    assert_eq!(resp.command_status, CommandStatus::ESME_ROK);
    assert_eq!(sim.stats().enquire_links, 2);
}

#[tokio::test]
async fn unknown_command_gets_generic_nack_rinvcmdid() {
    let sim = start(SimConfig::default()).await;
    let mut client = bound(&sim, Kind::Trx).await;
    let unknown = Pdu::Unknown {
        command_id: CommandId(0x0000_0999),
        body: Bytes::from_static(b"\x01\x02"),
    };
    send(&mut client, Command::new(77, unknown)).await;
    let resp = recv(&mut client).await;
    assert_eq!(resp.command_id(), CommandId::GENERIC_NACK);
    assert_eq!(resp.command_status, CommandStatus::ESME_RINVCMDID);
    assert_eq!(resp.sequence_number, 77);
    assert_eq!(sim.stats().generic_nacks_sent, 1);
}

#[tokio::test]
async fn requests_before_bind_are_refused_for_the_bind_state() {
    let sim = start(SimConfig::default()).await;
    let mut client = connect(&sim).await;
    let resp = submit(&mut client, 3, submit_sm("1", "x", 0)).await;
    assert_eq!(resp.command_id(), CommandId::SUBMIT_SM_RESP);
    assert_eq!(resp.command_status, CommandStatus::ESME_RINVBNDSTS);
    // alert_notification has no response type: generic_nack.
    send(
        &mut client,
        Command::new(4, sairex_pdu::AlertNotification::default()),
    )
    .await;
    let resp = recv(&mut client).await;
    assert_eq!(
        (resp.command_id(), resp.command_status, resp.sequence_number),
        (CommandId::GENERIC_NACK, CommandStatus::ESME_RINVBNDSTS, 4)
    );
    // A receiver may not submit either.
    let mut rx = bound(&sim, Kind::Rx).await;
    let resp = submit(&mut rx, 5, submit_sm("1", "x", 0)).await;
    assert_eq!(resp.command_status, CommandStatus::ESME_RINVBNDSTS);
    assert_eq!(sim.stats().submits.received, 0);
}

/// A submit_sm frame whose body ends inside `source_addr` (no NUL terminator).
fn truncated_submit_frame(seq: u32) -> Bytes {
    let body = b"\0\x01\x01Sairex";
    let mut frame = BytesMut::new();
    frame.put_u32(16 + body.len() as u32);
    frame.put_u32(CommandId::SUBMIT_SM.0);
    frame.put_u32(0);
    frame.put_u32(seq);
    frame.put_slice(body);
    frame.freeze()
}

#[tokio::test]
async fn malformed_body_gets_generic_nack_and_the_connection_goes_on() {
    let sim = start(SimConfig::default()).await;
    let mut client = bound(&sim, Kind::Trx).await;
    let frame = truncated_submit_frame(0x0102_0304);
    // What the codec says the answer must be: generic_nack, same sequence, the field's status.
    let expected = SmppCodec::new()
        .decode(&mut BytesMut::from(&frame[..]))
        .unwrap()
        .unwrap()
        .unwrap_err()
        .generic_nack();
    assert_eq!(expected.sequence_number, 0x0102_0304);
    assert_eq!(expected.command_status, CommandStatus::ESME_RINVSRCADR);

    client.get_mut().write_all(&frame).await.unwrap();
    let resp = recv(&mut client).await;
    assert_eq!(resp, expected);
    // Same connection, still bound and serving.
    let ok = submit(&mut client, 9, submit_sm("1", "after", 0)).await;
    assert_eq!(ok.command_status, CommandStatus::ESME_ROK);
    let stats = sim.stats();
    assert_eq!((stats.malformed_pdus, stats.generic_nacks_sent), (1, 1));
}

#[tokio::test]
async fn corrupt_framing_closes_only_that_connection() {
    let sim = start(SimConfig::default()).await;
    let mut other = bound(&sim, Kind::Trx).await;
    let mut bad = bound(&sim, Kind::Trx).await;
    let mut frame = BytesMut::new();
    frame.put_u32(8); // command_length below the 16-octet header
    frame.put_u32(CommandId::ENQUIRE_LINK.0);
    bad.get_mut().write_all(&frame).await.unwrap();
    assert_closed(&mut bad).await;
    eventually(&sim, "framing error counted", |s| s.framing_errors == 1).await;

    let ok = submit(&mut other, 2, submit_sm("1", "still here", 0)).await;
    assert_eq!(ok.command_status, CommandStatus::ESME_ROK);
    let mut fresh = bound(&sim, Kind::Tx).await;
    let ok = submit(&mut fresh, 2, submit_sm("1", "new bind", 0)).await;
    assert_eq!(ok.command_status, CommandStatus::ESME_ROK);
    let stats = eventually(&sim, "bad connection gone", |s| s.connections.open == 2).await;
    assert_eq!(stats.connections.accepted, 3);
}

#[tokio::test]
async fn oversized_command_length_closes_the_connection() {
    let sim = start(SimConfig {
        max_command_length: 1024,
        ..SimConfig::default()
    })
    .await;
    let mut bad = bound(&sim, Kind::Tx).await;
    let mut frame = BytesMut::new();
    frame.put_u32(1_000_000);
    frame.put_u32(CommandId::SUBMIT_SM.0);
    bad.get_mut().write_all(&frame).await.unwrap();
    assert_closed(&mut bad).await;
    eventually(&sim, "framing error counted", |s| s.framing_errors == 1).await;
}

#[tokio::test]
async fn mo_is_delivered_to_a_receiver() {
    let sim = start(SimConfig::default()).await;
    assert!(matches!(
        sim.send_mo("923001234567", "8001", "STOP").await,
        Err(SimError::NoReceiver)
    ));
    let _tx = bound(&sim, Kind::Tx).await;
    assert!(matches!(
        sim.send_mo("923001234567", "8001", "STOP").await,
        Err(SimError::NoReceiver)
    ));
    let mut rx = bound(&sim, Kind::Rx).await;
    sim.send_mo("923001234567", "8001", "STOP").await.unwrap();
    let mo = recv(&mut rx).await;
    let dsm = deliver_sm(&mo);
    assert_eq!(dsm.esm_class, 0);
    assert_eq!(dsm.source_addr.as_bytes(), b"923001234567");
    assert_eq!(dsm.destination_addr.as_bytes(), b"8001");
    assert_eq!(
        (dsm.data_coding, dsm.short_message.as_bytes()),
        (0, &b"STOP"[..])
    );
    ack(&mut rx, &mo).await;
    let stats = eventually(&sim, "MO acked", |s| s.mo.acked == 1).await;
    assert_eq!((stats.mo.scheduled, stats.mo.sent), (1, 1));
}

#[tokio::test]
async fn unbind_from_the_esme_is_answered_then_closed() {
    let sim = start(SimConfig::default()).await;
    let mut client = bound(&sim, Kind::Trx).await;
    send(&mut client, Command::new(8, Pdu::Unbind)).await;
    let resp = recv(&mut client).await;
    assert_eq!(
        (resp.command_id(), resp.sequence_number),
        (CommandId::UNBIND_RESP, 8)
    );
    assert_closed(&mut client).await;
    let stats = eventually(&sim, "unbound", |s| s.binds.bound == 0).await;
    assert_eq!(stats.binds.unbinds_received, 1);
}

#[tokio::test]
async fn shutdown_unbinds_every_esme() {
    let sim = start(SimConfig::default()).await;
    let mut client = bound(&sim, Kind::Trx).await;
    let mut idle = connect(&sim).await; // never bound: just closed
    let stopping = tokio::spawn(sim.shutdown());
    let unbind = recv(&mut client).await;
    assert_eq!(unbind.command_id(), CommandId::UNBIND);
    send(
        &mut client,
        Command::new(unbind.sequence_number, Pdu::UnbindResp),
    )
    .await;
    assert_closed(&mut client).await;
    assert_closed(&mut idle).await;
    let stats = timeout(WAIT, stopping)
        .await
        .expect("stops in time")
        .unwrap();
    assert_eq!(stats.binds.unbinds_sent, 1);
    assert_eq!(stats.connections.open, 0);
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_an_esme_that_stops_reading() {
    let sim = start(SimConfig {
        connection_queue: 4,
        unbind_timeout: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(sim.addr()).await.unwrap();
    let mut client = Framed::new(tcp, SmppCodec::new());
    bind_as(&mut client, Kind::Tx, "sairex", "secret").await;
    // Submit without ever reading: the responses back up through the socket buffers into the
    // connection's queue, and the simulator stops reading from this ESME.
    let (_reader, mut writer) = client.into_inner().into_split();
    let flood = tokio::spawn(async move {
        let mut batch = BytesMut::new();
        for seq in 2..2_000 {
            Command::new(seq, submit_sm("1", "x", 0)).encode(&mut batch);
        }
        loop {
            if writer.write_all(&batch).await.is_err() {
                return;
            }
        }
    });
    // Stuck: the simulator has stopped taking submits from it.
    let deadline = Instant::now() + WAIT;
    let mut seen = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sim.stats().submits.received;
        if now > 0 && now == seen {
            break;
        }
        seen = now;
        assert!(Instant::now() < deadline, "the simulator kept reading");
    }
    let started = Instant::now();
    timeout(WAIT, sim.shutdown())
        .await
        .expect("shutdown despite a stuck ESME");
    assert!(started.elapsed() < Duration::from_secs(2));
    flood.abort();
}

#[tokio::test]
async fn stats_serialize_to_a_json_summary() {
    let sim = start(SimConfig {
        error_rate: 0.0,
        ..quick_receipts()
    })
    .await;
    let mut client = bound(&sim, Kind::Trx).await;
    submit(&mut client, 2, submit_sm("1", "x", 0)).await;
    submit(&mut client, 3, submit_sm("1", "y", 0)).await;
    send(&mut client, Command::new(4, Pdu::EnquireLink)).await;
    recv(&mut client).await;
    let json = serde_json::to_value(sim.stats()).unwrap();
    assert_eq!(json["binds"]["transceiver"], 1);
    assert_eq!(json["submits"]["received"], 2);
    assert_eq!(json["submits"]["responses"]["ESME_ROK"], 2);
    assert_eq!(json["enquire_links"], 1);
    assert_eq!(json["connections"]["accepted"], 1);
    assert_eq!(json["receipts"]["sent"], 0);
    let back: SimStats = serde_json::from_value(json).unwrap();
    assert_eq!(back.submits.received, 2);
}

#[tokio::test]
async fn tls_bind_and_submit_work() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let sim = start(SimConfig {
        tls: Some(TlsConfig::Pem {
            cert: certified.cert.pem().into_bytes(),
            key: certified.signing_key.serialize_pem().into_bytes(),
        }),
        ..SimConfig::default()
    })
    .await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let tcp = TcpStream::connect(sim.addr()).await.unwrap();
    let server_name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = timeout(WAIT, connector.connect(server_name, tcp))
        .await
        .unwrap()
        .unwrap();
    let mut client = Framed::new(tls, SmppCodec::new());
    let resp = bind_as(&mut client, Kind::Trx, "sairex", "secret").await;
    assert_eq!(resp.command_status, CommandStatus::ESME_ROK);
    let resp = submit(&mut client, 2, submit_sm("1", "over TLS", 0)).await;
    assert_eq!(resp.command_status, CommandStatus::ESME_ROK);

    // A plain-TCP client cannot talk to the TLS listener.
    let mut plain = connect(&sim).await;
    send(
        &mut plain,
        Command::new(1, bind_pdu(Kind::Tx, "sairex", "secret")),
    )
    .await;
    assert_closed(&mut plain).await;
    eventually(&sim, "handshake failure counted", |s| {
        s.connections.tls_failures == 1
    })
    .await;
}

#[tokio::test]
async fn bad_config_is_refused_before_listening() {
    let err = SimServer::start(SimConfig {
        password: "much-too-long".into(),
        ..SimConfig::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            SimError::InvalidConfig {
                field: "password",
                ..
            }
        ),
        "{err}"
    );
    let err = SimServer::start(SimConfig {
        tls: Some(TlsConfig::Pem {
            cert: b"not pem".to_vec(),
            key: b"nor this".to_vec(),
        }),
        ..SimConfig::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, SimError::Tls(_)), "{err}");
}
