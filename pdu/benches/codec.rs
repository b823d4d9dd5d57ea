//! Codec throughput: encode and decode of a typical submit_sm and a typical deliver_sm receipt,
//! and a stream of 10,000 framed submit_sm through `SmppCodec`; each against the `smpp-pdu`
//! crate on the same bytes in the same run, in one group per workload so the ratio is visible.
//! Figures and the command that produced them: docs/BENCHMARKS.md.

use std::hint::black_box;
use std::io::Cursor;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sairex_pdu::{Command, CommandRef, DeliverSm, ShortMessage, SmppCodec, SubmitSm, Tlvs};
use smpp_pdu::pdu as their;
use tokio_util::codec::Decoder;

/// PDUs in the stream benchmark.
const STREAM_LEN: usize = 10_000;

/// 160 GSM 03.38 characters: one full single-part SMS.
const BODY_160: &[u8] = b"Dear customer, your bill of PKR 2,450 for May is due on 15/06. \
Pay via app or any branch to avoid a late fee. Ref 7731-0042. Thank you - Sairex Tel. Help: 12345";

/// A delivery receipt's text as SMPP 3.4 Appendix B lays it out.
const RECEIPT_TEXT: &[u8] = b"id:5f3c9a1e-0001 sub:001 dlvrd:001 submit date:2506011200 \
done date:2506011201 stat:DELIVRD err:000 text:Dear customer, your";

fn submit_sm(sequence_number: u32) -> Command {
    assert_eq!(BODY_160.len(), 160);
    // Vary the destination so the frames are not all the same bytes.
    let destination = format!("9230012{:05}", sequence_number % 100_000);
    Command::new(
        sequence_number,
        SubmitSm {
            source_addr_ton: 5,
            source_addr_npi: 0,
            source_addr: "SairexTel".try_into().unwrap(),
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            destination_addr: destination.try_into().unwrap(),
            registered_delivery: 1,
            short_message: ShortMessage::new(Bytes::from_static(BODY_160)).unwrap(),
            ..SubmitSm::default()
        },
    )
}

fn deliver_sm_receipt() -> Command {
    let mut tlvs = Tlvs::new();
    tlvs.set_receipted_message_id(b"5f3c9a1e-0001").unwrap();
    tlvs.set_message_state(2);
    Command::new(
        77,
        DeliverSm {
            source_addr_ton: 1,
            source_addr_npi: 1,
            source_addr: "923001234567".try_into().unwrap(),
            dest_addr_ton: 5,
            dest_addr_npi: 0,
            destination_addr: "SairexTel".try_into().unwrap(),
            esm_class: 0x04,
            short_message: ShortMessage::new(Bytes::from_static(RECEIPT_TEXT)).unwrap(),
            tlvs,
            ..DeliverSm::default()
        },
    )
}

/// The same command built with smpp-pdu, for its encoder.
fn their_pdu(frame: &[u8]) -> their::Pdu {
    their::Pdu::parse(&mut Cursor::new(frame)).unwrap()
}

fn their_write(pdu: &their::Pdu) -> Vec<u8> {
    futures::executor::block_on(async {
        let mut out = Vec::with_capacity(256);
        pdu.write(&mut out).await.unwrap();
        out
    })
}

/// Encode and decode of one PDU, ours and smpp-pdu's, in one group.
fn single_pdu(c: &mut Criterion, group_name: &str, command: &Command) {
    let frame = command.to_bytes();
    let theirs = their_pdu(&frame);
    // Both sides agree on these bytes before anything is timed.
    assert_eq!(their_write(&theirs), frame.as_ref());
    assert_eq!(&Command::from_bytes(frame.clone()).unwrap(), command);

    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(1));

    group.bench_function("decode/sairex", |b| {
        b.iter(|| Command::from_bytes(black_box(frame.clone())).unwrap())
    });
    group.bench_function("decode-in-place/sairex", |b| {
        b.iter(|| black_box(CommandRef::parse(black_box(&frame[..])).unwrap()).sequence_number)
    });
    group.bench_function("decode/smpp-pdu", |b| {
        b.iter(|| their::Pdu::parse(&mut Cursor::new(black_box(&frame[..]))).unwrap())
    });

    let mut buf = BytesMut::with_capacity(4096);
    group.bench_function("encode/sairex", |b| {
        b.iter(|| {
            buf.clear();
            black_box(command).encode(&mut buf);
            black_box(buf.len())
        })
    });
    group.bench_function("encode/smpp-pdu", |b| {
        b.iter(|| their_write(black_box(&theirs)))
    });
    group.finish();
}

fn submit_sm_single(c: &mut Criterion) {
    single_pdu(c, "submit_sm", &submit_sm(1));
}

fn deliver_sm_receipt_single(c: &mut Criterion) {
    single_pdu(c, "deliver_sm_receipt", &deliver_sm_receipt());
}

/// 10,000 framed submit_sm in one buffer: ours through `SmppCodec::decode` (as a session's
/// `FramedRead` calls it), smpp-pdu through `Pdu::parse` on a cursor over the same bytes.
fn submit_sm_stream(c: &mut Criterion) {
    let mut wire = BytesMut::new();
    for seq in 1..=u32::try_from(STREAM_LEN).unwrap() {
        submit_sm(seq).encode(&mut wire);
    }
    let wire = wire.freeze();

    // Both decoders read the whole stream correctly before anything is timed.
    let decode_ours = |mut buf: BytesMut| {
        let mut codec = SmppCodec::new();
        let mut count = 0usize;
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            black_box(item.unwrap());
            count += 1;
        }
        count
    };
    let decode_ours_in_place = |mut buf: BytesMut| {
        let mut codec = SmppCodec::new();
        let mut count = 0usize;
        while let Some(()) = codec
            .decode_borrowed(&mut buf, |item| {
                black_box(item.unwrap());
            })
            .unwrap()
        {
            count += 1;
        }
        count
    };
    let decode_theirs = |bytes: &[u8]| {
        let mut cursor = Cursor::new(bytes);
        let mut count = 0usize;
        while (cursor.position() as usize) < bytes.len() {
            black_box(their::Pdu::parse(&mut cursor).unwrap());
            count += 1;
        }
        count
    };
    assert_eq!(decode_ours(BytesMut::from(&wire[..])), STREAM_LEN);
    assert_eq!(decode_ours_in_place(BytesMut::from(&wire[..])), STREAM_LEN);
    assert_eq!(decode_theirs(&wire), STREAM_LEN);

    let mut group = c.benchmark_group("submit_sm_stream_10k");
    group.throughput(Throughput::Elements(STREAM_LEN as u64));
    group.sample_size(30);
    group.bench_function("decode/sairex", |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            decode_ours,
            BatchSize::LargeInput,
        )
    });
    group.bench_function("decode-in-place/sairex", |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            decode_ours_in_place,
            BatchSize::LargeInput,
        )
    });
    group.bench_function("decode/smpp-pdu", |b| {
        b.iter(|| decode_theirs(black_box(&wire)))
    });
    group.finish();
}

criterion_group!(
    benches,
    submit_sm_single,
    deliver_sm_receipt_single,
    submit_sm_stream
);
criterion_main!(benches);
