//! Reading and writing the body fields of SMPP 3.4 §3.1: the one place that knows the wire form
//! of each field type. Parsing uses nom's `complete` parsers over a body that is already framed,
//! so running out of input inside a body is an error, never "need more data".

use bytes::{BufMut, Bytes, BytesMut};
use nom::IResult;
use nom::Parser;
use nom::number::complete::{be_u16, be_u32};

use crate::error::{DecodeError, DecodeErrorKind};
use crate::tlv::{Tlv, Tlvs};
use crate::types::{COctetString, OctetString, Octets, SmppTime, is_valid_time};

/// Where decoded octet strings come from: shared slices of a `Bytes` frame, or plain borrows.
pub(crate) trait Source<'a>: Copy {
    type Out: Octets;
    fn make(self, slice: &'a [u8]) -> Self::Out;
}

/// Octet strings become `Bytes` sharing the frame (one reference count each).
#[derive(Clone, Copy)]
pub(crate) struct Shared<'a>(pub(crate) &'a Bytes);

impl<'a> Source<'a> for Shared<'a> {
    type Out = Bytes;
    #[inline]
    fn make(self, slice: &'a [u8]) -> Bytes {
        self.0.slice_ref(slice)
    }
}

/// Octet strings stay borrowed from the buffer being decoded: no counting, no copying.
#[derive(Clone, Copy)]
pub(crate) struct Borrowed;

impl<'a> Source<'a> for Borrowed {
    type Out = &'a [u8];
    #[inline]
    fn make(self, slice: &'a [u8]) -> &'a [u8] {
        slice
    }
}

/// A cursor over one PDU body.
pub(crate) struct Reader<'a, S> {
    source: S,
    body: &'a [u8],
    rest: &'a [u8],
}

/// nom's error carries the input and an error kind we never look at; `()` keeps every parser
/// result two words wide, which measurably speeds up the per-field path.
type NomError = ();

impl<'a, S: Source<'a>> Reader<'a, S> {
    #[inline]
    pub(crate) fn new(source: S, body: &'a [u8]) -> Self {
        Self {
            source,
            body,
            rest: body,
        }
    }

    #[inline]
    fn offset(&self) -> u32 {
        // A body is at most the codec's maximum frame length, far below u32::MAX.
        u32::try_from(self.body.len() - self.rest.len()).unwrap_or(u32::MAX)
    }

    #[inline]
    pub(crate) fn error(&self, field: &'static str, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            field,
            offset: self.offset(),
            kind,
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    #[inline]
    pub(crate) fn body(&self) -> S::Out {
        self.source.make(self.body)
    }

    #[inline(always)]
    fn run<T>(
        &mut self,
        field: &'static str,
        parser: impl FnOnce(&'a [u8]) -> IResult<&'a [u8], T, NomError>,
    ) -> Result<T, DecodeError> {
        match parser(self.rest) {
            Ok((rest, value)) => {
                self.rest = rest;
                Ok(value)
            }
            Err(_) => Err(self.error(field, DecodeErrorKind::Truncated)),
        }
    }

    #[inline(always)]
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        // The commonest field by far: a plain split, since nom's be_u8 did not inline here.
        match self.rest.split_first() {
            Some((&value, rest)) => {
                self.rest = rest;
                Ok(value)
            }
            None => Err(self.error(field, DecodeErrorKind::Truncated)),
        }
    }

    #[inline]
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.run(field, be_u32)
    }

    /// `count` octets. A plain split rather than nom's `take`, which did not inline here and
    /// cost ~10% of an in-place decode.
    #[inline(always)]
    pub(crate) fn octets(
        &mut self,
        count: usize,
        field: &'static str,
    ) -> Result<S::Out, DecodeError> {
        match self.rest.split_at_checked(count) {
            Some((slice, rest)) => {
                self.rest = rest;
                Ok(self.source.make(slice))
            }
            None => Err(self.error(field, DecodeErrorKind::Truncated)),
        }
    }

    /// A C-Octet String whose NUL must come within `max` octets (SMPP 3.4 §3.1).
    #[inline]
    pub(crate) fn c_string(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<S::Out, DecodeError> {
        let window = &self.rest[..self.rest.len().min(max)];
        match window.iter().position(|&b| b == 0) {
            Some(len) => {
                let text = self.source.make(&self.rest[..len]);
                self.rest = &self.rest[len + 1..];
                Ok(text)
            }
            None if window.len() < max => Err(self.error(field, DecodeErrorKind::Truncated)),
            None => Err(self.error(
                field,
                DecodeErrorKind::MissingNul {
                    max: u32::try_from(max).unwrap_or(u32::MAX),
                },
            )),
        }
    }

    /// Every TLV to the end of the body (SMPP 3.4 §3.2.4); TLVs are always the last fields.
    #[inline]
    pub(crate) fn tlvs(&mut self) -> Result<Tlvs<S::Out>, DecodeError> {
        if self.rest.is_empty() {
            return Ok(Tlvs::new());
        }
        let mut tlvs = Vec::new();
        while !self.rest.is_empty() {
            let (tag, len) = self.run("tlv", |i| (be_u16, be_u16).parse(i))?;
            let value = self.octets(usize::from(len), "tlv")?;
            tlvs.push(Tlv { tag, value });
        }
        Ok(Tlvs(tlvs))
    }

    /// Fails when octets are left after the last field.
    #[inline]
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            let count = u32::try_from(self.rest.len()).unwrap_or(u32::MAX);
            Err(self.error("command_length", DecodeErrorKind::TrailingBytes { count }))
        }
    }
}

