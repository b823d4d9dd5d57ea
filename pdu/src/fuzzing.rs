//! The checks the fuzz target (`fuzz/fuzz_targets/decode_frames.rs`) runs on arbitrary input,
//! here so the proptests run them on stable Rust in CI too.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::{Command, SmppCodec};

/// Feeds `data` to the codec as a stream; every PDU that decodes must re-encode to a frame that
/// decodes to the same PDU. Stops at the first framing error, as a session would.
///
/// # Panics
/// When the round trip does not hold: that is the bug the fuzzer is looking for.
pub fn decode_stream(data: &[u8]) {
    let mut codec = SmppCodec::with_max_command_length(4096);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(item)) = codec.decode(&mut buf) {
        if let Ok(command) = item {
            assert_roundtrip(&command);
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
