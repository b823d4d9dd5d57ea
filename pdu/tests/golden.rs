//! Golden frames written by hand from the SMPP 3.4 specification (§4 body layouts, §3.2 header,
//! §5.3 TLVs), not produced by our encoder: each test checks that the frame decodes to the
//! expected fields and that the fields encode back to exactly the frame. The negative cases
//! check what the codec reports for frames that are wrong, and what a session answers with.
//!
//! Every frame is laid out one field per line: header (command_length, command_id,
//! command_status, sequence_number), then the body in the spec's order.

use bytes::{Bytes, BytesMut};
use sairex_pdu::SmppTime;
use sairex_pdu::{
    AlertNotification, Bind, BindResp, COctetString, CancelSm, CodecError, Command, CommandId,
    CommandStatus, DataSm, DecodeErrorKind, DeliverSm, DestAddress, FrameError, InvalidPdu,
    Outbind, ParseError, Pdu, QuerySm, QuerySmResp, ReplaceSm, ShortMessage, SmeList, SmppCodec,
    SubmitMulti, SubmitMultiResp, SubmitSm, SubmitSmResp, Tlv, Tlvs, UnsuccessSme, tag,
};
use tokio_util::codec::Decoder;

fn cs<const N: usize>(s: &str) -> COctetString<N> {
    COctetString::from_str_checked(s).unwrap()
}

fn sm(s: &[u8]) -> ShortMessage {
    ShortMessage::new(Bytes::copy_from_slice(s)).unwrap()
}

fn tlv(tag: u16, value: &'static [u8]) -> Tlv {
    Tlv {
        tag,
        value: Bytes::from_static(value),
    }
}

/// The frame decodes (one-shot and through the codec) to `expected`, and `expected` encodes to
/// exactly the frame.
#[track_caller]
fn assert_golden(frame: &[u8], expected: &Command) {
    let decoded = Command::from_bytes(Bytes::copy_from_slice(frame)).unwrap();
    assert_eq!(&decoded, expected, "Command::from_bytes");

    let mut buf = BytesMut::from(frame);
    let via_codec = SmppCodec::new().decode(&mut buf).unwrap().unwrap().unwrap();
    assert_eq!(&via_codec, expected, "SmppCodec::decode");
    assert!(buf.is_empty(), "the codec consumed exactly one frame");

    assert_eq!(expected.encoded_len(), frame.len(), "encoded_len");
    assert_eq!(expected.to_bytes().as_ref(), frame, "Command::to_bytes");
}

/// The frame's body does not parse: the codec yields the `InvalidPdu` (and stays usable), and
/// `Command::from_bytes` agrees.
#[track_caller]
fn invalid(frame: &[u8]) -> InvalidPdu {
    let mut buf = BytesMut::from(frame);
    let invalid = SmppCodec::new()
        .decode(&mut buf)
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(buf.is_empty(), "an invalid body still consumes its frame");
    match Command::from_bytes(Bytes::copy_from_slice(frame)) {
        Err(ParseError::Pdu(again)) => assert_eq!(again, invalid),
        other => panic!("from_bytes: expected ParseError::Pdu, got {other:?}"),
    }
    invalid
}

/// The submit_sm of several cases below, before its optional parts.
fn base_submit_sm() -> SubmitSm {
    SubmitSm {
        service_type: cs(""),
        source_addr_ton: 5,
        source_addr_npi: 0,
        source_addr: cs("Sairex"),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: cs("923001234567"),
        registered_delivery: 1,
        ..SubmitSm::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Session management (§4.1, §4.2, §4.11)

#[test]
fn bind_transmitter() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x2F\
        \x00\x00\x00\x02\
        \x00\x00\x00\x00\
        \x00\x00\x00\x01\
        SMPP3TEST\x00\
        secret08\x00\
        SUBMIT1\x00\
        \x34\
        \x01\
        \x01\
        \x00";
    let expected = Command::new(
        1,
        Pdu::BindTransmitter(Bind {
            system_id: cs("SMPP3TEST"),
            password: cs("secret08"),
            system_type: cs("SUBMIT1"),
            interface_version: 0x34,
            addr_ton: 1,
            addr_npi: 1,
            address_range: cs(""),
        }),
    );
    assert_golden(frame, &expected);
    assert_eq!(expected.command_id(), CommandId::BIND_TRANSMITTER);
}

#[test]
fn bind_transceiver_resp_with_sc_interface_version() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x1C\
        \x80\x00\x00\x09\
        \x00\x00\x00\x00\
        \x00\x00\x00\x01\
        SMSC01\x00\
        \x02\x10\x00\x01\x34";
    let expected = Command::new(
        1,
        Pdu::BindTransceiverResp(BindResp {
            system_id: cs("SMSC01"),
            tlvs: Tlvs(vec![tlv(tag::sc_interface_version, &[0x34])]),
        }),
    );
    assert_golden(frame, &expected);
    let Pdu::BindTransceiverResp(resp) = &expected.pdu else {
        unreachable!()
    };
    assert_eq!(resp.tlvs.sc_interface_version(), Some(0x34));
}

