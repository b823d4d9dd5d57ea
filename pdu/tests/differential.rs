//! Differential tests against the `smpp-pdu` crate (0.1.4), an independent SMPP 3.4
//! implementation, for every operation it covers.
//!
//! Each case is a [`Command`] drawn from the strategies below and the same PDU built with
//! `smpp-pdu`'s own constructors ([`theirs`]). Two directions:
//! - ours → theirs: our encoding parses with `smpp_pdu::pdu::Pdu::parse`, consumes the whole
//!   frame, and equals (field by field, by `PartialEq`) the PDU built with their constructors;
//! - theirs → ours: their `Pdu::write` output decodes with ours to the same `Command`, and our
//!   encoding of that command is byte-identical to theirs.
//!
//! Where `smpp-pdu` 0.1.4 cannot do one direction it is left out, not faked:
//! - bind_transmitter / bind_receiver / bind_transceiver: `BindData::write` is `todo!()`, so
//!   only ours → theirs;
//! - generic_nack: `GenericNackPdu::parse` is `todo!()`, so only theirs → ours.
//!
//! The strategies stay inside what both sides accept (checked in `smpp-pdu`'s source):
//! - C-Octet Strings are ASCII without NUL (`AsciiString`), within the spec's maxima;
//! - schedule_delivery_time / validity_period are empty or 16 characters;
//! - short_message is at most 253 octets: `smpp-pdu` rejects 254 (`OctetString::new` checks
//!   `len < 254`), which the spec allows and we accept (golden.rs covers 254);
//! - sequence_number is 1..=0x7FFFFFFF; requests have status 0;
//! - bind and submit_sm responses carry a body exactly when the status is 0, and no TLVs
//!   (`smpp-pdu` reads none there and rejects trailing octets); generic_nack has a non-zero
//!   status.

use std::io::Cursor;

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use sairex_pdu::SmppTime;
use sairex_pdu::{
    Bind, BindResp, COctetString, Command, CommandStatus, DeliverSm, Pdu, ShortMessage, SubmitSm,
    SubmitSmResp, Tlv, Tlvs,
};
use smpp_pdu::pdu as their;

// ---------------------------------------------------------------------------------------------
// Strategies

/// ASCII text without NUL, up to `max_with_nul - 1` characters.
fn ascii(max_with_nul: usize) -> impl Strategy<Value = String> {
    vec(1u8..=0x7F, 0..max_with_nul).prop_map(|b| String::from_utf8(b).unwrap())
}

fn c_octet<const N: usize>() -> impl Strategy<Value = COctetString<N>> {
    ascii(N).prop_map(|s| COctetString::try_from(s).unwrap())
}

/// An SMPP time (§7.1.1): empty, or `YYMMDDhhmmsstnnp`.
fn time() -> impl Strategy<Value = SmppTime> {
    prop_oneof![Just(String::new()), "[0-9]{15}[-+R]"].prop_map(|s| SmppTime::new(&s).unwrap())
}

fn time_text(t: &SmppTime) -> &str {
    std::str::from_utf8(t.as_bytes()).unwrap()
}

fn short_message() -> impl Strategy<Value = ShortMessage> {
    vec(any::<u8>(), 0..=253).prop_map(|b| ShortMessage::new(b).unwrap())
}

fn tlvs() -> impl Strategy<Value = Tlvs> {
    vec((any::<u16>(), vec(any::<u8>(), 0..40)), 0..4).prop_map(|tlvs| {
        tlvs.into_iter()
            .map(|(tag, value)| Tlv {
                tag,
                value: value.into(),
            })
            .collect()
    })
}

fn sequence_number() -> impl Strategy<Value = u32> {
    1u32..=0x7FFF_FFFF
}

fn error_status() -> impl Strategy<Value = CommandStatus> {
    (1u32..=u32::MAX).prop_map(CommandStatus)
}

