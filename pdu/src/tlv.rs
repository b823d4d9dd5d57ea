//! Optional parameters (TLVs), SMPP 3.4 §3.2.4 and §5.3.
//!
//! TLVs are kept as they arrived: a list of `(tag, value)` pairs in wire order, the value shared
//! with the received frame. Re-encoding writes exactly what was read, so unknown and vendor tags
//! (and known tags with odd lengths) pass through unchanged. Typed accessors read a known tag on
//! demand and return `None` when it is absent or its length is not the spec's.

use bytes::{BufMut, Bytes, BytesMut};

use crate::types::Octets;

/// One optional parameter: a 16-bit tag and its value (the length is the value's length).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tlv<B = Bytes> {
    /// The `parameter tag` (SMPP 3.4 §5.3.2).
    pub tag: u16,
    /// The value octets, without tag and length; at most 65,535 are encoded.
    pub value: B,
}

impl<B: Octets> Tlv<B> {
    /// Octets the TLV takes on the wire: tag, length and value.
    pub fn encoded_len(&self) -> usize {
        4 + self.wire_value().len()
    }

    /// The value as encoded: a value over 65,535 octets (possible only when built by hand) is cut
    /// there, because the length field is 16 bits and a frame must never disagree with itself.
    pub(crate) fn wire_value(&self) -> &[u8] {
        let value = self.value.as_ref();
        &value[..value.len().min(usize::from(u16::MAX))]
    }
}

/// Tag values of SMPP 3.4 §5.3.2 (and the SMPP 5.0 tags a 3.4 peer may still send).
pub mod tag {
    macro_rules! tags {
        ($($name:ident = $value:literal;)*) => {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($value), ").")]
                #[allow(non_upper_case_globals)]
                pub const $name: u16 = $value;
            )*
            /// The spec's name of a tag, or `None` for one it does not define.
            pub const fn name(tag: u16) -> Option<&'static str> {
                match tag {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        };
    }

    tags! {
        dest_addr_subunit = 0x0005;
        dest_network_type = 0x0006;
        dest_bearer_type = 0x0007;
        dest_telematics_id = 0x0008;
        source_addr_subunit = 0x000D;
        source_network_type = 0x000E;
        source_bearer_type = 0x000F;
        source_telematics_id = 0x0010;
        qos_time_to_live = 0x0017;
        payload_type = 0x0019;
        additional_status_info_text = 0x001D;
        receipted_message_id = 0x001E;
        ms_msg_wait_facilities = 0x0030;
        privacy_indicator = 0x0201;
        source_subaddress = 0x0202;
        dest_subaddress = 0x0203;
        user_message_reference = 0x0204;
        user_response_code = 0x0205;
        source_port = 0x020A;
        destination_port = 0x020B;
        sar_msg_ref_num = 0x020C;
        language_indicator = 0x020D;
        sar_total_segments = 0x020E;
        sar_segment_seqnum = 0x020F;
        sc_interface_version = 0x0210;
        callback_num_pres_ind = 0x0302;
        callback_num_atag = 0x0303;
        number_of_messages = 0x0304;
        callback_num = 0x0381;
        dpf_result = 0x0420;
        set_dpf = 0x0421;
        ms_availability_status = 0x0422;
        network_error_code = 0x0423;
        message_payload = 0x0424;
        delivery_failure_reason = 0x0425;
        more_messages_to_send = 0x0426;
        message_state = 0x0427;
        congestion_state = 0x0428;
        ussd_service_op = 0x0501;
        display_time = 0x1201;
        sms_signal = 0x1203;
        ms_validity = 0x1204;
        alert_on_message_delivery = 0x130C;
        its_reply_type = 0x1380;
        its_session_info = 0x1383;
    }
}

/// `network_error_code` (SMPP 3.4 §5.3.2.31): the network type and its error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetworkErrorCode {
    /// 1 ANSI-136, 2 IS-95, 3 GSM, 4 reserved, …
    pub network_type: u8,
    /// The network's own error code.
    pub error_code: u16,
}

/// The optional parameters of one PDU, in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tlvs<B = Bytes>(pub Vec<Tlv<B>>);

impl<B> Default for Tlvs<B> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