#[test]
fn outbind() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x1A\
        \x00\x00\x00\x0B\
        \x00\x00\x00\x00\
        \x00\x00\x00\x03\
        SMSC01\x00\
        pw\x00";
    let expected = Command::new(
        3,
        Outbind {
            system_id: cs("SMSC01"),
            password: cs("pw"),
        },
    );
    assert_golden(frame, &expected);
    assert!(!expected.expects_response(), "outbind has no response");
}

#[test]
fn enquire_link() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x10\
        \x00\x00\x00\x15\
        \x00\x00\x00\x00\
        \x00\x00\x00\x07";
    assert_golden(frame, &Command::new(7, Pdu::EnquireLink));
}

#[test]
fn unbind() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x10\
        \x00\x00\x00\x06\
        \x00\x00\x00\x00\
        \x00\x00\x00\x08";
    assert_golden(frame, &Command::new(8, Pdu::Unbind));
}

#[test]
fn generic_nack() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x10\
        \x80\x00\x00\x00\
        \x00\x00\x00\x03\
        \x00\x00\x00\x09";
    assert_golden(
        frame,
        &Command::generic_nack(9, CommandStatus::ESME_RINVCMDID),
    );
}

// ---------------------------------------------------------------------------------------------
// Message submission (§4.4, §4.5, §4.7)

#[test]
fn submit_sm_without_tlvs() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x48\
        \x00\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x02\
        \x00\
        \x05\
        \x00\
        Sairex\x00\
        \x01\
        \x01\
        923001234567\x00\
        \x00\
        \x00\
        \x00\
        \x00\
        000001000000000R\x00\
        \x01\
        \x00\
        \x00\
        \x00\
        \x05\
        Hello";
    let expected = Command::new(
        2,
        SubmitSm {
            validity_period: SmppTime::new("000001000000000R").unwrap(),
            short_message: sm(b"Hello"),
            ..base_submit_sm()
        },
    );
    assert_golden(frame, &expected);
}

#[test]
fn submit_sm_with_sar_tlvs() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x48\
        \x00\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x02\
        \x00\
        \x05\
        \x00\
        Sairex\x00\
        \x01\
        \x01\
        923001234567\x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x01\
        \x00\
        \x00\
        \x00\
        \x05\
        part1\
        \x02\x0C\x00\x02\x12\x34\
        \x02\x0E\x00\x01\x02\
        \x02\x0F\x00\x01\x01";
    let expected = Command::new(
        2,
        SubmitSm {
            short_message: sm(b"part1"),
            tlvs: Tlvs(vec![
                tlv(tag::sar_msg_ref_num, &[0x12, 0x34]),
                tlv(tag::sar_total_segments, &[2]),
                tlv(tag::sar_segment_seqnum, &[1]),
            ]),
            ..base_submit_sm()
        },
    );
    assert_golden(frame, &expected);
    let Pdu::SubmitSm(body) = &expected.pdu else {
        unreachable!()
    };
    assert_eq!(body.tlvs.sar_msg_ref_num(), Some(0x1234));
    assert_eq!(body.tlvs.sar_total_segments(), Some(2));
    assert_eq!(body.tlvs.sar_segment_seqnum(), Some(1));
}

#[test]
fn submit_sm_with_message_payload() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x42\
        \x00\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x02\
        \x00\
        \x05\
        \x00\
        Sairex\x00\
        \x01\
        \x01\
        923001234567\x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x01\
        \x00\
        \x00\
        \x00\
        \x00\
        \x04\x24\x00\x0BHello world";
    let expected = Command::new(
        2,
        SubmitSm {
            tlvs: Tlvs(vec![tlv(tag::message_payload, b"Hello world")]),
            ..base_submit_sm()
        },
    );
    assert_golden(frame, &expected);
}

