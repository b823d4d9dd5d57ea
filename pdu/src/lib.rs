//! SMPP 3.4 for Sairex SMS: every operation as a typed PDU, a zero-copy codec for tokio-util,
//! the command statuses, GSM 03.38 / UCS-2 / Latin-1 text with segmentation, and delivery
//! receipts.
//!
//! # Layout
//! - [`Command`] and [`Pdu`] (module `pdu`): a PDU with its header fields, and the enum of every
//!   SMPP 3.4 operation, each a struct with the spec's field names.
//! - [`SmppCodec`] (module `codec`): framing for `Framed`, with a maximum `command_length`.
//! - [`CommandId`], [`CommandStatus`]: header values with the spec's names and descriptions.
//! - [`Tlvs`] (module `tlv`): optional parameters with a typed accessor for every SMPP 3.4 tag;
//!   unknown tags are kept byte for byte.
//! - [`COctetString`], [`OctetString`] (module `types`): wire strings bounded by their field.
//! - [`text`]: GSM 03.38, UCS-2 and Latin-1, choosing an encoding, counting and splitting segments.
//! - [`receipt`]: delivery receipt text (SMPP 3.4 Appendix B) and the receipt TLVs.
//! - [`fuzzing`]: the decode-and-re-encode check the fuzz target and the tests share.
//! - `testing` (feature `testing`): proptest strategies for every PDU.
//!
//! # Example
//! ```
//! use bytes::BytesMut;
//! use sairex_pdu::{Command, CommandStatus, Pdu, SmppCodec, SubmitSm, SubmitSmResp};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let submit = SubmitSm {
//!     source_addr: "Sairex".try_into().unwrap(),
//!     destination_addr: "923001234567".try_into().unwrap(),
//!     short_message: sairex_pdu::ShortMessage::new(&b"Fee due on Friday"[..]).unwrap(),
//!     registered_delivery: 1,
//!     ..SubmitSm::default()
//! };
//! let mut codec = SmppCodec::new();
//! let mut wire = BytesMut::new();
//! codec.encode(Command::new(7, submit.clone()), &mut wire).unwrap();
//!
//! let decoded = codec.decode(&mut wire).unwrap().unwrap().unwrap();
//! assert_eq!(decoded.sequence_number, 7);
//! assert_eq!(decoded.pdu, Pdu::SubmitSm(submit));
//!
//! let resp = Command::new(7, SubmitSmResp { message_id: "abc".try_into().unwrap(), ..Default::default() });
//! assert_eq!(resp.command_status, CommandStatus::ESME_ROK);
//! ```
#![deny(missing_docs)]
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod codec;
mod command_id;
mod command_status;
mod error;
mod field;
pub mod fuzzing;
mod pdu;
pub mod receipt;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
mod tlv;
mod types;

pub use codec::{DEFAULT_MAX_COMMAND_LENGTH, SmppCodec};
pub use command_id::CommandId;
pub use command_status::CommandStatus;
pub use error::{CodecError, DecodeError, DecodeErrorKind, FrameError, ValueError};
pub use pdu::*;
pub use tlv::{NetworkErrorCode, Tlv, Tlvs, tag};
pub use types::{
    COctetString, MAX_SHORT_MESSAGE_LEN, OctetString, Octets, SMPP_TIME_LEN, ShortMessage, SmppTime,
};
