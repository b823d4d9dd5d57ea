//! The checks the fuzz target (`fuzz/fuzz_targets/decode_frames.rs`) runs on arbitrary input,
//! here so the proptests run them on stable Rust in CI too.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::{Command, SmppCodec};

/// Feeds `data` to the codec as a stream, decoding each frame both owned and in place: the two
/// must agree (same PDU, or the same error at the same sequence number) and consume the same
/// octets, and every PDU that decodes must re-encode to a frame that decodes to the same PDU.
/// Stops at the first framing error, as a session would.
///
/// # Panics
/// When any of that does not hold: that is the bug the fuzzer is looking for.
pub fn decode_stream(data: &[u8]) {
    let mut codec = SmppCodec::with_max_command_length(4096);
    let mut owned_buf = BytesMut::from(data);
    let mut borrowed_buf = BytesMut::from(data);
    loop {
        let owned = codec.decode(&mut owned_buf);
        let borrowed = codec.decode_borrowed(&mut borrowed_buf, |item| match item {
            Ok(command) => Ok(command.to_bytes()),
            Err(invalid) => Err(invalid),
        });
        assert_eq!(
            owned_buf, borrowed_buf,
            "owned and in-place decoding consumed differently"
        );
        match (owned, borrowed) {
            (Ok(Some(Ok(command))), Ok(Some(Ok(bytes)))) => {
                assert_eq!(
                    command.to_bytes(),
                    bytes,
                    "in-place decode differs from owned"
                );
                assert_roundtrip(&command);
            }
            (Ok(Some(Err(a))), Ok(Some(Err(b)))) => assert_eq!(a, b),
            (Ok(None), Ok(None)) | (Err(_), Err(_)) => return,
            (owned, borrowed) => panic!("owned {owned:?} but in place {borrowed:?}"),
        }
    }
}

/// Checks decode(encode(command)) == command.
///
/// # Panics
/// When it does not hold.
pub fn assert_roundtrip(command: &Command) {
    let bytes = command.to_bytes();
    assert_eq!(
        bytes.len(),
        command.encoded_len(),
        "encoded_len disagrees with encode"
    );
    match Command::from_bytes(bytes) {
        Ok(again) => assert_eq!(&again, command, "re-encoded PDU decodes differently"),
        Err(err) => panic!("re-encoded PDU does not decode: {err}"),
    }
}