#[test]
fn submit_sm_with_the_longest_short_message() {
    // sm_length 254 (0xFE) is the spec's maximum (§4.4.1).
    #[rustfmt::skip]
    let head: &[u8] = b"\
        \x00\x00\x01\x31\
        \x00\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x02\
        \x00\
        \x05\
        \x00\
        Sairex\x00\
        \x01\
        \x01\
        923001234567\x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x01\
        \x00\
        \x00\
        \x00\
        \xFE";
    let frame = [head, &[b'x'; 254]].concat();
    let expected = Command::new(
        2,
        SubmitSm {
            short_message: sm(&[b'x'; 254]),
            ..base_submit_sm()
        },
    );
    assert_golden(&frame, &expected);
}

#[test]
fn submit_sm_resp() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x1E\
        \x80\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x02\
        5f3c9a1e-0001\x00";
    let expected = Command::new(
        2,
        SubmitSmResp {
            message_id: cs("5f3c9a1e-0001"),
            tlvs: Tlvs::new(),
        },
    );
    assert_golden(frame, &expected);
}

#[test]
fn submit_sm_resp_with_error_status_and_no_body() {
    // §4.4.2: on an error status the body (message_id) is not returned.
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x10\
        \x80\x00\x00\x04\
        \x00\x00\x00\x58\
        \x00\x00\x00\x02";
    let expected = Command::with_status(CommandStatus::ESME_RTHROTTLED, 2, SubmitSmResp::default());
    assert_golden(frame, &expected);
}

#[test]
fn submit_multi_to_one_sme_and_one_distribution_list() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x41\
        \x00\x00\x00\x21\
        \x00\x00\x00\x00\
        \x00\x00\x00\x04\
        \x00\
        \x05\
        \x00\
        Sairex\x00\
        \x02\
        \x01\x01\x01923001234567\x00\
        \x02staff\x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x01\
        \x00\
        \x00\
        \x00\
        \x05\
        Hello";
    let expected = Command::new(
        4,
        SubmitMulti {
            service_type: cs(""),
            source_addr_ton: 5,
            source_addr_npi: 0,
            source_addr: cs("Sairex"),
            dest_addresses: SmeList::new(vec![
                DestAddress::SmeAddress {
                    dest_addr_ton: 1,
                    dest_addr_npi: 1,
                    destination_addr: cs("923001234567"),
                },
                DestAddress::DistributionList {
                    dl_name: cs("staff"),
                },
            ])
            .unwrap(),
            registered_delivery: 1,
            short_message: sm(b"Hello"),
            ..SubmitMulti::default()
        },
    );
    assert_golden(frame, &expected);
}

#[test]
fn submit_multi_resp_with_an_unsuccess_sme() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x2A\
        \x80\x00\x00\x21\
        \x00\x00\x00\x00\
        \x00\x00\x00\x04\
        mid42\x00\
        \x01\
        \x01\x01923009999999\x00\x00\x00\x00\x0B";
    let expected = Command::new(
        4,
        SubmitMultiResp {
            message_id: cs("mid42"),
            unsuccess_smes: SmeList::new(vec![UnsuccessSme {
                dest_addr_ton: 1,
                dest_addr_npi: 1,
                destination_addr: cs("923009999999"),
                error_status_code: CommandStatus::ESME_RINVDSTADR,
            }])
            .unwrap(),
            tlvs: Tlvs::new(),
        },
    );
    assert_golden(frame, &expected);
}

#[test]
fn data_sm() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x32\
        \x00\x00\x01\x03\
        \x00\x00\x00\x00\
        \x00\x00\x00\x05\
        \x00\
        \x05\
        \x00\
        Sairex\x00\
        \x01\
        \x01\
        923001234567\x00\
        \x00\
        \x01\
        \x00\
        \x04\x24\x00\x02Hi";
    let expected = Command::new(
        5,
        DataSm {
            service_type: cs(""),
            source_addr_ton: 5,
            source_addr_npi: 0,
            source_addr: cs("Sairex"),
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            destination_addr: cs("923001234567"),
            esm_class: 0,
            registered_delivery: 1,
            data_coding: 0,
            tlvs: Tlvs(vec![tlv(tag::message_payload, b"Hi")]),
        },
    );
    assert_golden(frame, &expected);
}

