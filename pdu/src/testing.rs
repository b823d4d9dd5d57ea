//! Sample PDUs and proptest strategies, for this crate's tests and other crates' (feature
//! `testing`). Strategies stay inside what the spec allows, so that decode(encode(x)) == x must
//! hold for everything they generate.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;

use crate::{
    AlertNotification, Bind, BindResp, COctetString, CancelSm, Command, CommandId, CommandStatus,
    DataSm, DataSmResp, DeliverSm, DeliverSmResp, DestAddress, OctetString, Outbind, Pdu, QuerySm,
    QuerySmResp, ReplaceSm, SmeList, SmppTime, SubmitMulti, SubmitMultiResp, SubmitSm,
    SubmitSmResp, Tlv, Tlvs, UnsuccessSme,
};

/// Any C-Octet String that fits a field of `MAX` octets (NUL included).
pub fn c_string<const MAX: usize>() -> impl Strategy<Value = COctetString<MAX>> {
    vec(1u8..=255, 0..MAX).prop_map(|v| COctetString::new(v).unwrap_or_default())
}

/// Any valid time field: empty, or `YYMMDDhhmmsstnnp` (SMPP 3.4 §7.1.1).
pub fn smpp_time() -> impl Strategy<Value = SmppTime> {
    prop_oneof![
        Just(SmppTime::none()),
        ("[0-9]{15}", prop_oneof![Just('+'), Just('-'), Just('R')])
            .prop_map(|(digits, p)| SmppTime::new(&format!("{digits}{p}")).unwrap_or_default()),
    ]
}

/// Any `short_message`.
pub fn short_message() -> impl Strategy<Value = OctetString<254>> {
    vec(any::<u8>(), 0..=254).prop_map(|v| OctetString::new(v).unwrap_or_default())
}

/// Any list of TLVs, known and unknown tags, any lengths.
pub fn tlvs() -> impl Strategy<Value = Tlvs> {
    let tag = prop_oneof![any::<u16>(), Just(0x0424u16), Just(0x020C), Just(0x001E)];
    vec((tag, vec(any::<u8>(), 0..48)), 0..4).prop_map(|v| {
        Tlvs(
            v.into_iter()
                .map(|(tag, value)| Tlv {
                    tag,
                    value: Bytes::from(value),
                })
                .collect(),
        )
    })
}

macro_rules! strategy {
    ($name:ident -> $ty:ident { $($field:ident: $strategy:expr,)* }) => {
        #[doc = concat!("Any `", stringify!($ty), "`.")]
        pub fn $name() -> impl Strategy<Value = $ty> {
            ($($strategy,)*).prop_map(|($($field,)*)| $ty { $($field,)* })
        }
    };
}

strategy!(bind -> Bind {
    system_id: c_string(),
    password: c_string(),
    system_type: c_string(),
    interface_version: any::<u8>(),
    addr_ton: any::<u8>(),
    addr_npi: any::<u8>(),
    address_range: c_string(),
});

strategy!(bind_resp -> BindResp { system_id: c_string(), tlvs: tlvs(), });
strategy!(outbind -> Outbind { system_id: c_string(), password: c_string(), });

macro_rules! short_message_strategy {
    ($name:ident -> $ty:ident) => {
        #[doc = concat!("Any `", stringify!($ty), "`.")]
        pub fn $name() -> impl Strategy<Value = $ty> {
            (
                (
                    c_string(),
                    any::<u8>(),
                    any::<u8>(),
                    c_string(),
                    any::<u8>(),
                    any::<u8>(),
                ),
                (c_string(), any::<[u8; 3]>(), smpp_time(), smpp_time()),
                (any::<[u8; 4]>(), short_message(), tlvs()),
            )
                .prop_map(|(a, b, c)| $ty {
                    service_type: a.0,
                    source_addr_ton: a.1,
                    source_addr_npi: a.2,
                    source_addr: a.3,
                    dest_addr_ton: a.4,
                    dest_addr_npi: a.5,
                    destination_addr: b.0,
                    esm_class: b.1[0],
                    protocol_id: b.1[1],
                    priority_flag: b.1[2],
                    schedule_delivery_time: b.2,
                    validity_period: b.3,
                    registered_delivery: c.0[0],
                    replace_if_present_flag: c.0[1],
                    data_coding: c.0[2],
                    sm_default_msg_id: c.0[3],
                    short_message: c.1,
                    tlvs: c.2,
                })
        }
    };
}

short_message_strategy!(submit_sm -> SubmitSm);
short_message_strategy!(deliver_sm -> DeliverSm);

strategy!(submit_sm_resp -> SubmitSmResp { message_id: c_string(), tlvs: tlvs(), });
strategy!(deliver_sm_resp -> DeliverSmResp { message_id: c_string(), tlvs: tlvs(), });
strategy!(data_sm_resp -> DataSmResp { message_id: c_string(), tlvs: tlvs(), });

/// Any `dest_address`.
pub fn dest_address() -> impl Strategy<Value = DestAddress> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), c_string()).prop_map(|(ton, npi, addr)| {
            DestAddress::SmeAddress {
                dest_addr_ton: ton,
                dest_addr_npi: npi,
                destination_addr: addr,
            }
        }),
        c_string().prop_map(|dl_name| DestAddress::DistributionList { dl_name }),
    ]
}

strategy!(unsuccess_sme -> UnsuccessSme {
    dest_addr_ton: any::<u8>(),
    dest_addr_npi: any::<u8>(),
    destination_addr: c_string(),
    error_status_code: any::<u32>().prop_map(CommandStatus),
});

