//! The codec must give the same PDUs however the byte stream is cut: whole, one octet at a
//! time, in random chunks, or through a socket-like pipe of any buffer size. A decoder that
//! assumed a header or a body arrives in one read would fail here.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use proptest::collection::vec;
use proptest::prelude::*;
use sairex_pdu::{
    Bind, BindResp, CodecError, Command, CommandId, CommandStatus, DataSm, DeliverSm, DestAddress,
    FrameError, InvalidPdu, Pdu, ShortMessage, SmeList, SmppCodec, SubmitMulti, SubmitSm,
    SubmitSmResp, Tlvs,
};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Decoder, FramedRead};

type Item = Result<Command, InvalidPdu>;

/// A session's worth of varied PDUs: empty bodies, small and large bodies, TLVs, a 20 KB
/// message_payload (bigger than any pipe buffer below), an unknown command, and one frame whose
/// body does not parse (which must not disturb the frames after it).
fn stream() -> (Bytes, Vec<Item>) {
    let mut receipt_tlvs = Tlvs::new();
    receipt_tlvs
        .set_receipted_message_id(b"5f3c9a1e-0001")
        .unwrap();
    receipt_tlvs.set_message_state(2);
    let mut payload_tlvs = Tlvs::new();
    payload_tlvs
        .set_message_payload(Bytes::from(vec![b'p'; 20_000]))
        .unwrap();

    let commands = [
        Command::new(
            1,
            Pdu::BindTransceiver(Bind {
                system_id: "sairex".try_into().unwrap(),
                password: "secret".try_into().unwrap(),
                interface_version: 0x34,
                ..Bind::default()
            }),
        ),
        Command::new(
            1,
            Pdu::BindTransceiverResp(BindResp {
                system_id: "SMSC01".try_into().unwrap(),
                tlvs: Tlvs::new(),
            }),
        ),
        Command::new(2, Pdu::EnquireLink),
        Command::new(
            3,
            SubmitSm {
                source_addr: "Sairex".try_into().unwrap(),
                destination_addr: "923001234567".try_into().unwrap(),
                registered_delivery: 1,
                short_message: ShortMessage::new(vec![b'a'; 160]).unwrap(),
                ..SubmitSm::default()
            },
        ),
        Command::with_status(CommandStatus::ESME_RTHROTTLED, 3, SubmitSmResp::default()),
        Command::new(
            4,
            DeliverSm {
                esm_class: 0x04,
                short_message: ShortMessage::new(&b"id:5f3c9a1e-0001 stat:DELIVRD"[..]).unwrap(),
                tlvs: receipt_tlvs,
                ..DeliverSm::default()
            },
        ),
        Command::new(
            5,
            DataSm {
                source_addr: "Sairex".try_into().unwrap(),
                tlvs: payload_tlvs,
                ..DataSm::default()
            },
        ),
        Command::new(
            6,
            SubmitMulti {
                dest_addresses: SmeList::new(vec![
                    DestAddress::SmeAddress {
                        dest_addr_ton: 1,
                        dest_addr_npi: 1,
                        destination_addr: "923001234567".try_into().unwrap(),
                    },
                    DestAddress::DistributionList {
                        dl_name: "staff".try_into().unwrap(),
                    },
                ])
                .unwrap(),
                ..SubmitMulti::default()
            },
        ),
        Command::new(
            7,
            Pdu::Unknown {
                command_id: CommandId(0x0000_0104),
                body: Bytes::from_static(b"\x01\x02\x03"),
            },
        ),
    ];

    let mut wire = BytesMut::new();
    let mut expected = Vec::new();
    for (i, command) in commands.into_iter().enumerate() {
        command.encode(&mut wire);
        expected.push(Ok(command));
        if i == 3 {
            // enquire_link with four stray octets: an InvalidPdu, then the stream goes on.
            let bad =
                b"\x00\x00\x00\x14\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x63\xDE\xAD\xBE\xEF";
            let invalid = SmppCodec::new()
                .decode(&mut BytesMut::from(&bad[..]))
                .unwrap()
                .unwrap()
                .unwrap_err();
            assert_eq!(invalid.header.sequence_number, 0x63);
            wire.extend_from_slice(bad);
            expected.push(Err(invalid));
        }
    }
    (wire.freeze(), expected)
}

