//! `command_id` values (SMPP 3.4 §5.1.2.1, Table 5-1).

use std::fmt;

/// The `command_id` header field. Open: an unknown value still decodes (to
/// [`Pdu::Unknown`](crate::Pdu::Unknown)) so the session can answer `generic_nack` with
/// `ESME_RINVCMDID` instead of dropping the link.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u32);

/// The bit that marks a response `command_id` (SMPP 3.4 §5.1.2.1).
const RESPONSE_BIT: u32 = 0x8000_0000;

macro_rules! command_ids {
    ($($name:ident = $value:literal, $spec:literal;)*) => {
        impl CommandId {
            $(
                #[doc = concat!("`", $spec, "` (", stringify!($value), ").")]
                pub const $name: CommandId = CommandId($value);
            )*

            /// The spec's name (`"submit_sm"`), or `None` for a value SMPP 3.4 does not define.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($spec),)*
                    _ => None,
                }
            }
        }
    };
}

command_ids! {
    GENERIC_NACK = 0x8000_0000, "generic_nack";
    BIND_RECEIVER = 0x0000_0001, "bind_receiver";
    BIND_RECEIVER_RESP = 0x8000_0001, "bind_receiver_resp";
    BIND_TRANSMITTER = 0x0000_0002, "bind_transmitter";
    BIND_TRANSMITTER_RESP = 0x8000_0002, "bind_transmitter_resp";
    QUERY_SM = 0x0000_0003, "query_sm";
    QUERY_SM_RESP = 0x8000_0003, "query_sm_resp";
    SUBMIT_SM = 0x0000_0004, "submit_sm";
    SUBMIT_SM_RESP = 0x8000_0004, "submit_sm_resp";
    DELIVER_SM = 0x0000_0005, "deliver_sm";
    DELIVER_SM_RESP = 0x8000_0005, "deliver_sm_resp";
    UNBIND = 0x0000_0006, "unbind";
    UNBIND_RESP = 0x8000_0006, "unbind_resp";
    REPLACE_SM = 0x0000_0007, "replace_sm";
    REPLACE_SM_RESP = 0x8000_0007, "replace_sm_resp";
    CANCEL_SM = 0x0000_0008, "cancel_sm";
    CANCEL_SM_RESP = 0x8000_0008, "cancel_sm_resp";
    BIND_TRANSCEIVER = 0x0000_0009, "bind_transceiver";
    BIND_TRANSCEIVER_RESP = 0x8000_0009, "bind_transceiver_resp";
    OUTBIND = 0x0000_000B, "outbind";
    ENQUIRE_LINK = 0x0000_0015, "enquire_link";
    ENQUIRE_LINK_RESP = 0x8000_0015, "enquire_link_resp";
    SUBMIT_MULTI = 0x0000_0021, "submit_multi";
    SUBMIT_MULTI_RESP = 0x8000_0021, "submit_multi_resp";
    ALERT_NOTIFICATION = 0x0000_0102, "alert_notification";
    DATA_SM = 0x0000_0103, "data_sm";
    DATA_SM_RESP = 0x8000_0103, "data_sm_resp";
}

impl CommandId {
    /// Whether this id is a response (its high bit is set; `generic_nack` is one).
    pub const fn is_response(self) -> bool {
        self.0 & RESPONSE_BIT != 0
    }

    /// The response id for a request id (`submit_sm` → `submit_sm_resp`). `outbind` and
    /// `alert_notification` have no response in SMPP 3.4; for them, and for responses, `None`.
    pub const fn response_id(self) -> Option<CommandId> {
        match self {
            Self::OUTBIND | Self::ALERT_NOTIFICATION => None,
            _ if self.is_response() => None,
            _ => Some(CommandId(self.0 | RESPONSE_BIT)),
        }
    }
}

impl fmt::Debug for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "CommandId({:#010x})", self.0),
        }
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_ids_set_the_high_bit() {
        assert_eq!(
            CommandId::SUBMIT_SM.response_id(),
            Some(CommandId::SUBMIT_SM_RESP)
        );
        assert_eq!(
            CommandId::DATA_SM.response_id(),
            Some(CommandId::DATA_SM_RESP)
        );
        assert_eq!(CommandId::OUTBIND.response_id(), None);
        assert_eq!(CommandId::ALERT_NOTIFICATION.response_id(), None);
        assert_eq!(CommandId::SUBMIT_SM_RESP.response_id(), None);
        assert!(CommandId::GENERIC_NACK.is_response());
        assert!(!CommandId::ENQUIRE_LINK.is_response());
        assert_eq!(CommandId(0x0000_0104).name(), None);
    }
}
