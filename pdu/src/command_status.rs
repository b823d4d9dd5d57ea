//! `command_status` values (SMPP 3.4 §5.1.3, Table 5-2).
//!
//! An open set: a peer may send any 32-bit value (vendor codes live in 0x400–0x4FF), so the type
//! is a newtype over `u32` with named constants rather than a closed enum.

use std::fmt;

/// The `command_status` header field: the outcome of a request, set in its response.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CommandStatus(pub u32);

macro_rules! statuses {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $spec:literal, $text:literal;)*) => {
        impl CommandStatus {
            $(
                #[doc = concat!("`", $spec, "` (", stringify!($value), "): ", $text, ".")]
                $(#[$doc])*
                pub const $name: CommandStatus = CommandStatus($value);
            )*

            /// Every status SMPP 3.4 names, in numeric order.
            pub const ALL: &'static [CommandStatus] = &[$(CommandStatus::$name),*];

            /// The spec's name (`"ESME_RTHROTTLED"`), or `None` for a value it does not name.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($spec),)*
                    _ => None,
                }
            }

            /// The spec's description, or a description of the reserved range the value is in.
            pub const fn description(self) -> &'static str {
                match self.0 {
                    $($value => $text,)*
                    0x100..=0x3FF => "Reserved for SMPP extension",
                    0x400..=0x4FF => "Reserved for SMSC vendor specific errors",
                    _ => "Reserved",
                }
            }
        }
    };
}

