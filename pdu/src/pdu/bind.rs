//! Session set-up: bind_transmitter / bind_receiver / bind_transceiver (SMPP 3.4 §4.1) and
//! outbind (§4.1.7).

use crate::tlv::Tlvs;
use crate::types::COctetString;

body! {
    /// The body of bind_transmitter, bind_receiver and bind_transceiver (SMPP 3.4 §4.1.1,
    /// §4.1.3, §4.1.5); the three differ only in `command_id`.
    pub struct Bind {
        /// Identifies the ESME to the SMSC (max 16 with NUL).
        system_id: COctetString<16, B>,
        /// The ESME's password (max 9 with NUL).
        password: COctetString<9, B>,
        /// The type of ESME (max 13 with NUL); often empty.
        system_type: COctetString<13, B>,
        /// SMPP version supported by the ESME: 0x34 for 3.4.
        interface_version: u8,
        /// Type of number of the ESME address range.
        addr_ton: u8,
        /// Numbering plan of the ESME address range.
        addr_npi: u8,
        /// The addresses served by a receiver, as a regular expression (max 41 with NUL).
        address_range: COctetString<41, B>,
    }
}

body! {
    /// The body of the three bind responses (SMPP 3.4 §4.1.2, §4.1.4, §4.1.6). On an error
    /// status the SMSC may send no body at all; that decodes as the default (empty) body.
    pub struct BindResp {
        /// Identifies the SMSC to the ESME (max 16 with NUL).
        system_id: COctetString<16, B>,
        /// Optional `sc_interface_version`.
        tlvs: Tlvs<B>,
    }
}

body! {
    /// outbind (SMPP 3.4 §4.1.7): the SMSC asks the ESME to bind_receiver back to it.
    pub struct Outbind {
        /// Identifies the SMSC (max 16 with NUL).
        system_id: COctetString<16, B>,
        /// Password for the ESME to check (max 9 with NUL).
        password: COctetString<9, B>,
    }
}
