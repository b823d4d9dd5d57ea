//! [`SmppCodec`]: SMPP framing for tokio-util's `Framed`, `FramedRead` and `FramedWrite`.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{CodecError, FrameError};
use crate::pdu::{Command, CommandRef, HEADER_LEN, Header, InvalidPdu};

/// Default largest `command_length` accepted, in octets: 64 KiB holds any real PDU (a 254-octet
/// short message, or a long message_payload) while bounding what one peer can make us buffer;
/// raise it with [`SmppCodec::with_max_command_length`] if a peer needs more.
pub const DEFAULT_MAX_COMMAND_LENGTH: u32 = 64 * 1024;

/// [`HEADER_LEN`] as the type of `command_length`.
const HEADER_LEN_U32: u32 = 16;

/// SMPP framing: `command_length`-prefixed PDUs.
///
/// Decoding yields `Ok(Some(Ok(command)))` for a good PDU, `Ok(Some(Err(invalid)))` for a PDU
/// whose body does not parse (the stream stays usable: answer
/// [`InvalidPdu::generic_nack`]), and `Err` only for corrupt framing — a `command_length` below
/// 16 or over the maximum — after which the connection should be closed. An unknown
/// `command_id` decodes to [`Pdu::Unknown`](crate::Pdu::Unknown).
#[derive(Debug, Clone, Copy)]
pub struct SmppCodec {
    max_command_length: u32,
}

impl Default for SmppCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl SmppCodec {
    /// A codec accepting PDUs up to [`DEFAULT_MAX_COMMAND_LENGTH`].
    pub const fn new() -> Self {
        Self {
            max_command_length: DEFAULT_MAX_COMMAND_LENGTH,
        }
    }

    /// A codec accepting PDUs up to `max` octets (never below the 16-octet header).
    pub fn with_max_command_length(max: u32) -> Self {
        Self {
            max_command_length: max.max(HEADER_LEN_U32),
        }
    }

    /// The largest `command_length` accepted.
    pub fn max_command_length(&self) -> u32 {
        self.max_command_length
    }
}

impl SmppCodec {
    /// The length of the complete frame at the start of `src`, or `None` when more bytes are
    /// needed (space for them is reserved once).
    fn complete_frame(&self, src: &mut BytesMut) -> Result<Option<usize>, CodecError> {
        let Some(length) = src
            .get(..4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        else {
            return Ok(None);
        };
        // Check the length before reserving anything for it: a hostile peer must not be able
        // to make us allocate what it announces.
        if (length as usize) < HEADER_LEN {
            return Err(FrameError::LengthTooShort(length).into());
        }
        if length > self.max_command_length {
            return Err(FrameError::LengthTooLong {
                length,
                max: self.max_command_length,
            }
            .into());
        }
        let length = length as usize;
        if src.len() < length {
            src.reserve(length - src.len());
            return Ok(None);
        }
        Ok(Some(length))
    }

    /// Decodes the next PDU of `src` in place and hands it to `visit`, then consumes its
    /// octets: the fastest way to read a stream, with no reference counting and no copy (the
    /// PDU borrows from `src` only while `visit` runs). Same framing rules and errors as
    /// [`Decoder::decode`]; `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// [`CodecError::Frame`] for a `command_length` below 16 or over the maximum.
    pub fn decode_borrowed<R>(
        &mut self,
        src: &mut BytesMut,
        visit: impl FnOnce(Result<CommandRef<'_>, InvalidPdu>) -> R,
    ) -> Result<Option<R>, CodecError> {
        let Some(length) = self.complete_frame(src)? else {
            return Ok(None);
        };
        let frame = &src[..length];
        let result = match Header::decode(frame) {
            Some(header) => visit(Command::decode_borrowed(header, &frame[HEADER_LEN..])),
            None => return Ok(None),
        };
        src.advance(length);
        Ok(Some(result))
    }
}

impl Decoder for SmppCodec {
    type Item = Result<Command, InvalidPdu>;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        let Some(length) = self.complete_frame(src)? else {
            return Ok(None);
        };
        let Some(header) = Header::decode(src) else {
            return Ok(None);
        };
        src.advance(HEADER_LEN);
        let body = src.split_to(length - HEADER_LEN).freeze();
        Ok(Some(Command::decode(header, body)))
    }
}

// One item type only: with a second `Encoder<&Command>` impl, `SinkExt::flush` on a `Framed`
// could no longer infer its item type. Encode a borrowed command with `Command::encode`.
impl Encoder<Command> for SmppCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Command, dst: &mut BytesMut) -> Result<(), Self::Error> {
        item.encode(dst);
        Ok(())
    }
}