fn bind() -> impl Strategy<Value = Bind> {
    (
        c_octet(),
        c_octet(),
        c_octet(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        c_octet(),
    )
        .prop_map(
            |(
                system_id,
                password,
                system_type,
                interface_version,
                addr_ton,
                addr_npi,
                address_range,
            )| Bind {
                system_id,
                password,
                system_type,
                interface_version,
                addr_ton,
                addr_npi,
                address_range,
            },
        )
}

/// The fields submit_sm and deliver_sm share (§4.4.1, §4.6.1).
fn submit_sm() -> impl Strategy<Value = SubmitSm> {
    (
        (
            c_octet(),
            any::<u8>(),
            any::<u8>(),
            c_octet(),
            any::<u8>(),
            any::<u8>(),
            c_octet(),
        ),
        (any::<u8>(), any::<u8>(), any::<u8>(), time(), time()),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            short_message(),
            tlvs(),
        ),
    )
        .prop_map(
            |(
                (
                    service_type,
                    source_addr_ton,
                    source_addr_npi,
                    source_addr,
                    dest_addr_ton,
                    dest_addr_npi,
                    destination_addr,
                ),
                (esm_class, protocol_id, priority_flag, schedule_delivery_time, validity_period),
                (
                    registered_delivery,
                    replace_if_present_flag,
                    data_coding,
                    sm_default_msg_id,
                    short_message,
                    tlvs,
                ),
            )| SubmitSm {
                service_type,
                source_addr_ton,
                source_addr_npi,
                source_addr,
                dest_addr_ton,
                dest_addr_npi,
                destination_addr,
                esm_class,
                protocol_id,
                priority_flag,
                schedule_delivery_time,
                validity_period,
                registered_delivery,
                replace_if_present_flag,
                data_coding,
                sm_default_msg_id,
                short_message,
                tlvs,
            },
        )
}

fn deliver_sm() -> impl Strategy<Value = DeliverSm> {
    submit_sm().prop_map(|s| DeliverSm {
        service_type: s.service_type,
        source_addr_ton: s.source_addr_ton,
        source_addr_npi: s.source_addr_npi,
        source_addr: s.source_addr,
        dest_addr_ton: s.dest_addr_ton,
        dest_addr_npi: s.dest_addr_npi,
        destination_addr: s.destination_addr,
        esm_class: s.esm_class,
        protocol_id: s.protocol_id,
        priority_flag: s.priority_flag,
        schedule_delivery_time: s.schedule_delivery_time,
        validity_period: s.validity_period,
        registered_delivery: s.registered_delivery,
        replace_if_present_flag: s.replace_if_present_flag,
        data_coding: s.data_coding,
        sm_default_msg_id: s.sm_default_msg_id,
        short_message: s.short_message,
        tlvs: s.tlvs,
    })
}

/// A request with status 0.
fn request(body: impl Strategy<Value = Pdu>) -> impl Strategy<Value = Command> {
    (sequence_number(), body).prop_map(|(seq, pdu)| Command::new(seq, pdu))
}

/// A bind response: a system_id under status 0, no body under an error status.
fn bind_resp(variant: fn(BindResp) -> Pdu) -> impl Strategy<Value = Command> {
    prop_oneof![
        (sequence_number(), c_octet()).prop_map(move |(seq, system_id)| {
            Command::new(
                seq,
                variant(BindResp {
                    system_id,
                    tlvs: Tlvs::new(),
                }),
            )
        }),
        (sequence_number(), error_status()).prop_map(move |(seq, status)| {
            Command::with_status(status, seq, variant(BindResp::default()))
        }),
    ]
}

/// A submit_sm_resp: a message_id under status 0, no body under an error status.
fn submit_sm_resp() -> impl Strategy<Value = Command> {
    prop_oneof![
        (sequence_number(), c_octet()).prop_map(|(seq, message_id)| {
            Command::new(
                seq,
                SubmitSmResp {
                    message_id,
                    tlvs: Tlvs::new(),
                },
            )
        }),
        (sequence_number(), error_status()).prop_map(|(seq, status)| {
            Command::with_status(status, seq, SubmitSmResp::default())
        }),
    ]
}

fn generic_nack() -> impl Strategy<Value = Command> {
    (sequence_number(), error_status()).prop_map(|(seq, status)| Command::generic_nack(seq, status))
}

// ---------------------------------------------------------------------------------------------
// The same PDU in smpp-pdu's types