/// A header announcing 5 octets: a framing error, which ends the stream.
const CORRUPT: &[u8] = b"\x00\x00\x00\x05\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x01";

fn is_corrupt_frame_error(err: &CodecError) -> bool {
    matches!(err, CodecError::Frame(FrameError::LengthTooShort(5)))
}

/// Decodes from one buffer holding everything.
fn decode_whole(wire: &[u8]) -> Vec<Item> {
    let mut codec = SmppCodec::new();
    let mut buf = BytesMut::from(wire);
    let mut items = Vec::new();
    while let Some(item) = codec.decode(&mut buf).unwrap() {
        items.push(item);
    }
    assert!(buf.is_empty(), "{} octets left over", buf.len());
    items
}

/// Feeds the codec chunks of the given lengths (cycled), decoding after each, as a read loop does.
fn decode_in_chunks(wire: &[u8], chunk_lens: &[usize]) -> Vec<Item> {
    let mut codec = SmppCodec::new();
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut rest = wire;
    let mut lens = chunk_lens.iter().copied().cycle();
    while !rest.is_empty() {
        let n = lens.next().unwrap().clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            items.push(item);
        }
    }
    assert!(buf.is_empty(), "{} octets left over", buf.len());
    items
}

/// Writes the stream into a `tokio::io::duplex` pipe of `capacity` octets and reads it back
/// through `FramedRead`, the way a session reads a socket.
fn decode_through_pipe(wire: Bytes, capacity: usize) -> Vec<Result<Item, CodecError>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (mut writer, reader) = tokio::io::duplex(capacity);
        // After a framing error the reader stops and drops its end, so the writer may see a
        // broken pipe: that is the expected end, and what was read is checked by the caller.
        let write = tokio::spawn(async move {
            if writer.write_all(&wire).await.is_ok() {
                writer.shutdown().await.ok();
            }
        });
        let items: Vec<_> = FramedRead::new(reader, SmppCodec::new()).collect().await;
        write.await.unwrap();
        items
    })
}

#[test]
fn the_reference_decode_gives_back_what_was_encoded() {
    let (wire, expected) = stream();
    assert_eq!(decode_whole(&wire), expected);
}

#[test]
fn byte_by_byte_decoding_gives_the_same_pdus() {
    let (wire, expected) = stream();
    assert_eq!(decode_in_chunks(&wire, &[1]), expected);
}

#[test]
fn duplex_pipes_of_every_small_size_give_the_same_pdus() {
    let (wire, expected) = stream();
    let sizes = (1..=64).chain([100, 255, 1000, 4096, 8192, 65_536, 1 << 20]);
    for capacity in sizes {
        let items: Vec<Item> = decode_through_pipe(wire.clone(), capacity)
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("pipe of {capacity}: {e}")))
            .collect();
        assert_eq!(items, expected, "pipe of {capacity} octets");
    }
}

#[test]
fn a_framing_error_surfaces_after_the_same_pdus_however_the_stream_is_cut() {
    let (wire, expected) = stream();
    let corrupted = Bytes::from([&wire[..], CORRUPT].concat());

    for capacity in [1, 7, 16, 17, 64, 4096] {
        let mut items = decode_through_pipe(corrupted.clone(), capacity);
        let last = items.pop().unwrap();
        assert!(
            matches!(&last, Err(e) if is_corrupt_frame_error(e)),
            "pipe of {capacity}: ended with {last:?}"
        );
        let items: Vec<Item> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(items, expected, "pipe of {capacity} octets");
    }

    let mut codec = SmppCodec::new();
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut error = None;
    for &byte in corrupted.iter() {
        buf.extend_from_slice(&[byte]);
        match codec.decode(&mut buf) {
            Ok(Some(item)) => items.push(item),
            Ok(None) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert!(
        error.as_ref().is_some_and(is_corrupt_frame_error),
        "{error:?}"
    );
    assert_eq!(items, expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_chunking_gives_the_same_pdus(chunk_lens in vec(1usize..300, 1..40)) {
        let (wire, expected) = stream();
        prop_assert_eq!(decode_in_chunks(&wire, &chunk_lens), expected);
    }
}
