//! Errors of the codec. Decode errors are small and `Copy` (a field name and numbers), because
//! they sit on the per-PDU path and a malicious peer can make many of them.

use std::io;

use crate::command_status::CommandStatus;

/// Why a value cannot be put in a bounded SMPP field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Longer than the field allows (for a C-Octet String, `max` excludes the NUL).
    #[error("value is {actual} octets, the field allows at most {max}")]
    TooLong {
        /// Largest allowed length.
        max: usize,
        /// Length given.
        actual: usize,
    },
    /// A C-Octet String cannot contain NUL: it would end the string early on the wire.
    #[error("value contains a NUL octet")]
    ContainsNul,
    /// Not in the field's format (a time field that is not `YYMMDDhhmmsstnnp`, SMPP 3.4 §7.1.1).
    #[error("value is not in the field's format")]
    InvalidFormat,
    /// `submit_multi` allows 1 to 254 destinations (SMPP 3.4 §4.5.1 `number_of_dests`).
    #[error("{actual} destinations; submit_multi allows 1 to 254")]
    TooManyItems {
        /// Count given.
        actual: usize,
    },
}

/// What was wrong with one field of a PDU body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The body ended inside this field.
    #[error("body ends inside the field")]
    Truncated,
    /// No NUL within the field's maximum size (SMPP 3.4 §3.1 C-Octet String).
    #[error("no NUL terminator within {max} octets")]
    MissingNul {
        /// The field's maximum size including the NUL.
        max: u32,
    },
    /// A length-prefixed value longer than the spec allows (`sm_length` > 254, say).
    #[error("length {actual} exceeds the maximum {max}")]
    TooLong {
        /// Largest allowed value.
        max: u32,
        /// Value found.
        actual: u32,
    },
    /// A value outside the set the spec allows (a `dest_flag` other than 1 or 2, say).
    #[error("invalid value {value:#x}")]
    InvalidValue {
        /// The value found.
        value: u32,
    },
    /// A fixed-format field of the wrong size (a date that is neither empty nor 16 characters).
    #[error("invalid length {actual}")]
    InvalidLength {
        /// Length found.
        actual: u32,
    },
    /// Octets left after the last field of a PDU that carries no optional parameters.
    #[error("{count} unexpected octets after the last field")]
    TrailingBytes {
        /// How many.
        count: u32,
    },
}

/// A PDU body that does not parse: which field, where, and what was wrong.
///
/// The header parsed, so the session still knows the `sequence_number` and can answer with
/// `generic_nack` and [`DecodeError::command_status`] without closing the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` at body offset {offset}: {kind}")]
pub struct DecodeError {
    /// The spec's name of the field (`"destination_addr"`, `"tlv"`).
    pub field: &'static str,
    /// Offset of the field from the start of the body (after the 16-octet header).
    pub offset: u32,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// The `command_status` to answer with (SMPP 3.4 §5.1.3): the field-specific code where the
    /// spec has one, else `ESME_RINVCMDLEN` for a body whose length does not add up.
    pub fn command_status(&self) -> CommandStatus {
        match self.field {
            "service_type" => CommandStatus::ESME_RINVSERTYP,
            "source_addr" => CommandStatus::ESME_RINVSRCADR,
            "destination_addr" | "dl_name" => CommandStatus::ESME_RINVDSTADR,
            "system_id" => CommandStatus::ESME_RINVSYSID,
            "password" => CommandStatus::ESME_RINVPASWD,
            "system_type" => CommandStatus::ESME_RINVSYSTYP,
            "schedule_delivery_time" => CommandStatus::ESME_RINVSCHED,
            "validity_period" => CommandStatus::ESME_RINVEXPIRY,
            "message_id" => CommandStatus::ESME_RINVMSGID,
            "sm_length" | "short_message" => CommandStatus::ESME_RINVMSGLEN,
            "number_of_dests" => CommandStatus::ESME_RINVNUMDESTS,
            "dest_flag" => CommandStatus::ESME_RINVDESTFLAG,
            "tlv" => CommandStatus::ESME_RINVOPTPARSTREAM,
            _ => CommandStatus::ESME_RINVCMDLEN,
        }
    }
}

/// A framing error: the announced `command_length` cannot be right, so the byte stream can no
/// longer be trusted and the session closes the connection (SMPP 3.4 §2.10 leaves recovery from
/// a corrupt stream to the transport).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// `command_length` is below the 16-octet header.
    #[error("command_length {0} is shorter than the 16-octet header")]
    LengthTooShort(u32),
    /// `command_length` is over the configured maximum; nothing was allocated for it.
    #[error("command_length {length} exceeds the maximum {max}")]
    LengthTooLong {
        /// The length announced.
        length: u32,
        /// The configured maximum.
        max: u32,
    },
    /// A buffer said to hold one PDU holds a different number of octets than it announces.
    #[error("command_length {length} but the buffer holds {actual} octets")]
    LengthMismatch {
        /// The length announced.
        length: u32,
        /// The octets present.
        actual: u32,
    },
}

/// Error of [`SmppCodec`](crate::SmppCodec): a framing error or a transport error. Either ends the
/// stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The framing is corrupt.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_map_to_field_statuses() {
        let err = |field| DecodeError {
            field,
            offset: 0,
            kind: DecodeErrorKind::Truncated,
        };
        assert_eq!(
            err("destination_addr").command_status(),
            CommandStatus::ESME_RINVDSTADR
        );
        assert_eq!(
            err("sm_length").command_status(),
            CommandStatus::ESME_RINVMSGLEN
        );
        assert_eq!(
            err("tlv").command_status(),
            CommandStatus::ESME_RINVOPTPARSTREAM
        );
        assert_eq!(
            err("esm_class").command_status(),
            CommandStatus::ESME_RINVCMDLEN
        );
        assert_eq!(std::mem::size_of::<DecodeError>(), 32);
    }
}