/// A body field type whose octet strings live in `B`: how it is read, sized and written.
pub(crate) trait Field<B>: Sized {
    fn read<'a, S: Source<'a, Out = B>>(
        r: &mut Reader<'a, S>,
        name: &'static str,
    ) -> Result<Self, DecodeError>;
    fn encoded_len(&self) -> usize;
    fn write(&self, dst: &mut BytesMut);
}

impl<B> Field<B> for u8 {
    #[inline]
    fn read<'a, S: Source<'a, Out = B>>(
        r: &mut Reader<'a, S>,
        name: &'static str,
    ) -> Result<Self, DecodeError> {
        r.u8(name)
    }
    #[inline]
    fn encoded_len(&self) -> usize {
        1
    }
    #[inline]
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u8(*self);
    }
}

impl<B> Field<B> for u32 {
    #[inline]
    fn read<'a, S: Source<'a, Out = B>>(
        r: &mut Reader<'a, S>,
        name: &'static str,
    ) -> Result<Self, DecodeError> {
        r.u32(name)
    }
    #[inline]
    fn encoded_len(&self) -> usize {
        4
    }
    #[inline]
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u32(*self);
    }
}

impl<const MAX: usize, B: Octets> Field<B> for COctetString<MAX, B> {
    #[inline]
    fn read<'a, S: Source<'a, Out = B>>(
        r: &mut Reader<'a, S>,
        name: &'static str,
    ) -> Result<Self, DecodeError> {
        r.c_string(MAX, name).map(COctetString::from_checked)
    }
    #[inline]
    fn encoded_len(&self) -> usize {
        self.len() + 1
    }
    #[inline]
    fn write(&self, dst: &mut BytesMut) {
        dst.put_slice(self.as_bytes());
        dst.put_u8(0);
    }
}

/// A time field: a C-Octet String of 1 or 17 octets in the §7.1.1 format.
impl<B: Octets> Field<B> for SmppTime<B> {
    #[inline]
    fn read<'a, S: Source<'a, Out = B>>(
        r: &mut Reader<'a, S>,
        name: &'static str,
    ) -> Result<Self, DecodeError> {
        let text: COctetString<17, B> = Field::read(r, name)?;
        if !is_valid_time(text.as_bytes()) {
            let actual = u32::try_from(text.len()).unwrap_or(u32::MAX);
            return Err(r.error(name, DecodeErrorKind::InvalidLength { actual }));
        }
        Ok(SmppTime::from_checked(text))
    }
    #[inline]
    fn encoded_len(&self) -> usize {
        self.inner().encoded_len()
    }
    #[inline]
    fn write(&self, dst: &mut BytesMut) {
        self.inner().write(dst);
    }
}

/// An Octet String preceded by its one-octet length, as `sm_length` + `short_message`
/// (SMPP 3.4 §4.4.1). `MAX` must not exceed 255.
impl<const MAX: usize, B: Octets> Field<B> for OctetString<MAX, B> {
    #[inline]
    fn read<'a, S: Source<'a, Out = B>>(
        r: &mut Reader<'a, S>,
        name: &'static str,
    ) -> Result<Self, DecodeError> {
        let len = r.u8("sm_length")?;
        if usize::from(len) > MAX {
            return Err(r.error(
                "sm_length",
                DecodeErrorKind::TooLong {
                    max: u32::try_from(MAX).unwrap_or(u32::MAX),
                    actual: u32::from(len),
                },
            ));
        }
        r.octets(usize::from(len), name)
            .map(OctetString::from_checked)
    }
    #[inline]
    fn encoded_len(&self) -> usize {
        1 + self.len()
    }
    #[inline]
    fn write(&self, dst: &mut BytesMut) {
        // The constructor bounds the length by MAX <= 255.
        dst.put_u8(u8::try_from(self.len()).unwrap_or(u8::MAX));
        dst.put_slice(self.as_bytes());
    }
}

impl<B: Octets> Field<B> for Tlvs<B> {
    #[inline]
    fn read<'a, S: Source<'a, Out = B>>(
        r: &mut Reader<'a, S>,
        _name: &'static str,
    ) -> Result<Self, DecodeError> {
        r.tlvs()
    }
    #[inline]
    fn encoded_len(&self) -> usize {
        Tlvs::encoded_len(self)
    }
    #[inline]
    fn write(&self, dst: &mut BytesMut) {
        for tlv in self {
            dst.put_u16(tlv.tag);
            let value = tlv.wire_value();
            // wire_value() is at most u16::MAX octets.
            dst.put_u16(u16::try_from(value.len()).unwrap_or(u16::MAX));
            dst.put_slice(value);
        }
    }
}
