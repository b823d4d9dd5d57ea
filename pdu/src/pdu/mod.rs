//! Every SMPP 3.4 operation (§4) as a typed body, the [`Pdu`] enum over them, and [`Command`]:
//! a PDU with its header fields.

use bytes::{BufMut, Bytes, BytesMut};

use crate::command_id::CommandId;
use crate::command_status::CommandStatus;
use crate::error::{DecodeError, FrameError};
use crate::field::{Borrowed, Reader, Shared, Source};
use crate::types::Octets;

/// Length of the PDU header: command_length, command_id, command_status, sequence_number.
pub const HEADER_LEN: usize = 16;

/// Reading and writing a body's fields in spec order.
pub(crate) trait Body<B>: Sized {
    fn decode_fields<'a, S: Source<'a, Out = B>>(
        r: &mut Reader<'a, S>,
    ) -> Result<Self, DecodeError>;
    fn encoded_len(&self) -> usize;
    fn encode(&self, dst: &mut BytesMut);
}

/// Declares a body struct whose fields are read and written in declaration order, which is the
/// spec's order: one list, so the struct and its codec cannot drift apart.
macro_rules! body {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$fmeta:meta])* $field:ident : $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name<B: crate::types::Octets = bytes::Bytes> {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl<B: crate::types::Octets> crate::pdu::Body<B> for $name<B> {
            #[inline(always)]
            fn decode_fields<'a, S: crate::field::Source<'a, Out = B>>(
                r: &mut crate::field::Reader<'a, S>,
            ) -> Result<Self, crate::error::DecodeError> {
                Ok(Self {
                    $($field: <$ty as crate::field::Field<B>>::read(r, stringify!($field))?,)*
                })
            }
            fn encoded_len(&self) -> usize {
                0 $(+ <$ty as crate::field::Field<B>>::encoded_len(&self.$field))*
            }
            fn encode(&self, dst: &mut bytes::BytesMut) {
                $(<$ty as crate::field::Field<B>>::write(&self.$field, dst);)*
            }
        }
    };
}

mod bind;
mod data_sm;
mod query_cancel_replace;
mod submit_multi;
mod submit_sm;

pub use bind::{Bind, BindResp, Outbind};
pub use data_sm::{AlertNotification, DataSm, DataSmResp};
pub use query_cancel_replace::{CancelSm, QuerySm, QuerySmResp, ReplaceSm};
pub use submit_multi::{
    DestAddress, MAX_DESTINATIONS, SmeList, SubmitMulti, SubmitMultiResp, UnsuccessSme,
};
pub use submit_sm::{DeliverSm, DeliverSmResp, SubmitSm, SubmitSmResp, esm_class};

/// A response body that a peer may leave out on an error status (SMPP 3.4 §4.4.2 says so of
/// submit_sm_resp; SMSCs do it for the others too). An empty body decodes as the default, and
/// a default body under an error status is encoded as no body at all.
#[inline]
fn decode_optional<'a, B, S: Source<'a, Out = B>, T: Body<B> + Default>(
    r: &mut Reader<'a, S>,
) -> Result<T, DecodeError> {
    if r.is_empty() {
        Ok(T::default())
    } else {
        T::decode_fields(r)
    }
}

fn omits_body<T: Default + PartialEq>(body: &T, status: CommandStatus) -> bool {
    !status.is_ok() && *body == T::default()
}