// ---------------------------------------------------------------------------------------------
// Delivery (§4.6) and the message-management operations (§4.8 – §4.10, §4.12)

#[test]
fn deliver_sm_receipt_with_receipted_message_id_and_message_state() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\xC3\
        \x00\x00\x00\x05\
        \x00\x00\x00\x00\
        \x00\x00\x00\x0A\
        \x00\
        \x01\
        \x01\
        923001234567\x00\
        \x05\
        \x00\
        Sairex\x00\
        \x04\
        \x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x79\
        id:5f3c9a1e-0001 sub:001 dlvrd:001 submit date:2506011200 done date:2506011201 stat:DELIVRD err:000 text:Fee due on Frida\
        \x00\x1E\x00\x0E5f3c9a1e-0001\x00\
        \x04\x27\x00\x01\x02";
    let text: &[u8] = b"id:5f3c9a1e-0001 sub:001 dlvrd:001 submit date:2506011200 \
        done date:2506011201 stat:DELIVRD err:000 text:Fee due on Frida";
    let expected = Command::new(
        10,
        DeliverSm {
            service_type: cs(""),
            source_addr_ton: 1,
            source_addr_npi: 1,
            source_addr: cs("923001234567"),
            dest_addr_ton: 5,
            dest_addr_npi: 0,
            destination_addr: cs("Sairex"),
            esm_class: 0x04,
            short_message: sm(text),
            tlvs: Tlvs(vec![
                tlv(tag::receipted_message_id, b"5f3c9a1e-0001\0"),
                tlv(tag::message_state, &[2]),
            ]),
            ..DeliverSm::default()
        },
    );
    assert_golden(frame, &expected);
    let Pdu::DeliverSm(body) = &expected.pdu else {
        unreachable!()
    };
    assert_eq!(
        body.tlvs.receipted_message_id(),
        Some(&b"5f3c9a1e-0001"[..])
    );
    assert_eq!(body.tlvs.message_state(), Some(2));
}

#[test]
fn query_sm() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x1F\
        \x00\x00\x00\x03\
        \x00\x00\x00\x00\
        \x00\x00\x00\x0B\
        mid42\x00\
        \x05\
        \x00\
        Sairex\x00";
    let expected = Command::new(
        11,
        QuerySm {
            message_id: cs("mid42"),
            source_addr_ton: 5,
            source_addr_npi: 0,
            source_addr: cs("Sairex"),
        },
    );
    assert_golden(frame, &expected);
}

#[test]
fn query_sm_resp() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x29\
        \x80\x00\x00\x03\
        \x00\x00\x00\x00\
        \x00\x00\x00\x0B\
        mid42\x00\
        250601120100004+\x00\
        \x02\
        \x00";
    let expected = Command::new(
        11,
        QuerySmResp {
            message_id: cs("mid42"),
            final_date: SmppTime::new("250601120100004+").unwrap(),
            message_state: 2,
            error_code: 0,
        },
    );
    assert_golden(frame, &expected);
}

#[test]
fn cancel_sm() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x2F\
        \x00\x00\x00\x08\
        \x00\x00\x00\x00\
        \x00\x00\x00\x0C\
        \x00\
        mid42\x00\
        \x05\
        \x00\
        Sairex\x00\
        \x01\
        \x01\
        923001234567\x00";
    let expected = Command::new(
        12,
        CancelSm {
            service_type: cs(""),
            message_id: cs("mid42"),
            source_addr_ton: 5,
            source_addr_npi: 0,
            source_addr: cs("Sairex"),
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            destination_addr: cs("923001234567"),
        },
    );
    assert_golden(frame, &expected);
}

#[test]
fn replace_sm() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x37\
        \x00\x00\x00\x07\
        \x00\x00\x00\x00\
        \x00\x00\x00\x0D\
        mid42\x00\
        \x05\
        \x00\
        Sairex\x00\
        \x00\
        000002000000000R\x00\
        \x01\
        \x00\
        \x03\
        New";
    let expected = Command::new(
        13,
        ReplaceSm {
            message_id: cs("mid42"),
            source_addr_ton: 5,
            source_addr_npi: 0,
            source_addr: cs("Sairex"),
            schedule_delivery_time: SmppTime::new("").unwrap(),
            validity_period: SmppTime::new("000002000000000R").unwrap(),
            registered_delivery: 1,
            sm_default_msg_id: 0,
            short_message: sm(b"New"),
        },
    );
    assert_golden(frame, &expected);
}

