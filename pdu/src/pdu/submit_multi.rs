//! submit_multi (SMPP 3.4 §4.5): one message to up to 254 destinations.

use bytes::{BufMut, Bytes, BytesMut};

use crate::command_status::CommandStatus;
use crate::error::{DecodeError, DecodeErrorKind, ValueError};
use crate::field::{Field, Reader, Source};
use crate::tlv::Tlvs;
use crate::types::{COctetString, Octets, ShortMessage, SmppTime};

/// Most entries a `number_of_dests` or `no_unsuccess` list may hold (SMPP 3.4 §4.5.1).
pub const MAX_DESTINATIONS: usize = 254;

/// A list preceded on the wire by its one-octet count, bounded by [`MAX_DESTINATIONS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SmeList<T>(Vec<T>);

impl<T> Default for SmeList<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T> SmeList<T> {
    /// Builds a list, checking the bound.
    ///
    /// # Errors
    /// [`ValueError::TooManyItems`] past 254 entries.
    pub fn new(items: Vec<T>) -> Result<Self, ValueError> {
        if items.len() > MAX_DESTINATIONS {
            return Err(ValueError::TooManyItems {
                actual: items.len(),
            });
        }
        Ok(Self(items))
    }

    /// The entries.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// The entries, taken out of the list.
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
}

/// An entry of a counted list, and the spec's name of its count field.
pub(crate) trait Counted {
    /// `number_of_dests` or `no_unsuccess`: the field an error in the count is reported as.
    const COUNT_FIELD: &'static str;
}

impl<B: Octets> Counted for DestAddress<B> {
    const COUNT_FIELD: &'static str = "number_of_dests";
}

impl<B: Octets> Counted for UnsuccessSme<B> {
    const COUNT_FIELD: &'static str = "no_unsuccess";
}

impl<B, T: Field<B> + Counted> Field<B> for SmeList<T> {
    fn read<'a, S: Source<'a, Out = B>>(
        r: &mut Reader<'a, S>,
        name: &'static str,
    ) -> Result<Self, DecodeError> {
        let count = r.u8(T::COUNT_FIELD)?;
        if usize::from(count) > MAX_DESTINATIONS {
            let value = u32::from(count);
            return Err(r.error(T::COUNT_FIELD, DecodeErrorKind::InvalidValue { value }));
        }
        (0..count)
            .map(|_| T::read(r, name))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
    fn encoded_len(&self) -> usize {
        1 + self.0.iter().map(Field::encoded_len).sum::<usize>()
    }
    fn write(&self, dst: &mut BytesMut) {
        // The constructor bounds the count by 254.
        dst.put_u8(u8::try_from(self.0.len()).unwrap_or(u8::MAX));
        for item in &self.0 {
            item.write(dst);
        }
    }
}

/// One `dest_address` of submit_multi (SMPP 3.4 §4.5.1.1), chosen by `dest_flag`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DestAddress<B: Octets = Bytes> {
    /// `dest_flag` 1: an SME address.
    SmeAddress {
        /// Type of number.
        dest_addr_ton: u8,
        /// Numbering plan.
        dest_addr_npi: u8,
        /// The address (max 21 with NUL).
        destination_addr: COctetString<21, B>,
    },
    /// `dest_flag` 2: a distribution list defined on the SMSC.
    DistributionList {
        /// The list's name (max 21 with NUL).
        dl_name: COctetString<21, B>,
    },
}