fn text<const N: usize>(s: &COctetString<N>) -> &str {
    s.to_str().unwrap()
}

fn their_tlvs(tlvs: &Tlvs) -> their::tlvs::Tlvs {
    let list: Vec<_> = tlvs
        .iter()
        .map(|t| their::tlvs::Tlv::new_unknown(t.tag, &t.value))
        .collect();
    their::tlvs::Tlvs::from(&list)
}

macro_rules! their_sm {
    ($ty:ty, $b:expr) => {{
        let b = $b;
        <$ty>::new(
            text(&b.service_type),
            b.source_addr_ton,
            b.source_addr_npi,
            text(&b.source_addr),
            b.dest_addr_ton,
            b.dest_addr_npi,
            text(&b.destination_addr),
            b.esm_class,
            b.protocol_id,
            b.priority_flag,
            time_text(&b.schedule_delivery_time),
            time_text(&b.validity_period),
            b.registered_delivery,
            b.replace_if_present_flag,
            b.data_coding,
            b.sm_default_msg_id,
            b.short_message.as_bytes(),
            their_tlvs(&b.tlvs),
        )
        .unwrap()
        .into()
    }};
}

macro_rules! their_bind {
    ($ty:ty, $b:expr) => {{
        let b = $b;
        <$ty>::new(
            text(&b.system_id),
            text(&b.password),
            text(&b.system_type),
            b.interface_version,
            b.addr_ton,
            b.addr_npi,
            text(&b.address_range),
        )
        .unwrap()
        .into()
    }};
}

macro_rules! their_resp {
    ($ty:ty, $status:expr, $id:expr) => {
        if $status.is_ok() {
            <$ty>::new(text($id)).unwrap().into()
        } else {
            <$ty>::new_error().into()
        }
    };
}

/// `cmd` built with smpp-pdu's constructors, field by field.
fn theirs(cmd: &Command) -> their::Pdu {
    let status = cmd.command_status;
    let body: their::PduBody = match &cmd.pdu {
        Pdu::BindTransmitter(b) => their_bind!(their::BindTransmitterPdu, b),
        Pdu::BindReceiver(b) => their_bind!(their::BindReceiverPdu, b),
        Pdu::BindTransceiver(b) => their_bind!(their::BindTransceiverPdu, b),
        Pdu::BindTransmitterResp(r) => {
            their_resp!(their::BindTransmitterRespPdu, status, &r.system_id)
        }
        Pdu::BindReceiverResp(r) => their_resp!(their::BindReceiverRespPdu, status, &r.system_id),
        Pdu::BindTransceiverResp(r) => {
            their_resp!(their::BindTransceiverRespPdu, status, &r.system_id)
        }
        Pdu::SubmitSm(b) => their_sm!(their::SubmitSmPdu, b),
        Pdu::DeliverSm(b) => their_sm!(their::DeliverSmPdu, b),
        Pdu::SubmitSmResp(r) => their_resp!(their::SubmitSmRespPdu, status, &r.message_id),
        Pdu::EnquireLink => their::EnquireLinkPdu::new().into(),
        Pdu::EnquireLinkResp => their::EnquireLinkRespPdu::new().into(),
        Pdu::GenericNack => their::GenericNackPdu::new_error().into(),
        other => panic!("smpp-pdu has no {:?}", other.command_id()),
    };
    their::Pdu::new(status.0, cmd.sequence_number, body).unwrap()
}

/// smpp-pdu's `Pdu::write` is async; a `Vec` never makes it wait.
fn their_bytes(pdu: &their::Pdu) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut out = Vec::new();
        pdu.write(&mut out).await.unwrap();
        out
    })
}

// ---------------------------------------------------------------------------------------------
// The two directions

/// Ours → theirs: our frame parses with smpp-pdu, all of it, to the same field values.
fn ours_to_theirs(cmd: &Command) -> Result<(), TestCaseError> {
    let ours = cmd.to_bytes();
    let mut cursor = Cursor::new(&ours[..]);
    let parsed = their::Pdu::parse(&mut cursor)
        .map_err(|e| TestCaseError::fail(format!("smpp-pdu rejects our frame: {e}")))?;
    prop_assert_eq!(cursor.position(), ours.len() as u64, "frame not consumed");
    prop_assert_eq!(parsed, theirs(cmd));
    Ok(())
}