#[test]
fn alert_notification() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x2D\
        \x00\x00\x01\x02\
        \x00\x00\x00\x00\
        \x00\x00\x00\x0E\
        \x01\
        \x01\
        923001234567\x00\
        \x05\
        \x00\
        Sairex\x00\
        \x04\x22\x00\x01\x00";
    let expected = Command::new(
        14,
        AlertNotification {
            source_addr_ton: 1,
            source_addr_npi: 1,
            source_addr: cs("923001234567"),
            esme_addr_ton: 5,
            esme_addr_npi: 0,
            esme_addr: cs("Sairex"),
            tlvs: Tlvs(vec![tlv(tag::ms_availability_status, &[0])]),
        },
    );
    assert_golden(frame, &expected);
    assert!(
        !expected.expects_response(),
        "alert_notification has no response"
    );
}

// ---------------------------------------------------------------------------------------------
// What SMPP 3.4 does not define: kept as received

#[test]
fn unknown_command_id_decodes_to_unknown_with_its_raw_body() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x13\
        \x00\x00\x01\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x0F\
        \x01\x02\x03";
    let expected = Command::new(
        15,
        Pdu::Unknown {
            command_id: CommandId(0x0000_0104),
            body: Bytes::from_static(&[1, 2, 3]),
        },
    );
    assert_golden(frame, &expected);
    assert_eq!(expected.command_id().name(), None);
}

#[test]
fn unknown_tlv_tag_is_preserved_byte_for_byte() {
    // A vendor tag (0x1400, not in §5.3.2) with a NUL inside its value, and a known tag with a
    // length the spec does not allow (message_state is 1 octet): both must pass through as is.
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x22\
        \x80\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x10\
        abc\x00\
        \x14\x00\x00\x04\xDE\x00\xBE\xEF\
        \x04\x27\x00\x02\x01\x02";
    let expected = Command::new(
        16,
        SubmitSmResp {
            message_id: cs("abc"),
            tlvs: Tlvs(vec![
                tlv(0x1400, &[0xDE, 0x00, 0xBE, 0xEF]),
                tlv(tag::message_state, &[1, 2]),
            ]),
        },
    );
    assert_golden(frame, &expected);
    assert_eq!(tag::name(0x1400), None);
    let Pdu::SubmitSmResp(body) = &expected.pdu else {
        unreachable!()
    };
    assert_eq!(
        body.tlvs.message_state(),
        None,
        "wrong length reads as absent"
    );
}

// ---------------------------------------------------------------------------------------------
// Negative cases: framing errors end the stream, body errors are answered with generic_nack

#[test]
fn command_length_below_the_header_is_a_framing_error() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x0F\
        \x00\x00\x00\x15\
        \x00\x00\x00\x00\
        \x00\x00\x00\x01";
    let mut buf = BytesMut::from(frame);
    let err = SmppCodec::new().decode(&mut buf).unwrap_err();
    assert!(
        matches!(err, CodecError::Frame(FrameError::LengthTooShort(15))),
        "{err:?}"
    );
    assert_eq!(
        Command::from_bytes(Bytes::from_static(frame)),
        Err(ParseError::Frame(FrameError::LengthTooShort(15)))
    );
}

#[test]
fn command_length_over_the_maximum_is_an_error_and_reserves_nothing() {
    // Announces 256 MiB; only the header has arrived.
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x10\x00\x00\x00\
        \x00\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x01";
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(frame);
    let err = SmppCodec::new().decode(&mut buf).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::Frame(FrameError::LengthTooLong {
                length: 0x1000_0000,
                max: 65_536
            })
        ),
        "{err:?}"
    );
    assert!(
        buf.capacity() <= 64,
        "reserved {} octets for a frame it refused",
        buf.capacity()
    );

    // One octet over a configured maximum is refused too.
    let mut buf = BytesMut::from(&b"\x00\x00\x01\x01"[..]);
    let err = SmppCodec::with_max_command_length(256)
        .decode(&mut buf)
        .unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::Frame(FrameError::LengthTooLong {
                length: 257,
                max: 256
            })
        ),
        "{err:?}"
    );
    assert!(buf.capacity() < 257);
}