/// Any `submit_multi`.
pub fn submit_multi() -> impl Strategy<Value = SubmitMulti> {
    (submit_sm(), vec(dest_address(), 0..8)).prop_map(|(s, dests)| SubmitMulti {
        service_type: s.service_type,
        source_addr_ton: s.source_addr_ton,
        source_addr_npi: s.source_addr_npi,
        source_addr: s.source_addr,
        dest_addresses: SmeList::new(dests).unwrap_or_default(),
        esm_class: s.esm_class,
        protocol_id: s.protocol_id,
        priority_flag: s.priority_flag,
        schedule_delivery_time: s.schedule_delivery_time,
        validity_period: s.validity_period,
        registered_delivery: s.registered_delivery,
        replace_if_present_flag: s.replace_if_present_flag,
        data_coding: s.data_coding,
        sm_default_msg_id: s.sm_default_msg_id,
        short_message: s.short_message,
        tlvs: s.tlvs,
    })
}

/// Any `submit_multi_resp`.
pub fn submit_multi_resp() -> impl Strategy<Value = SubmitMultiResp> {
    (c_string(), vec(unsuccess_sme(), 0..6), tlvs()).prop_map(|(message_id, smes, tlvs)| {
        SubmitMultiResp {
            message_id,
            unsuccess_smes: SmeList::new(smes).unwrap_or_default(),
            tlvs,
        }
    })
}

strategy!(data_sm -> DataSm {
    service_type: c_string(),
    source_addr_ton: any::<u8>(),
    source_addr_npi: any::<u8>(),
    source_addr: c_string(),
    dest_addr_ton: any::<u8>(),
    dest_addr_npi: any::<u8>(),
    destination_addr: c_string(),
    esm_class: any::<u8>(),
    registered_delivery: any::<u8>(),
    data_coding: any::<u8>(),
    tlvs: tlvs(),
});

strategy!(query_sm -> QuerySm {
    message_id: c_string(),
    source_addr_ton: any::<u8>(),
    source_addr_npi: any::<u8>(),
    source_addr: c_string(),
});

strategy!(query_sm_resp -> QuerySmResp {
    message_id: c_string(),
    final_date: smpp_time(),
    message_state: any::<u8>(),
    error_code: any::<u8>(),
});

strategy!(cancel_sm -> CancelSm {
    service_type: c_string(),
    message_id: c_string(),
    source_addr_ton: any::<u8>(),
    source_addr_npi: any::<u8>(),
    source_addr: c_string(),
    dest_addr_ton: any::<u8>(),
    dest_addr_npi: any::<u8>(),
    destination_addr: c_string(),
});

strategy!(replace_sm -> ReplaceSm {
    message_id: c_string(),
    source_addr_ton: any::<u8>(),
    source_addr_npi: any::<u8>(),
    source_addr: c_string(),
    schedule_delivery_time: smpp_time(),
    validity_period: smpp_time(),
    registered_delivery: any::<u8>(),
    sm_default_msg_id: any::<u8>(),
    short_message: short_message(),
});

strategy!(alert_notification -> AlertNotification {
    source_addr_ton: any::<u8>(),
    source_addr_npi: any::<u8>(),
    source_addr: c_string(),
    esme_addr_ton: any::<u8>(),
    esme_addr_npi: any::<u8>(),
    esme_addr: c_string(),
    tlvs: tlvs(),
});

/// Any `command_id` SMPP 3.4 does not define, with any body.
pub fn unknown() -> impl Strategy<Value = Pdu> {
    (
        any::<u32>().prop_filter("undefined id", |id| CommandId(*id).name().is_none()),
        vec(any::<u8>(), 0..64),
    )
        .prop_map(|(id, body)| Pdu::Unknown {
            command_id: CommandId(id),
            body: Bytes::from(body),
        })
}

/// Any PDU of any operation.
pub fn pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![
        bind().prop_map(Pdu::BindTransmitter),
        bind().prop_map(Pdu::BindReceiver),
        bind().prop_map(Pdu::BindTransceiver),
        bind_resp().prop_map(Pdu::BindTransmitterResp),
        bind_resp().prop_map(Pdu::BindReceiverResp),
        bind_resp().prop_map(Pdu::BindTransceiverResp),
        outbind().prop_map(Pdu::Outbind),
        Just(Pdu::Unbind),
        Just(Pdu::UnbindResp),
        Just(Pdu::GenericNack),
        submit_sm().prop_map(Pdu::SubmitSm),
        submit_sm_resp().prop_map(Pdu::SubmitSmResp),
        submit_multi().prop_map(Pdu::SubmitMulti),
        submit_multi_resp().prop_map(Pdu::SubmitMultiResp),
        deliver_sm().prop_map(Pdu::DeliverSm),
        deliver_sm_resp().prop_map(Pdu::DeliverSmResp),
        data_sm().prop_map(Pdu::DataSm),
        data_sm_resp().prop_map(Pdu::DataSmResp),
        query_sm().prop_map(Pdu::QuerySm),
        query_sm_resp().prop_map(Pdu::QuerySmResp),
        cancel_sm().prop_map(Pdu::CancelSm),
        Just(Pdu::CancelSmResp),
        replace_sm().prop_map(Pdu::ReplaceSm),
        Just(Pdu::ReplaceSmResp),
        Just(Pdu::EnquireLink),
        Just(Pdu::EnquireLinkResp),
        alert_notification().prop_map(Pdu::AlertNotification),
        unknown(),
    ]
}

/// Any command: any status (responses often carry errors), any sequence number, any PDU.
pub fn command() -> impl Strategy<Value = Command> {
    let status = prop_oneof![Just(0u32), 1u32..0x500, any::<u32>()];
    (status, any::<u32>(), pdu()).prop_map(|(status, seq, pdu)| Command {
        command_status: CommandStatus(status),
        sequence_number: seq,
        pdu,
    })
}