statuses! {
    ESME_ROK = 0x0000_0000, "ESME_ROK", "No Error";
    ESME_RINVMSGLEN = 0x0000_0001, "ESME_RINVMSGLEN", "Message Length is invalid";
    ESME_RINVCMDLEN = 0x0000_0002, "ESME_RINVCMDLEN", "Command Length is invalid";
    ESME_RINVCMDID = 0x0000_0003, "ESME_RINVCMDID", "Invalid Command ID";
    ESME_RINVBNDSTS = 0x0000_0004, "ESME_RINVBNDSTS", "Incorrect BIND Status for given command";
    ESME_RALYBND = 0x0000_0005, "ESME_RALYBND", "ESME Already in Bound State";
    ESME_RINVPRTFLG = 0x0000_0006, "ESME_RINVPRTFLG", "Invalid Priority Flag";
    ESME_RINVREGDLVFLG = 0x0000_0007, "ESME_RINVREGDLVFLG", "Invalid Registered Delivery Flag";
    ESME_RSYSERR = 0x0000_0008, "ESME_RSYSERR", "System Error";
    ESME_RINVSRCADR = 0x0000_000A, "ESME_RINVSRCADR", "Invalid Source Address";
    ESME_RINVDSTADR = 0x0000_000B, "ESME_RINVDSTADR", "Invalid Dest Addr";
    ESME_RINVMSGID = 0x0000_000C, "ESME_RINVMSGID", "Message ID is invalid";
    ESME_RBINDFAIL = 0x0000_000D, "ESME_RBINDFAIL", "Bind Failed";
    ESME_RINVPASWD = 0x0000_000E, "ESME_RINVPASWD", "Invalid Password";
    ESME_RINVSYSID = 0x0000_000F, "ESME_RINVSYSID", "Invalid System ID";
    ESME_RCANCELFAIL = 0x0000_0011, "ESME_RCANCELFAIL", "Cancel SM Failed";
    ESME_RREPLACEFAIL = 0x0000_0013, "ESME_RREPLACEFAIL", "Replace SM Failed";
    ESME_RMSGQFUL = 0x0000_0014, "ESME_RMSGQFUL", "Message Queue Full";
    ESME_RINVSERTYP = 0x0000_0015, "ESME_RINVSERTYP", "Invalid Service Type";
    ESME_RINVNUMDESTS = 0x0000_0033, "ESME_RINVNUMDESTS", "Invalid number of destinations";
    ESME_RINVDLNAME = 0x0000_0034, "ESME_RINVDLNAME", "Invalid Distribution List name";
    ESME_RINVDESTFLAG = 0x0000_0040, "ESME_RINVDESTFLAG", "Destination flag is invalid (submit_multi)";
    ESME_RINVSUBREP = 0x0000_0042, "ESME_RINVSUBREP", "Invalid 'submit with replace' request (i.e. submit_sm with replace_if_present_flag set)";
    ESME_RINVESMCLASS = 0x0000_0043, "ESME_RINVESMCLASS", "Invalid esm_class field data";
    ESME_RCNTSUBDL = 0x0000_0044, "ESME_RCNTSUBDL", "Cannot Submit to Distribution List";
    ESME_RSUBMITFAIL = 0x0000_0045, "ESME_RSUBMITFAIL", "submit_sm or submit_multi failed";
    ESME_RINVSRCTON = 0x0000_0048, "ESME_RINVSRCTON", "Invalid Source address TON";
    ESME_RINVSRCNPI = 0x0000_0049, "ESME_RINVSRCNPI", "Invalid Source address NPI";
    ESME_RINVDSTTON = 0x0000_0050, "ESME_RINVDSTTON", "Invalid Destination address TON";
    ESME_RINVDSTNPI = 0x0000_0051, "ESME_RINVDSTNPI", "Invalid Destination address NPI";
    ESME_RINVSYSTYP = 0x0000_0053, "ESME_RINVSYSTYP", "Invalid system_type field";
    ESME_RINVREPFLAG = 0x0000_0054, "ESME_RINVREPFLAG", "Invalid replace_if_present flag";
    ESME_RINVNUMMSGS = 0x0000_0055, "ESME_RINVNUMMSGS", "Invalid number of messages";
    ESME_RTHROTTLED = 0x0000_0058, "ESME_RTHROTTLED", "Throttling error (ESME has exceeded allowed message limits)";
    ESME_RINVSCHED = 0x0000_0061, "ESME_RINVSCHED", "Invalid Scheduled Delivery Time";
    ESME_RINVEXPIRY = 0x0000_0062, "ESME_RINVEXPIRY", "Invalid message validity period (Expiry time)";
    ESME_RINVDFTMSGID = 0x0000_0063, "ESME_RINVDFTMSGID", "Predefined Message Invalid or Not Found";
    ESME_RX_T_APPN = 0x0000_0064, "ESME_RX_T_APPN", "ESME Receiver Temporary App Error Code";
    ESME_RX_P_APPN = 0x0000_0065, "ESME_RX_P_APPN", "ESME Receiver Permanent App Error Code";
    ESME_RX_R_APPN = 0x0000_0066, "ESME_RX_R_APPN", "ESME Receiver Reject Message Error Code";
    ESME_RQUERYFAIL = 0x0000_0067, "ESME_RQUERYFAIL", "query_sm request failed";
    ESME_RINVOPTPARSTREAM = 0x0000_00C0, "ESME_RINVOPTPARSTREAM", "Error in the optional part of the PDU Body";
    ESME_ROPTPARNOTALLWD = 0x0000_00C1, "ESME_ROPTPARNOTALLWD", "Optional Parameter not allowed";
    ESME_RINVPARLEN = 0x0000_00C2, "ESME_RINVPARLEN", "Invalid Parameter Length";
    ESME_RMISSINGOPTPARAM = 0x0000_00C3, "ESME_RMISSINGOPTPARAM", "Expected Optional Parameter missing";
    ESME_RINVOPTPARAMVAL = 0x0000_00C4, "ESME_RINVOPTPARAMVAL", "Invalid Optional Parameter Value";
    ESME_RDELIVERYFAILURE = 0x0000_00FE, "ESME_RDELIVERYFAILURE", "Delivery Failure (used for data_sm_resp)";
    ESME_RUNKNOWNERR = 0x0000_00FF, "ESME_RUNKNOWNERR", "Unknown Error";
}

impl CommandStatus {
    /// Whether this is `ESME_ROK`.
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }
}

impl From<u32> for CommandStatus {
    fn from(value: u32) -> Self {
        Self(value)
    }
}

impl From<CommandStatus> for u32 {
    fn from(value: CommandStatus) -> Self {
        value.0
    }
}

impl fmt::Debug for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "CommandStatus({:#010x})", self.0),
        }
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({:#x}): {}", self.0, self.description()),
            None => write!(f, "{:#010x}: {}", self.0, self.description()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptions_come_from_the_spec_table() {
        assert_eq!(CommandStatus::ESME_RTHROTTLED.0, 0x58);
        assert_eq!(CommandStatus(0x58).name(), Some("ESME_RTHROTTLED"));
        assert_eq!(CommandStatus(0x14).name(), Some("ESME_RMSGQFUL"));
        assert_eq!(
            CommandStatus(0xC2).description(),
            "Invalid Parameter Length"
        );
        assert_eq!(CommandStatus(0x09).name(), None);
        assert_eq!(
            CommandStatus(0x401).description(),
            "Reserved for SMSC vendor specific errors"
        );
        assert_eq!(CommandStatus::ALL.len(), 48);
        assert!(CommandStatus::ALL.windows(2).all(|w| w[0] < w[1]));
    }
}