/// Theirs → ours: smpp-pdu's frame decodes with ours to the same command, and we re-encode it
/// byte for byte.
fn theirs_to_ours(cmd: &Command) -> Result<(), TestCaseError> {
    let bytes = their_bytes(&theirs(cmd));
    let decoded = Command::from_bytes(Bytes::copy_from_slice(&bytes))
        .map_err(|e| TestCaseError::fail(format!("we reject smpp-pdu's frame: {e}")))?;
    prop_assert_eq!(&decoded, cmd);
    let again = decoded.to_bytes();
    prop_assert_eq!(&again[..], &bytes[..], "re-encoding differs");
    Ok(())
}

proptest! {
    #[test]
    fn bind_transmitter_ours_to_theirs(cmd in request(bind().prop_map(Pdu::BindTransmitter))) {
        ours_to_theirs(&cmd)?;
    }

    #[test]
    fn bind_receiver_ours_to_theirs(cmd in request(bind().prop_map(Pdu::BindReceiver))) {
        ours_to_theirs(&cmd)?;
    }

    #[test]
    fn bind_transceiver_ours_to_theirs(cmd in request(bind().prop_map(Pdu::BindTransceiver))) {
        ours_to_theirs(&cmd)?;
    }

    #[test]
    fn bind_transmitter_resp_both_ways(cmd in bind_resp(Pdu::BindTransmitterResp)) {
        ours_to_theirs(&cmd)?;
        theirs_to_ours(&cmd)?;
    }

    #[test]
    fn bind_receiver_resp_both_ways(cmd in bind_resp(Pdu::BindReceiverResp)) {
        ours_to_theirs(&cmd)?;
        theirs_to_ours(&cmd)?;
    }

    #[test]
    fn bind_transceiver_resp_both_ways(cmd in bind_resp(Pdu::BindTransceiverResp)) {
        ours_to_theirs(&cmd)?;
        theirs_to_ours(&cmd)?;
    }

    #[test]
    fn generic_nack_theirs_to_ours(cmd in generic_nack()) {
        theirs_to_ours(&cmd)?;
    }

    #[test]
    fn submit_sm_both_ways(cmd in request(submit_sm().prop_map(Pdu::SubmitSm))) {
        ours_to_theirs(&cmd)?;
        theirs_to_ours(&cmd)?;
    }

    #[test]
    fn submit_sm_resp_both_ways(cmd in submit_sm_resp()) {
        ours_to_theirs(&cmd)?;
        theirs_to_ours(&cmd)?;
    }

    #[test]
    fn deliver_sm_both_ways(cmd in request(deliver_sm().prop_map(Pdu::DeliverSm))) {
        ours_to_theirs(&cmd)?;
        theirs_to_ours(&cmd)?;
    }

    #[test]
    fn enquire_link_both_ways(cmd in request(Just(Pdu::EnquireLink))) {
        ours_to_theirs(&cmd)?;
        theirs_to_ours(&cmd)?;
    }

    #[test]
    fn enquire_link_resp_both_ways(cmd in request(Just(Pdu::EnquireLinkResp))) {
        ours_to_theirs(&cmd)?;
        theirs_to_ours(&cmd)?;
    }
}

/// One hand-picked case per direction, so a failure here reads without proptest shrinking.
#[test]
fn a_typical_submit_sm_agrees_both_ways() {
    let cmd = Command::new(
        42,
        SubmitSm {
            source_addr_ton: 5,
            source_addr: "Sairex".try_into().unwrap(),
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            destination_addr: "923001234567".try_into().unwrap(),
            registered_delivery: 1,
            validity_period: SmppTime::new("000001000000000R").unwrap(),
            short_message: ShortMessage::new(&b"Fee due on Friday"[..]).unwrap(),
            ..SubmitSm::default()
        },
    );
    ours_to_theirs(&cmd).unwrap();
    theirs_to_ours(&cmd).unwrap();
}