macro_rules! u8_tlvs {
    ($($(#[$doc:meta])* $get:ident, $set:ident;)*) => {
        impl<B: Octets> Tlvs<B> {
            $(
                $(#[$doc])*
                pub fn $get(&self) -> Option<u8> {
                    self.fixed::<1>(tag::$get).map(|[b]| b)
                }
            )*
        }

        impl Tlvs {
            $(
                #[doc = concat!("Sets `", stringify!($get), "`, replacing any earlier value.")]
                pub fn $set(&mut self, value: u8) {
                    self.set(tag::$get, Bytes::copy_from_slice(&[value]));
                }
            )*
        }
    };
}

macro_rules! u16_tlvs {
    ($($(#[$doc:meta])* $get:ident, $set:ident;)*) => {
        impl<B: Octets> Tlvs<B> {
            $(
                $(#[$doc])*
                pub fn $get(&self) -> Option<u16> {
                    self.fixed::<2>(tag::$get).map(u16::from_be_bytes)
                }
            )*
        }

        impl Tlvs {
            $(
                #[doc = concat!("Sets `", stringify!($get), "`, replacing any earlier value.")]
                pub fn $set(&mut self, value: u16) {
                    self.set(tag::$get, Bytes::copy_from_slice(&value.to_be_bytes()));
                }
            )*
        }
    };
}

macro_rules! octet_tlvs {
    ($($(#[$doc:meta])* $get:ident, $set:ident, $max:literal;)*) => {
        impl<B: Octets> Tlvs<B> {
            $(
                $(#[$doc])*
                pub fn $get(&self) -> Option<&B> {
                    self.get(tag::$get).filter(|v| v.as_ref().len() <= $max)
                }
            )*
        }

        impl Tlvs {
            $(
                #[doc = concat!("Sets `", stringify!($get), "` (at most ", stringify!($max),
                    " octets), replacing any earlier value.")]
                ///
                /// # Errors
                /// When the value is longer than the spec allows.
                pub fn $set(&mut self, value: impl Into<Bytes>) -> Result<(), crate::ValueError> {
                    let value = value.into();
                    if value.len() > $max {
                        return Err(crate::ValueError::TooLong { max: $max, actual: value.len() });
                    }
                    self.set(tag::$get, value);
                    Ok(())
                }
            )*
        }
    };
}

macro_rules! c_string_tlvs {
    ($($(#[$doc:meta])* $get:ident, $set:ident, $max:literal;)*) => {
        impl<B: Octets> Tlvs<B> {
            $(
                $(#[$doc])*
                ///
                /// Returned without its NUL; `None` if absent, unterminated or over the maximum.
                pub fn $get(&self) -> Option<&[u8]> {
                    self.c_string(tag::$get, $max)
                }
            )*
        }

        impl Tlvs {
            $(
                #[doc = concat!("Sets `", stringify!($get), "` (at most ", stringify!($max),
                    " octets with its NUL), replacing any earlier value.")]
                ///
                /// # Errors
                /// When the value is too long or contains NUL.
                pub fn $set(&mut self, value: &[u8]) -> Result<(), crate::ValueError> {
                    self.set_c_string(tag::$get, value, $max)
                }
            )*
        }
    };
}

impl<B: Octets> Tlvs<B> {
    /// No optional parameters.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Octets the TLVs take on the wire.
    pub fn encoded_len(&self) -> usize {
        self.0.iter().map(Tlv::encoded_len).sum()
    }

    /// The value of the first TLV with this tag.
    pub fn get(&self, tag: u16) -> Option<&B> {
        self.0.iter().find(|t| t.tag == tag).map(|t| &t.value)
    }

    /// Removes every TLV with this tag.
    pub fn remove(&mut self, tag: u16) {
        self.0.retain(|t| t.tag != tag);
    }

    /// Iterates the TLVs in wire order.
    pub fn iter(&self) -> std::slice::Iter<'_, Tlv<B>> {
        self.0.iter()
    }

    fn fixed<const N: usize>(&self, tag: u16) -> Option<[u8; N]> {
        self.get(tag)
            .and_then(|v| <[u8; N]>::try_from(v.as_ref()).ok())
    }

    fn c_string(&self, tag: u16, max: usize) -> Option<&[u8]> {
        let value = self.get(tag)?.as_ref();
        match value.split_last() {
            Some((0, text)) if value.len() <= max && !text.contains(&0) => Some(text),
            _ => None,
        }
    }

    /// `qos_time_to_live` (§5.3.2.9): seconds the message stays valid.
    pub fn qos_time_to_live(&self) -> Option<u32> {
        self.fixed::<4>(tag::qos_time_to_live)
            .map(u32::from_be_bytes)
    }

    /// `network_error_code` (§5.3.2.31).
    pub fn network_error_code(&self) -> Option<NetworkErrorCode> {
        self.fixed::<3>(tag::network_error_code)
            .map(|[network_type, hi, lo]| NetworkErrorCode {
                network_type,
                error_code: u16::from_be_bytes([hi, lo]),
            })
    }

    /// `alert_on_message_delivery` (§5.3.2.41): present (with no value) or absent.
    pub fn alert_on_message_delivery(&self) -> bool {
        self.get(tag::alert_on_message_delivery).is_some()
    }
}

impl Tlvs {
    /// Sets a tag's value: replaces the first TLV with this tag, or appends one.
    pub fn set(&mut self, tag: u16, value: Bytes) {
        match self.0.iter_mut().find(|t| t.tag == tag) {
            Some(tlv) => tlv.value = value,
            None => self.0.push(Tlv { tag, value }),
        }
    }

    fn set_c_string(
        &mut self,
        tag: u16,
        value: &[u8],
        max: usize,
    ) -> Result<(), crate::ValueError> {
        if value.len() >= max {
            return Err(crate::ValueError::TooLong {
                max: max - 1,
                actual: value.len(),
            });
        }
        if value.contains(&0) {
            return Err(crate::ValueError::ContainsNul);
        }
        let mut buf = BytesMut::with_capacity(value.len() + 1);
        buf.put_slice(value);
        buf.put_u8(0);
        self.set(tag, buf.freeze());
        Ok(())
    }

    /// Sets `qos_time_to_live`, replacing any earlier value.
    pub fn set_qos_time_to_live(&mut self, seconds: u32) {
        self.set(
            tag::qos_time_to_live,
            Bytes::copy_from_slice(&seconds.to_be_bytes()),
        );
    }

    /// Sets `network_error_code`, replacing any earlier value.
    pub fn set_network_error_code(&mut self, code: NetworkErrorCode) {
        let [hi, lo] = code.error_code.to_be_bytes();
        self.set(
            tag::network_error_code,
            Bytes::copy_from_slice(&[code.network_type, hi, lo]),
        );
    }

    /// Sets or clears `alert_on_message_delivery`.
    pub fn set_alert_on_message_delivery(&mut self, on: bool) {
        if on {
            self.set(tag::alert_on_message_delivery, Bytes::new());
        } else {
            self.remove(tag::alert_on_message_delivery);
        }
    }
}

u8_tlvs! {
    /// `dest_addr_subunit` (§5.3.2.1): the subcomponent of the destination MS.
    dest_addr_subunit, set_dest_addr_subunit;
    /// `source_addr_subunit` (§5.3.2.2).
    source_addr_subunit, set_source_addr_subunit;
    /// `dest_network_type` (§5.3.2.3).
    dest_network_type, set_dest_network_type;
    /// `source_network_type` (§5.3.2.4).
    source_network_type, set_source_network_type;
    /// `dest_bearer_type` (§5.3.2.5).
    dest_bearer_type, set_dest_bearer_type;
    /// `source_bearer_type` (§5.3.2.6).
    source_bearer_type, set_source_bearer_type;
    /// `source_telematics_id` (§5.3.2.8).
    source_telematics_id, set_source_telematics_id;
    /// `payload_type` (§5.3.2.10): 0 default, 1 WCMP.
    payload_type, set_payload_type;
    /// `ms_msg_wait_facilities` (§5.3.2.13).
    ms_msg_wait_facilities, set_ms_msg_wait_facilities;
    /// `privacy_indicator` (§5.3.2.14): 0 not restricted … 3 secret.
    privacy_indicator, set_privacy_indicator;
    /// `user_response_code` (§5.3.2.18).
    user_response_code, set_user_response_code;
    /// `language_indicator` (§5.3.2.19).
    language_indicator, set_language_indicator;
    /// `sar_total_segments` (§5.3.2.23): parts in the concatenated message (1–255).
    sar_total_segments, set_sar_total_segments;
    /// `sar_segment_seqnum` (§5.3.2.24): this part's number (1–255).
    sar_segment_seqnum, set_sar_segment_seqnum;
    /// `sc_interface_version` (§5.3.2.25): the SMSC's SMPP version, in bind responses.
    sc_interface_version, set_sc_interface_version;
    /// `display_time` (§5.3.2.26).
    display_time, set_display_time;
    /// `ms_validity` (§5.3.2.27).
    ms_validity, set_ms_validity;
    /// `dpf_result` (§5.3.2.28).
    dpf_result, set_dpf_result;
    /// `set_dpf` (§5.3.2.29).
    set_dpf, set_set_dpf;
    /// `ms_availability_status` (§5.3.2.30).
    ms_availability_status, set_ms_availability_status;
    /// `delivery_failure_reason` (§5.3.2.33).
    delivery_failure_reason, set_delivery_failure_reason;
    /// `more_messages_to_send` (§5.3.2.34): 1 when more messages follow.
    more_messages_to_send, set_more_messages_to_send;
    /// `message_state` (§5.3.2.35) as its raw value; 2 is DELIVERED.
    message_state, set_message_state;
    /// `callback_num_pres_ind` (§5.3.2.37).
    callback_num_pres_ind, set_callback_num_pres_ind;
    /// `number_of_messages` (§5.3.2.39).
    number_of_messages, set_number_of_messages;
    /// `its_reply_type` (§5.3.2.42).
    its_reply_type, set_its_reply_type;
    /// `ussd_service_op` (§5.3.2.44).
    ussd_service_op, set_ussd_service_op;
    /// `congestion_state` (SMPP 5.0 §4.8.4.19): 0–100, the peer's load.
    congestion_state, set_congestion_state;
}

u16_tlvs! {
    /// `dest_telematics_id` (§5.3.2.7).
    dest_telematics_id, set_dest_telematics_id;
    /// `user_message_reference` (§5.3.2.17): the ESME's own reference.
    user_message_reference, set_user_message_reference;
    /// `source_port` (§5.3.2.20): application port of the source (WAP, …).
    source_port, set_source_port;
    /// `destination_port` (§5.3.2.21).
    destination_port, set_destination_port;
    /// `sar_msg_ref_num` (§5.3.2.22): reference shared by all parts of one message.
    sar_msg_ref_num, set_sar_msg_ref_num;
    /// `sms_signal` (§5.3.2.40).
    sms_signal, set_sms_signal;
    /// `its_session_info` (§5.3.2.43), as its two octets big-endian.
    its_session_info, set_its_session_info;
}

octet_tlvs! {
    /// `message_payload` (§5.3.2.32): the whole message, instead of `short_message`.
    message_payload, set_message_payload, 65535;
    /// `source_subaddress` (§5.3.2.15), 2–23 octets.
    source_subaddress, set_source_subaddress, 23;
    /// `dest_subaddress` (§5.3.2.16), 2–23 octets.
    dest_subaddress, set_dest_subaddress, 23;
    /// `callback_num` (§5.3.2.36), 4–19 octets.
    callback_num, set_callback_num, 19;
    /// `callback_num_atag` (§5.3.2.38), at most 65 octets.
    callback_num_atag, set_callback_num_atag, 65;
}

c_string_tlvs! {
    /// `receipted_message_id` (§5.3.2.12): the SMSC message id a receipt is about.
    receipted_message_id, set_receipted_message_id, 65;
    /// `additional_status_info_text` (§5.3.2.11): free text about an error.
    additional_status_info_text, set_additional_status_info_text, 256;
}

impl<B> FromIterator<Tlv<B>> for Tlvs<B> {
    fn from_iter<T: IntoIterator<Item = Tlv<B>>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl<'a, B> IntoIterator for &'a Tlvs<B> {
    type Item = &'a Tlv<B>;
    type IntoIter = std::slice::Iter<'a, Tlv<B>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_accessors_read_and_write_the_spec_layout() {
        let mut tlvs = Tlvs::new();
        tlvs.set_sar_msg_ref_num(0x1234);
        tlvs.set_sar_total_segments(3);
        tlvs.set_sar_segment_seqnum(2);
        tlvs.set_receipted_message_id(b"abc123").unwrap();
        tlvs.set_network_error_code(NetworkErrorCode {
            network_type: 3,
            error_code: 0x0102,
        });
        assert_eq!(
            tlvs.get(tag::sar_msg_ref_num).unwrap().as_ref(),
            &[0x12, 0x34]
        );
        assert_eq!(
            tlvs.get(tag::receipted_message_id).unwrap().as_ref(),
            b"abc123\0"
        );
        assert_eq!(
            tlvs.get(tag::network_error_code).unwrap().as_ref(),
            &[3, 1, 2]
        );
        assert_eq!(tlvs.sar_msg_ref_num(), Some(0x1234));
        assert_eq!(tlvs.sar_total_segments(), Some(3));
        assert_eq!(tlvs.sar_segment_seqnum(), Some(2));
        assert_eq!(tlvs.receipted_message_id(), Some(&b"abc123"[..]));
        tlvs.set_sar_total_segments(4);
        assert_eq!(tlvs.0.len(), 5, "setting a tag again replaces it");
        assert_eq!(tlvs.sar_total_segments(), Some(4));
    }

    #[test]
    fn malformed_known_tags_read_as_absent() {
        let tlvs = Tlvs(vec![
            Tlv {
                tag: tag::message_state,
                value: Bytes::from_static(&[1, 2]),
            },
            Tlv {
                tag: tag::receipted_message_id,
                value: Bytes::from_static(b"no-nul"),
            },
        ]);
        assert_eq!(tlvs.message_state(), None);
        assert_eq!(tlvs.receipted_message_id(), None);
        assert_eq!(tag::name(tag::message_payload), Some("message_payload"));
        assert_eq!(tag::name(0x1400), None);
    }
}