#[test]
fn c_string_without_nul_names_the_field_and_nacks_with_its_status() {
    // source_addr is 25 characters with no NUL within its 21-octet maximum.
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x2C\
        \x00\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x21\
        \x00\
        \x05\
        \x00\
        AAAAAAAAAAAAAAAAAAAAAAAAA";
    let invalid = invalid(frame);
    assert_eq!(invalid.header.sequence_number, 0x21);
    assert_eq!(invalid.header.command_id, CommandId::SUBMIT_SM);
    assert_eq!(invalid.error.field, "source_addr");
    assert_eq!(invalid.error.offset, 3);
    assert_eq!(invalid.error.kind, DecodeErrorKind::MissingNul { max: 21 });
    assert_eq!(
        invalid.generic_nack(),
        Command::generic_nack(0x21, CommandStatus::ESME_RINVSRCADR)
    );
    assert_eq!(
        invalid.generic_nack().to_bytes().as_ref(),
        b"\x00\x00\x00\x10\x80\x00\x00\x00\x00\x00\x00\x0A\x00\x00\x00\x21"
    );
}

#[test]
fn c_string_cut_by_the_end_of_the_body_is_truncated() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x19\
        \x00\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x22\
        \x00\
        \x05\
        \x00\
        Sairex";
    let invalid = invalid(frame);
    assert_eq!(invalid.error.field, "source_addr");
    assert_eq!(invalid.error.kind, DecodeErrorKind::Truncated);
    assert_eq!(
        invalid.generic_nack(),
        Command::generic_nack(0x22, CommandStatus::ESME_RINVSRCADR)
    );
}

#[test]
fn sm_length_over_254_is_invalid_message_length() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x38\
        \x00\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x23\
        \x00\
        \x05\
        \x00\
        Sairex\x00\
        \x01\
        \x01\
        923001234567\x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x01\
        \x00\
        \x00\
        \x00\
        \xFF\
        Hello";
    let invalid = invalid(frame);
    assert_eq!(invalid.error.field, "sm_length");
    assert_eq!(
        invalid.error.kind,
        DecodeErrorKind::TooLong {
            max: 254,
            actual: 255
        }
    );
    assert_eq!(
        invalid.generic_nack(),
        Command::generic_nack(0x23, CommandStatus::ESME_RINVMSGLEN)
    );
}

#[test]
fn sm_length_running_past_the_body_is_invalid_message_length() {
    // sm_length says 10, five octets follow.
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x38\
        \x00\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x24\
        \x00\
        \x05\
        \x00\
        Sairex\x00\
        \x01\
        \x01\
        923001234567\x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x00\
        \x01\
        \x00\
        \x00\
        \x00\
        \x0A\
        Hello";
    let invalid = invalid(frame);
    assert_eq!(invalid.error.field, "short_message");
    assert_eq!(invalid.error.kind, DecodeErrorKind::Truncated);
    assert_eq!(
        invalid.generic_nack(),
        Command::generic_nack(0x24, CommandStatus::ESME_RINVMSGLEN)
    );
}

#[test]
fn truncated_tlv_is_an_optional_parameter_stream_error() {
    // message_payload announces 10 octets, 3 follow.
    #[rustfmt::skip]
    let value_cut: &[u8] = b"\
        \x00\x00\x00\x1B\
        \x80\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x25\
        abc\x00\
        \x04\x24\x00\x0Axyz";
    // Only three octets of a tag and length.
    #[rustfmt::skip]
    let header_cut: &[u8] = b"\
        \x00\x00\x00\x17\
        \x80\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x25\
        abc\x00\
        \x04\x24\x00";
    for frame in [value_cut, header_cut] {
        let invalid = invalid(frame);
        assert_eq!(invalid.error.field, "tlv");
        assert_eq!(invalid.error.kind, DecodeErrorKind::Truncated);
        assert_eq!(
            invalid.generic_nack(),
            Command::generic_nack(0x25, CommandStatus::ESME_RINVOPTPARSTREAM)
        );
    }
}

#[test]
fn trailing_bytes_in_enquire_link_are_invalid_command_length() {
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x14\
        \x00\x00\x00\x15\
        \x00\x00\x00\x00\
        \x00\x00\x00\x26\
        \xDE\xAD\xBE\xEF";
    let invalid = invalid(frame);
    assert_eq!(
        invalid.error.kind,
        DecodeErrorKind::TrailingBytes { count: 4 }
    );
    assert_eq!(
        invalid.generic_nack(),
        Command::generic_nack(0x26, CommandStatus::ESME_RINVCMDLEN)
    );
}

