//! query_sm (SMPP 3.4 §4.8), cancel_sm (§4.9) and replace_sm (§4.10).

use crate::types::{COctetString, ShortMessage, SmppTime};

body! {
    /// query_sm (SMPP 3.4 §4.8.1): the state of a previously submitted message.
    pub struct QuerySm {
        /// The SMSC's id of the message (max 65 with NUL).
        message_id: COctetString<65, B>,
        /// Type of number of `source_addr`.
        source_addr_ton: u8,
        /// Numbering plan of `source_addr`.
        source_addr_npi: u8,
        /// The originator used at submission (max 21 with NUL).
        source_addr: COctetString<21, B>,
    }
}

body! {
    /// query_sm_resp (SMPP 3.4 §4.8.2).
    pub struct QuerySmResp {
        /// The SMSC's id of the message (max 65 with NUL).
        message_id: COctetString<65, B>,
        /// When the message reached its final state (empty, or 16 characters).
        final_date: SmppTime<B>,
        /// Its state (SMPP 3.4 §5.2.28): 2 DELIVERED, 5 UNDELIVERABLE, …
        message_state: u8,
        /// Network error code, when there is one.
        error_code: u8,
    }
}

body! {
    /// cancel_sm (SMPP 3.4 §4.9.1): cancel one pending message, or all pending messages from a
    /// source to a destination.
    pub struct CancelSm {
        /// Service type of the messages to cancel (max 6 with NUL).
        service_type: COctetString<6, B>,
        /// The SMSC's id of the message, or empty (max 65 with NUL).
        message_id: COctetString<65, B>,
        /// Type of number of `source_addr`.
        source_addr_ton: u8,
        /// Numbering plan of `source_addr`.
        source_addr_npi: u8,
        /// Originator (max 21 with NUL).
        source_addr: COctetString<21, B>,
        /// Type of number of `destination_addr`.
        dest_addr_ton: u8,
        /// Numbering plan of `destination_addr`.
        dest_addr_npi: u8,
        /// Recipient (max 21 with NUL).
        destination_addr: COctetString<21, B>,
    }
}

body! {
    /// replace_sm (SMPP 3.4 §4.10.1): replace a pending message.
    pub struct ReplaceSm {
        /// The SMSC's id of the message (max 65 with NUL).
        message_id: COctetString<65, B>,
        /// Type of number of `source_addr`.
        source_addr_ton: u8,
        /// Numbering plan of `source_addr`.
        source_addr_npi: u8,
        /// Originator used at submission (max 21 with NUL).
        source_addr: COctetString<21, B>,
        /// New scheduled delivery time (empty, or 16 characters).
        schedule_delivery_time: SmppTime<B>,
        /// New expiry (empty, or 16 characters).
        validity_period: SmppTime<B>,
        /// Whether a delivery receipt is requested.
        registered_delivery: u8,
        /// Index of a canned message, 0 for none.
        sm_default_msg_id: u8,
        /// The new user data (max 254 octets).
        short_message: ShortMessage<B>,
    }
}
