//! data_sm (SMPP 3.4 §4.7) and alert_notification (§4.12).

use crate::tlv::Tlvs;
use crate::types::COctetString;

body! {
    /// data_sm (SMPP 3.4 §4.7.1): a message whose user data travels in `message_payload`.
    pub struct DataSm {
        /// The SMS application service (max 6 with NUL).
        service_type: COctetString<6, B>,
        /// Type of number of `source_addr`.
        source_addr_ton: u8,
        /// Numbering plan of `source_addr`.
        source_addr_npi: u8,
        /// Originator address (max 65 with NUL).
        source_addr: COctetString<65, B>,
        /// Type of number of `destination_addr`.
        dest_addr_ton: u8,
        /// Numbering plan of `destination_addr`.
        dest_addr_npi: u8,
        /// Recipient address (max 65 with NUL).
        destination_addr: COctetString<65, B>,
        /// Message mode and type (SMPP 3.4 §5.2.12).
        esm_class: u8,
        /// Whether a delivery receipt is requested.
        registered_delivery: u8,
        /// Encoding of the payload.
        data_coding: u8,
        /// Optional parameters, usually `message_payload`.
        tlvs: Tlvs<B>,
    }
}

body! {
    /// data_sm_resp (SMPP 3.4 §4.7.2).
    pub struct DataSmResp {
        /// The SMSC's id for the message (max 65 with NUL).
        message_id: COctetString<65, B>,
        /// Optional parameters (`delivery_failure_reason`, `network_error_code`, …).
        tlvs: Tlvs<B>,
    }
}

body! {
    /// alert_notification (SMPP 3.4 §4.12.1): a mobile has become available.
    pub struct AlertNotification {
        /// Type of number of `source_addr`.
        source_addr_ton: u8,
        /// Numbering plan of `source_addr`.
        source_addr_npi: u8,
        /// The mobile that became available (max 65 with NUL).
        source_addr: COctetString<65, B>,
        /// Type of number of `esme_addr`.
        esme_addr_ton: u8,
        /// Numbering plan of `esme_addr`.
        esme_addr_npi: u8,
        /// The ESME that asked to be alerted (max 65 with NUL).
        esme_addr: COctetString<65, B>,
        /// Optional `ms_availability_status`.
        tlvs: Tlvs<B>,
    }
}