macro_rules! pdus {
    (
        bodies { $($(#[$bdoc:meta])* $bvar:ident($bty:ident) = $bid:ident,)* }
        responses { $($(#[$rdoc:meta])* $rvar:ident($rty:ident) = $rid:ident,)* }
        empty { $($(#[$edoc:meta])* $evar:ident = $eid:ident,)* }
    ) => {
        /// One SMPP 3.4 operation. Its header fields are in [`Command`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        // Boxing the large bodies would cost an allocation per decoded PDU on the hot path.
        #[allow(clippy::large_enum_variant)]
        #[non_exhaustive]
        pub enum Pdu<B: Octets = Bytes> {
            $($(#[$bdoc])* $bvar($bty<B>),)*
            $($(#[$rdoc])* $rvar($rty<B>),)*
            $($(#[$edoc])* $evar,)*
            /// A `command_id` SMPP 3.4 does not define, with its raw body. A session answers a
            /// request of this kind with `generic_nack` / `ESME_RINVCMDID`.
            Unknown {
                /// The `command_id` received.
                command_id: CommandId,
                /// The body octets, unparsed.
                body: B,
            },
        }

        impl<B: Octets> Pdu<B> {
            /// The `command_id` of this operation.
            pub fn command_id(&self) -> CommandId {
                match self {
                    $(Self::$bvar(_) => CommandId::$bid,)*
                    $(Self::$rvar(_) => CommandId::$rid,)*
                    $(Self::$evar => CommandId::$eid,)*
                    Self::Unknown { command_id, .. } => *command_id,
                }
            }

            #[inline(always)]
            fn decode_body<'a, S: Source<'a, Out = B>>(
                command_id: CommandId,
                r: &mut Reader<'a, S>,
            ) -> Result<Self, DecodeError> {
                let pdu = match command_id {
                    $(CommandId::$bid => Self::$bvar(Body::decode_fields(r)?),)*
                    $(CommandId::$rid => Self::$rvar(decode_optional(r)?),)*
                    $(CommandId::$eid => Self::$evar,)*
                    _ => return Ok(Self::Unknown { command_id, body: r.body() }),
                };
                r.finish()?;
                Ok(pdu)
            }

            fn body_len(&self, status: CommandStatus) -> usize {
                match self {
                    $(Self::$bvar(b) => b.encoded_len(),)*
                    $(Self::$rvar(b) => if omits_body(b, status) { 0 } else { b.encoded_len() },)*
                    $(Self::$evar => 0,)*
                    Self::Unknown { body, .. } => body.as_ref().len(),
                }
            }

            fn encode_body(&self, status: CommandStatus, dst: &mut BytesMut) {
                match self {
                    $(Self::$bvar(b) => b.encode(dst),)*
                    $(Self::$rvar(b) => if !omits_body(b, status) { b.encode(dst) },)*
                    $(Self::$evar => {})*
                    Self::Unknown { body, .. } => dst.put_slice(body.as_ref()),
                }
            }
        }
    };
}

pdus! {
    bodies {
        /// bind_transmitter (§4.1.1).
        BindTransmitter(Bind) = BIND_TRANSMITTER,
        /// bind_receiver (§4.1.3).
        BindReceiver(Bind) = BIND_RECEIVER,
        /// bind_transceiver (§4.1.5).
        BindTransceiver(Bind) = BIND_TRANSCEIVER,
        /// outbind (§4.1.7).
        Outbind(Outbind) = OUTBIND,
        /// submit_sm (§4.4.1).
        SubmitSm(SubmitSm) = SUBMIT_SM,
        /// submit_multi (§4.5.1).
        SubmitMulti(SubmitMulti) = SUBMIT_MULTI,
        /// deliver_sm (§4.6.1).
        DeliverSm(DeliverSm) = DELIVER_SM,
        /// data_sm (§4.7.1).
        DataSm(DataSm) = DATA_SM,
        /// query_sm (§4.8.1).
        QuerySm(QuerySm) = QUERY_SM,
        /// cancel_sm (§4.9.1).
        CancelSm(CancelSm) = CANCEL_SM,
        /// replace_sm (§4.10.1).
        ReplaceSm(ReplaceSm) = REPLACE_SM,
        /// alert_notification (§4.12.1).
        AlertNotification(AlertNotification) = ALERT_NOTIFICATION,
    }
    responses {
        /// bind_transmitter_resp (§4.1.2).
        BindTransmitterResp(BindResp) = BIND_TRANSMITTER_RESP,
        /// bind_receiver_resp (§4.1.4).
        BindReceiverResp(BindResp) = BIND_RECEIVER_RESP,
        /// bind_transceiver_resp (§4.1.6).
        BindTransceiverResp(BindResp) = BIND_TRANSCEIVER_RESP,
        /// submit_sm_resp (§4.4.2).
        SubmitSmResp(SubmitSmResp) = SUBMIT_SM_RESP,
        /// submit_multi_resp (§4.5.2).
        SubmitMultiResp(SubmitMultiResp) = SUBMIT_MULTI_RESP,
        /// deliver_sm_resp (§4.6.2).
        DeliverSmResp(DeliverSmResp) = DELIVER_SM_RESP,
        /// data_sm_resp (§4.7.2).
        DataSmResp(DataSmResp) = DATA_SM_RESP,
        /// query_sm_resp (§4.8.2).
        QuerySmResp(QuerySmResp) = QUERY_SM_RESP,
    }
    empty {
        /// unbind (§4.2.1).
        Unbind = UNBIND,
        /// unbind_resp (§4.2.2).
        UnbindResp = UNBIND_RESP,
        /// generic_nack (§4.3.1).
        GenericNack = GENERIC_NACK,
        /// cancel_sm_resp (§4.9.2).
        CancelSmResp = CANCEL_SM_RESP,
        /// replace_sm_resp (§4.10.2).
        ReplaceSmResp = REPLACE_SM_RESP,
        /// enquire_link (§4.11.1).
        EnquireLink = ENQUIRE_LINK,
        /// enquire_link_resp (§4.11.2).
        EnquireLinkResp = ENQUIRE_LINK_RESP,
    }
}

/// The 16-octet PDU header (SMPP 3.4 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Length of the whole PDU, header included.
    pub command_length: u32,
    /// Which operation.
    pub command_id: CommandId,
    /// Outcome, in responses; 0 in requests.
    pub command_status: CommandStatus,
    /// Pairs a response with its request.
    pub sequence_number: u32,
}

impl Header {
    /// Reads a header from the first 16 octets, or `None` if there are fewer.
    #[inline]
    pub fn decode(src: &[u8]) -> Option<Self> {
        let word = |i: usize| -> Option<u32> {
            src.get(i..i + 4)
                .and_then(|w| w.try_into().ok())
                .map(u32::from_be_bytes)
        };
        Some(Self {
            command_length: word(0)?,
            command_id: CommandId(word(4)?),
            command_status: CommandStatus(word(8)?),
            sequence_number: word(12)?,
        })
    }
}

/// A PDU with its header fields: what travels on the wire.
///
/// `Command` (octet strings in `Bytes`, shared with the received frame) is what sessions pass
/// around; `Command<&[u8]>` ([`CommandRef`]) is decoded in place from a buffer by
/// [`Command::decode_borrowed`], for hot paths that read a few fields and move on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Command<B: Octets = Bytes> {
    /// Outcome of the request this responds to; `ESME_ROK` in requests.
    pub command_status: CommandStatus,
    /// Pairs a response with its request (SMPP 3.4 §5.1.4: 0x00000001 to 0x7FFFFFFF).
    pub sequence_number: u32,
    /// The operation.
    pub pdu: Pdu<B>,
}

/// A command decoded in place: its octet strings borrow from the decoded buffer.
pub type CommandRef<'a> = Command<&'a [u8]>;

/// A frame whose header parsed but whose body did not: enough to answer it properly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} (sequence {}): {error}", header.command_id, header.sequence_number)]
pub struct InvalidPdu {
    /// The header as received.
    pub header: Header,
    /// What was wrong with the body.
    pub error: DecodeError,
}

impl InvalidPdu {
    /// The `generic_nack` to answer with: same `sequence_number`, the status for the error.
    pub fn generic_nack(&self) -> Command {
        Command::generic_nack(self.header.sequence_number, self.error.command_status())
    }
}

/// Why a complete buffer did not decode to a [`Command`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The framing is wrong.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The header parsed but the body did not.
    #[error(transparent)]
    Pdu(#[from] InvalidPdu),
}

impl Command {
    /// A command with status `ESME_ROK`.
    pub fn new(sequence_number: u32, pdu: impl Into<Pdu>) -> Self {
        Self {
            command_status: CommandStatus::ESME_ROK,
            sequence_number,
            pdu: pdu.into(),
        }
    }

    /// A command with the given status (for responses).
    pub fn with_status(
        command_status: CommandStatus,
        sequence_number: u32,
        pdu: impl Into<Pdu>,
    ) -> Self {
        Self {
            command_status,
            sequence_number,
            pdu: pdu.into(),
        }
    }

    /// `generic_nack` with a status, for a request that cannot be served.
    pub fn generic_nack(sequence_number: u32, status: CommandStatus) -> Self {
        Self::with_status(status, sequence_number, Pdu::GenericNack)
    }

    /// Decodes a body whose header has been read. The body's octet strings share `body`.
    ///
    /// # Errors
    /// [`InvalidPdu`] naming the field that did not parse.
    pub fn decode(header: Header, body: Bytes) -> Result<Self, InvalidPdu> {
        let mut reader = Reader::new(Shared(&body), &body);
        Self::finish_decode(header, Pdu::decode_body(header.command_id, &mut reader))
    }

    /// Decodes one complete PDU, header included; `frame` must hold exactly `command_length`
    /// octets. For streams use [`SmppCodec`](crate::SmppCodec).
    ///
    /// # Errors
    /// [`ParseError::Frame`] when the length is wrong, [`ParseError::Pdu`] when the body is.
    pub fn from_bytes(frame: Bytes) -> Result<Self, ParseError> {
        let header = check_frame(&frame)?;
        Ok(Self::decode(header, frame.slice(HEADER_LEN..))?)
    }
}

impl<'a> Command<&'a [u8]> {
    /// Decodes a body in place: octet strings borrow from `body`, so nothing is counted,
    /// allocated or copied except the TLV list.
    ///
    /// # Errors
    /// [`InvalidPdu`] naming the field that did not parse.
    #[inline]
    pub fn decode_borrowed(header: Header, body: &'a [u8]) -> Result<Self, InvalidPdu> {
        let mut reader = Reader::new(Borrowed, body);
        Self::finish_decode(header, Pdu::decode_body(header.command_id, &mut reader))
    }

    /// [`Command::from_bytes`] for a borrowed buffer.
    ///
    /// # Errors
    /// As [`Command::from_bytes`].
    #[inline]
    pub fn parse(frame: &'a [u8]) -> Result<Self, ParseError> {
        let header = check_frame(frame)?;
        Ok(Self::decode_borrowed(header, &frame[HEADER_LEN..])?)
    }

    /// An owned copy (re-encoded and decoded once into one shared buffer).
    ///
    /// # Errors
    /// Never for a command that was decoded: it re-encodes to a valid frame.
    pub fn into_owned(self) -> Result<Command, ParseError> {
        Command::from_bytes(self.to_bytes())
    }
}

#[inline]
fn check_frame(frame: &[u8]) -> Result<Header, FrameError> {
    let actual = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    let header = Header::decode(frame).ok_or(FrameError::LengthTooShort(actual))?;
    if (header.command_length as usize) < HEADER_LEN {
        return Err(FrameError::LengthTooShort(header.command_length));
    }
    if header.command_length != actual {
        return Err(FrameError::LengthMismatch {
            length: header.command_length,
            actual,
        });
    }
    Ok(header)
}

impl<B: Octets> Command<B> {
    #[inline(always)]
    fn finish_decode(header: Header, pdu: Result<Pdu<B>, DecodeError>) -> Result<Self, InvalidPdu> {
        match pdu {
            Ok(pdu) => Ok(Self {
                command_status: header.command_status,
                sequence_number: header.sequence_number,
                pdu,
            }),
            Err(error) => Err(InvalidPdu { header, error }),
        }
    }

    /// The `command_id`.
    pub fn command_id(&self) -> CommandId {
        self.pdu.command_id()
    }

    /// The octets this command takes on the wire, header included.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.pdu.body_len(self.command_status)
    }

    /// Appends the command's wire form to `dst`, reserving space once.
    pub fn encode(&self, dst: &mut BytesMut) {
        let len = self.encoded_len();
        dst.reserve(len);
        // Bodies are bounded (254-octet messages, 65,535-octet TLVs, 254 destinations), so
        // any PDU fits u32; the maximum frame length is the codec's business, not ours.
        dst.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
        dst.put_u32(self.command_id().0);
        dst.put_u32(self.command_status.0);
        dst.put_u32(self.sequence_number);
        self.pdu.encode_body(self.command_status, dst);
    }

    /// The command's wire form.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }

    /// Whether this is a request the receiver must answer (not a response, not outbind or
    /// alert_notification, which have none).
    pub fn expects_response(&self) -> bool {
        self.command_id().response_id().is_some()
    }
}

macro_rules! from_bodies {
    ($($ty:ident => $var:ident,)*) => {
        $(impl<B: Octets> From<$ty<B>> for Pdu<B> {
            fn from(body: $ty<B>) -> Self {
                Self::$var(body)
            }
        })*
    };
}

from_bodies! {
    Outbind => Outbind,
    SubmitSm => SubmitSm,
    SubmitSmResp => SubmitSmResp,
    SubmitMulti => SubmitMulti,
    SubmitMultiResp => SubmitMultiResp,
    DeliverSm => DeliverSm,
    DeliverSmResp => DeliverSmResp,
    DataSm => DataSm,
    DataSmResp => DataSmResp,
    QuerySm => QuerySm,
    QuerySmResp => QuerySmResp,
    CancelSm => CancelSm,
    ReplaceSm => ReplaceSm,
    AlertNotification => AlertNotification,
}
