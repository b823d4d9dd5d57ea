//! Arbitrary bytes as an SMPP stream: every frame that decodes must re-encode to a frame that
//! decodes to the same PDU, and nothing may panic, overflow or allocate what a header announces.
//! The body lives in `sairex_pdu::fuzzing` so `pdu/tests/regression.rs` runs it on stable too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sairex_pdu::fuzzing::decode_stream(data);
});