#[test]
fn invalid_number_of_dests_is_answered_with_esme_rinvnumdests() {
    // number_of_dests 255: over the 254 of §4.5.1. §5.1.3 has a status for exactly this.
    #[rustfmt::skip]
    let frame: &[u8] = b"\
        \x00\x00\x00\x1B\
        \x00\x00\x00\x21\
        \x00\x00\x00\x00\
        \x00\x00\x00\x27\
        \x00\
        \x05\
        \x00\
        Sairex\x00\
        \xFF";
    let invalid = invalid(frame);
    assert_eq!(
        invalid.error.kind,
        DecodeErrorKind::InvalidValue { value: 255 }
    );
    assert_eq!(
        invalid.generic_nack(),
        Command::generic_nack(0x27, CommandStatus::ESME_RINVNUMDESTS)
    );
}

#[test]
fn time_fields_that_are_neither_empty_nor_16_characters_are_invalid() {
    // §4.4.1: schedule_delivery_time and validity_period are "1 or 17" octets (NULL, or the
    // 16-character format of §7.1.1). Each frame below has a 4-character time "2506".
    #[rustfmt::skip]
    let bad_schedule: &[u8] = b"\
        \x00\x00\x00\x3C\
        \x00\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x28\
        \x00\
        \x05\
        \x00\
        Sairex\x00\
        \x01\
        \x01\
        923001234567\x00\
        \x00\
        \x00\
        \x00\
        2506\x00\
        \x00\
        \x01\
        \x00\
        \x00\
        \x00\
        \x05\
        Hello";
    #[rustfmt::skip]
    let bad_validity: &[u8] = b"\
        \x00\x00\x00\x3C\
        \x00\x00\x00\x04\
        \x00\x00\x00\x00\
        \x00\x00\x00\x29\
        \x00\
        \x05\
        \x00\
        Sairex\x00\
        \x01\
        \x01\
        923001234567\x00\
        \x00\
        \x00\
        \x00\
        \x00\
        2506\x00\
        \x01\
        \x00\
        \x00\
        \x00\
        \x05\
        Hello";
    for (frame, field, status, sequence) in [
        (
            bad_schedule,
            "schedule_delivery_time",
            CommandStatus::ESME_RINVSCHED,
            0x28,
        ),
        (
            bad_validity,
            "validity_period",
            CommandStatus::ESME_RINVEXPIRY,
            0x29,
        ),
    ] {
        let mut buf = BytesMut::from(frame);
        let invalid = match SmppCodec::new().decode(&mut buf).unwrap().unwrap() {
            Ok(command) => panic!("a 4-character {field} was accepted: {command:?}"),
            Err(invalid) => invalid,
        };
        assert_eq!(invalid.error.field, field);
        assert_eq!(
            invalid.error.kind,
            DecodeErrorKind::InvalidLength { actual: 4 }
        );
        assert_eq!(
            invalid.generic_nack(),
            Command::generic_nack(sequence, status)
        );
    }
}

#[test]
fn unknown_command_id_through_the_codec_is_unknown_and_the_stream_goes_on() {
    #[rustfmt::skip]
    let stream: &[u8] = b"\
        \x00\x00\x00\x14\
        \x00\x00\x00\x15\
        \x00\x00\x00\x00\
        \x00\x00\x00\x30\
        \xDE\xAD\xBE\xEF\
        \x00\x00\x00\x10\
        \x00\x01\x00\x00\
        \x00\x00\x00\x00\
        \x00\x00\x00\x31\
        \x00\x00\x00\x10\
        \x00\x00\x00\x15\
        \x00\x00\x00\x00\
        \x00\x00\x00\x32";
    let mut codec = SmppCodec::new();
    let mut buf = BytesMut::from(stream);

    let first = codec.decode(&mut buf).unwrap().unwrap().unwrap_err();
    assert_eq!(first.header.sequence_number, 0x30);

    let second = codec.decode(&mut buf).unwrap().unwrap().unwrap();
    assert_eq!(
        second,
        Command::new(
            0x31,
            Pdu::Unknown {
                command_id: CommandId(0x0001_0000),
                body: Bytes::new(),
            }
        )
    );
    assert!(
        second.expects_response(),
        "a request id: answer ESME_RINVCMDID"
    );

    let third = codec.decode(&mut buf).unwrap().unwrap().unwrap();
    assert_eq!(third, Command::new(0x32, Pdu::EnquireLink));
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
}