impl<B: Octets> Field<B> for DestAddress<B> {
    fn read<'a, S: Source<'a, Out = B>>(
        r: &mut Reader<'a, S>,
        _name: &'static str,
    ) -> Result<Self, DecodeError> {
        match r.u8("dest_flag")? {
            1 => Ok(Self::SmeAddress {
                dest_addr_ton: r.u8("dest_addr_ton")?,
                dest_addr_npi: r.u8("dest_addr_npi")?,
                destination_addr: Field::<B>::read(r, "destination_addr")?,
            }),
            2 => Ok(Self::DistributionList {
                dl_name: Field::<B>::read(r, "dl_name")?,
            }),
            other => Err(r.error(
                "dest_flag",
                DecodeErrorKind::InvalidValue {
                    value: u32::from(other),
                },
            )),
        }
    }
    fn encoded_len(&self) -> usize {
        match self {
            Self::SmeAddress {
                destination_addr, ..
            } => 3 + destination_addr.encoded_len(),
            Self::DistributionList { dl_name } => 1 + dl_name.encoded_len(),
        }
    }
    fn write(&self, dst: &mut BytesMut) {
        match self {
            Self::SmeAddress {
                dest_addr_ton,
                dest_addr_npi,
                destination_addr,
            } => {
                dst.put_u8(1);
                dst.put_u8(*dest_addr_ton);
                dst.put_u8(*dest_addr_npi);
                destination_addr.write(dst);
            }
            Self::DistributionList { dl_name } => {
                dst.put_u8(2);
                dl_name.write(dst);
            }
        }
    }
}

impl<B> Field<B> for CommandStatus {
    fn read<'a, S: Source<'a, Out = B>>(
        r: &mut Reader<'a, S>,
        name: &'static str,
    ) -> Result<Self, DecodeError> {
        r.u32(name).map(CommandStatus)
    }
    fn encoded_len(&self) -> usize {
        4
    }
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u32(self.0);
    }
}

body! {
    /// One `unsuccess_sme` of submit_multi_resp (SMPP 3.4 §4.5.2): a destination the SMSC did
    /// not accept, and why.
    pub struct UnsuccessSme {
        /// Type of number.
        dest_addr_ton: u8,
        /// Numbering plan.
        dest_addr_npi: u8,
        /// The address (max 21 with NUL).
        destination_addr: COctetString<21, B>,
        /// Why this destination failed.
        error_status_code: CommandStatus,
    }
}

impl<B: Octets> Field<B> for UnsuccessSme<B> {
    fn read<'a, S: Source<'a, Out = B>>(
        r: &mut Reader<'a, S>,
        _name: &'static str,
    ) -> Result<Self, DecodeError> {
        crate::pdu::Body::decode_fields(r)
    }
    fn encoded_len(&self) -> usize {
        crate::pdu::Body::encoded_len(self)
    }
    fn write(&self, dst: &mut BytesMut) {
        crate::pdu::Body::encode(self, dst);
    }
}

body! {
    /// submit_multi (SMPP 3.4 §4.5.1).
    pub struct SubmitMulti {
        /// The SMS application service (max 6 with NUL).
        service_type: COctetString<6, B>,
        /// Type of number of `source_addr`.
        source_addr_ton: u8,
        /// Numbering plan of `source_addr`.
        source_addr_npi: u8,
        /// Originator address (max 21 with NUL).
        source_addr: COctetString<21, B>,
        /// `number_of_dests` and the `dest_address` list.
        dest_addresses: SmeList<DestAddress<B>>,
        /// Message mode and type (SMPP 3.4 §5.2.12).
        esm_class: u8,
        /// GSM protocol identifier.
        protocol_id: u8,
        /// Priority level, 0 to 3.
        priority_flag: u8,
        /// Scheduled delivery time (empty, or 16 characters).
        schedule_delivery_time: SmppTime<B>,
        /// Expiry (empty, or 16 characters).
        validity_period: SmppTime<B>,
        /// Whether a delivery receipt is requested.
        registered_delivery: u8,
        /// Whether to replace a pending message.
        replace_if_present_flag: u8,
        /// Encoding of `short_message`.
        data_coding: u8,
        /// Index of a canned message, 0 for none.
        sm_default_msg_id: u8,
        /// Up to 254 octets of user data.
        short_message: ShortMessage<B>,
        /// Optional parameters.
        tlvs: Tlvs<B>,
    }
}

body! {
    /// submit_multi_resp (SMPP 3.4 §4.5.2).
    pub struct SubmitMultiResp {
        /// The SMSC's id for the message (max 65 with NUL).
        message_id: COctetString<65, B>,
        /// `no_unsuccess` and the destinations that failed.
        unsuccess_smes: SmeList<UnsuccessSme<B>>,
        /// Optional parameters (none in 3.4; SMPP 5.0 peers may add some).
        tlvs: Tlvs<B>,
    }
}
