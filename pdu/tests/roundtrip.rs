//! decode(encode(x)) == x for every operation, TLVs and error statuses included, and the
//! encoded length always matches what `encoded_len` promised.

use bytes::BytesMut;
use proptest::prelude::*;
use sairex_pdu::testing;
use sairex_pdu::{Command, CommandStatus, Pdu, SmppCodec, SubmitSmResp};
use tokio_util::codec::{Decoder, Encoder};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn every_command_round_trips(command in testing::command()) {
        sairex_pdu::fuzzing::assert_roundtrip(&command);
    }

    #[test]
    fn streams_of_commands_round_trip_through_the_codec(
        commands in proptest::collection::vec(testing::command(), 1..16)
    ) {
        let mut codec = SmppCodec::new();
        let mut wire = BytesMut::new();
        for command in &commands {
            codec.encode(command.clone(), &mut wire).unwrap();
        }
        let mut decoded = Vec::new();
        while let Some(item) = codec.decode(&mut wire).unwrap() {
            decoded.push(item.unwrap());
        }
        prop_assert!(wire.is_empty());
        prop_assert_eq!(decoded, commands);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        sairex_pdu::fuzzing::decode_stream(&data);
    }
}

#[test]
fn error_responses_without_body_are_sent_without_body() {
    // SMPP 3.4 §4.4.2: no submit_sm_resp body on a non-zero command_status.
    let nack = Command::with_status(CommandStatus::ESME_RTHROTTLED, 9, SubmitSmResp::default());
    assert_eq!(nack.to_bytes().len(), 16);
    let ok = Command::new(9, SubmitSmResp::default());
    assert_eq!(
        ok.to_bytes().len(),
        17,
        "a successful response keeps its (empty) message_id"
    );
    let decoded = Command::from_bytes(nack.to_bytes()).unwrap();
    assert_eq!(decoded.pdu, Pdu::SubmitSmResp(SubmitSmResp::default()));
}

proptest! {
    #[test]
    fn borrowed_decoding_agrees_with_owned_decoding(command in testing::command()) {
        let bytes = command.to_bytes();
        let borrowed = sairex_pdu::CommandRef::parse(&bytes).unwrap();
        prop_assert_eq!(borrowed.to_bytes(), bytes.clone(), "re-encoding a borrowed PDU");
        prop_assert_eq!(borrowed.into_owned().unwrap(), command);
    }

    #[test]
    fn the_codec_decodes_in_place_exactly_as_it_decodes_owned(
        commands in proptest::collection::vec(testing::command(), 1..8),
        junk in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut wire = BytesMut::new();
        for command in &commands {
            command.encode(&mut wire);
        }
        wire.extend_from_slice(&junk);
        let mut owned_wire = wire.clone();
        let mut codec = SmppCodec::new();
        loop {
            let owned = codec.decode(&mut owned_wire);
            let borrowed = codec.decode_borrowed(&mut wire, |r| {
                r.map(|c| c.into_owned().unwrap()).map_err(|e| e.header.sequence_number)
            });
            match (owned, borrowed) {
                (Ok(Some(a)), Ok(Some(b))) => {
                    prop_assert_eq!(a.map_err(|e| e.header.sequence_number), b)
                }
                (Ok(None), Ok(None)) | (Err(_), Err(_)) => break,
                (a, b) => prop_assert!(false, "owned {:?} but borrowed {:?}", a, b),
            }
            prop_assert_eq!(&owned_wire, &wire, "both consume the same octets");
        }
    }
}
