//! Segment counting, splitting and UDH parsing.

use proptest::prelude::*;
use sairex_pdu::text::{
    ConcatInfo, Concatenation, Encoding, Gsm7Packing, SarInfo, Segment, SegmentCount, SplitOptions,
    TextError, count_segments, count_segments_with, decode, gsm7, parse_udh, split,
};

const UDH8: Concatenation = Concatenation::Udh8 { reference: 0x42 };
const UDH16: Concatenation = Concatenation::Udh16 { reference: 0xBEEF };
const SAR: Concatenation = Concatenation::Sar { reference: 0x1234 };
const ALL_MODES: [Concatenation; 4] = [UDH8, UDH16, SAR, Concatenation::MessagePayload];

fn segments(text: &str) -> usize {
    count_segments(text).segments
}

fn split_with(text: &str, concatenation: Concatenation) -> Vec<Segment> {
    split(text, &SplitOptions::new(concatenation)).unwrap()
}

/// The text bytes (unpacked) of each part, UDH removed.
fn bodies(parts: &[Segment]) -> Vec<Vec<u8>> {
    parts
        .iter()
        .map(|p| {
            if p.udhi {
                parse_udh(&p.short_message).unwrap().payload.to_vec()
            } else {
                p.short_message.clone()
            }
        })
        .collect()
}

#[test]
fn gsm_single_and_multipart_limits() {
    let a = |n| "a".repeat(n);
    assert_eq!(
        count_segments(&a(160)),
        SegmentCount {
            encoding: Encoding::Gsm7,
            units: 160,
            segments: 1,
        }
    );
    assert_eq!(segments(&a(161)), 2);
    assert_eq!(segments(&a(306)), 2);
    assert_eq!(segments(&a(307)), 3);
    assert_eq!(segments(&a(153 * 255)), 255);
    assert_eq!(segments(&a(153 * 255 + 1)), 256);
    assert_eq!(segments(""), 1);
}

#[test]
fn extension_characters_count_double_and_stay_whole() {
    let euros = |n| "€".repeat(n);
    assert_eq!(count_segments(&euros(80)).units, 160);
    assert_eq!(segments(&euros(80)), 1);
    assert_eq!(segments(&euros(81)), 2);
    // 76 euros (152 septets) per part; the 77th would straddle 153.
    let parts = split_with(&euros(81), UDH8);
    let euro_bodies = bodies(&parts);
    assert_eq!(euro_bodies[0].len(), 152);
    assert_eq!(euro_bodies[1].len(), 10);

    // 152 plain characters then €: the escape may not be the 153rd septet.
    let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
    assert_eq!(count_segments(&text).units, 164);
    let parts = split_with(&text, UDH8);
    assert_eq!(parts.len(), 2);
    let split_bodies = bodies(&parts);
    assert_eq!(split_bodies[0], vec![0x61; 152]);
    assert_eq!(&split_bodies[1][..2], &[0x1B, 0x65]);
    // 153 plain then € (155 septets) still fits a single message...
    assert_eq!(bodies_of(&format!("{}€", "a".repeat(153)), UDH8).len(), 1);
    // ...but in a multipart one part one is full and € opens part two.
    let text = format!("{}€{}", "a".repeat(153), "b".repeat(10));
    let split_bodies = bodies_of(&text, UDH8);
    assert_eq!(split_bodies[0], vec![0x61; 153]);
    assert_eq!(&split_bodies[1][..2], &[0x1B, 0x65]);
    // 151 plain then €: exactly 153 septets, € ends part one.
    let text = format!("{}€{}", "a".repeat(151), "b".repeat(10));
    let split_bodies = bodies_of(&text, UDH8);
    assert_eq!(split_bodies[0].len(), 153);
    assert_eq!(&split_bodies[0][151..], &[0x1B, 0x65]);
}

#[test]
fn ucs2_limits_and_surrogate_pairs() {
    let y = |n| "й".repeat(n);
    assert_eq!(
        count_segments(&y(70)),
        SegmentCount {
            encoding: Encoding::Ucs2,
            units: 70,
            segments: 1,
        }
    );
    assert_eq!(segments(&y(71)), 2);
    assert_eq!(segments(&y(134)), 2);
    assert_eq!(segments(&y(135)), 3);
    // 35 emoji = 70 units fit one message; 36 do not.
    assert_eq!(segments(&"😀".repeat(35)), 1);
    assert_eq!(segments(&"😀".repeat(36)), 2);

    // An emoji at units 67–68 would straddle the 67-unit boundary.
    let text = format!("{}😀{}", y(66), y(10));
    let parts = split_with(&text, UDH8);
    let bodies = bodies(&parts);
    assert_eq!(bodies[0].len(), 66 * 2);
    assert_eq!(&bodies[1][..4], &[0xD8, 0x3D, 0xDE, 0x00]);
    // At units 66–67 it fits.
    let text = format!("{}😀{}", y(65), y(10));
    assert_eq!(bodies_of(&text, UDH8)[0].len(), 67 * 2);
}

fn bodies_of(text: &str, concatenation: Concatenation) -> Vec<Vec<u8>> {
    bodies(&split_with(text, concatenation))
}

#[test]
fn sixteen_bit_reference_costs_one_unit_per_part() {
    let a = |n| "a".repeat(n);
    let count = |t: &str, e| count_segments_with(t, e, UDH16).unwrap().segments;
    assert_eq!(count(&a(160), Encoding::Gsm7), 1);
    assert_eq!(count(&a(304), Encoding::Gsm7), 2);
    assert_eq!(count(&a(305), Encoding::Gsm7), 3);
    assert_eq!(count(&a(306), Encoding::Gsm7), 3);
    assert_eq!(count(&"й".repeat(132), Encoding::Ucs2), 2);
    assert_eq!(count(&"й".repeat(133), Encoding::Ucs2), 3);
    assert_eq!(count(&a(266), Encoding::Latin1), 2);
    assert_eq!(count(&a(267), Encoding::Latin1), 3);
    let bodies = bodies_of(&a(305), UDH16);
    assert_eq!(
        bodies.iter().map(Vec::len).collect::<Vec<_>>(),
        [152, 152, 1]
    );
}

#[test]
fn latin1_limits() {
    let e = |n| "é".repeat(n);
    let count = |t: &str| {
        count_segments_with(t, Encoding::Latin1, UDH8)
            .unwrap()
            .segments
    };
    assert_eq!(count(&e(140)), 1);
    assert_eq!(count(&e(141)), 2);
    assert_eq!(count(&e(268)), 2);
    assert_eq!(count(&e(269)), 3);
    assert_eq!(
        count_segments_with("😀", Encoding::Latin1, UDH8),
        Err(TextError::Unencodable {
            encoding: Encoding::Latin1,
            character: '😀',
            offset: 0,
        })
    );
    let parts = split(
        &e(141),
        &SplitOptions::new(UDH8).with_encoding(Encoding::Latin1),
    )
    .unwrap();
    assert_eq!(parts[0].data_coding, 0x03);
    assert_eq!(parts[0].short_message.len(), 140);
}

#[test]
fn udh_and_sar_layout() {
    let text = "x".repeat(200);
    let parts = split_with(&text, UDH8);
    assert_eq!(
        &parts[0].short_message[..6],
        &[0x05, 0x00, 0x03, 0x42, 0x02, 0x01]
    );
    assert_eq!(
        &parts[1].short_message[..6],
        &[0x05, 0x00, 0x03, 0x42, 0x02, 0x02]
    );
    assert!(
        parts
            .iter()
            .all(|p| p.udhi && p.esm_class_bits() == 0x40 && p.sar.is_none())
    );
    assert!(parts.iter().all(|p| p.data_coding == 0x00));

    let parts = split_with(&text, UDH16);
    assert_eq!(
        &parts[1].short_message[..7],
        &[0x06, 0x08, 0x04, 0xBE, 0xEF, 0x02, 0x02]
    );

    let parts = split_with(&text, SAR);
    assert_eq!(parts.len(), 2);
    for (i, p) in parts.iter().enumerate() {
        assert!(!p.udhi);
        assert_eq!(p.esm_class_bits(), 0);
        assert_eq!(
            p.sar,
            Some(SarInfo {
                msg_ref_num: 0x1234,
                total_segments: 2,
                segment_seqnum: u8::try_from(i + 1).unwrap(),
            })
        );
    }
    assert_eq!(parts[0].short_message, vec![b'x'; 153]);
}

#[test]
fn single_part_has_no_udh_or_sar() {
    for mode in ALL_MODES {
        let parts = split_with("hello €", mode);
        assert_eq!(parts.len(), 1);
        assert!(!parts[0].udhi);
        assert_eq!(parts[0].sar, None);
        assert_eq!(
            parts[0].short_message,
            [0x68, 0x65, 0x6C, 0x6C, 0x6F, 0x20, 0x1B, 0x65]
        );
    }
    let parts = split_with("", UDH8);
    assert_eq!(parts.len(), 1);
    assert!(parts[0].short_message.is_empty());
}

#[test]
fn message_payload_is_one_unsplit_part() {
    let text = "é😀".repeat(1000);
    let parts = split_with(&text, Concatenation::MessagePayload);
    assert_eq!(parts.len(), 1);
    assert!(!parts[0].udhi);
    assert_eq!(parts[0].data_coding, 0x08);
    assert_eq!(parts[0].short_message.len(), 6000);
    assert_eq!(
        count_segments_with(&text, Encoding::Ucs2, Concatenation::MessagePayload)
            .unwrap()
            .segments,
        1
    );
    let limit = "a".repeat(65535);
    assert_eq!(
        split_with(&limit, Concatenation::MessagePayload)[0]
            .short_message
            .len(),
        65535
    );
    assert_eq!(
        split(
            &"a".repeat(65536),
            &SplitOptions::new(Concatenation::MessagePayload)
        ),
        Err(TextError::PayloadTooLong { octets: 65536 })
    );
}

#[test]
fn more_than_255_parts_is_an_error() {
    assert_eq!(split_with(&"a".repeat(153 * 255), UDH8).len(), 255);
    assert_eq!(
        split(&"a".repeat(153 * 255 + 1), &SplitOptions::new(UDH8)),
        Err(TextError::TooManySegments { segments: 256 })
    );
}

#[test]
fn forced_gsm_rejects_other_characters() {
    let options = SplitOptions::new(UDH8).with_encoding(Encoding::Gsm7);
    assert!(matches!(
        split("naïve", &options),
        Err(TextError::Unencodable {
            character: 'ï', ..
        })
    ));
}

#[test]
fn packed_gsm_parts() {
    let options = SplitOptions::new(UDH8).with_packing(Gsm7Packing::Packed);
    let parts = split(&"a".repeat(161), &options).unwrap();
    assert_eq!(parts.len(), 2);
    // 6 UDH octets + 1 fill bit + 153 septets = exactly 140 octets.
    assert_eq!(parts[0].short_message.len(), 140);
    let ud = parse_udh(&parts[0].short_message).unwrap();
    assert_eq!(ud.fill_bits(), 1);
    assert_eq!(
        gsm7::unpack_all(ud.payload, ud.fill_bits()),
        vec![0x61; 153]
    );

    let single = split("hello", &options).unwrap();
    assert_eq!(single[0].short_message, [0xE8, 0x32, 0x9B, 0xFD, 0x06]);

    let options = SplitOptions::new(UDH16).with_packing(Gsm7Packing::Packed);
    let parts = split(&"a".repeat(161), &options).unwrap();
    assert_eq!(parts[0].short_message.len(), 7 + 133);
}

#[test]
fn parse_udh_concat_elements() {
    let ud = parse_udh(&[0x05, 0x00, 0x03, 0x42, 0x03, 0x02, b'h', b'i']).unwrap();
    assert_eq!(ud.header_len, 6);
    assert_eq!(
        ud.concat,
        Some(ConcatInfo {
            reference: 0x42,
            total: 3,
            seq: 2,
            wide_reference: false,
        })
    );
    assert_eq!(ud.payload, b"hi");

    let ud = parse_udh(&[0x06, 0x08, 0x04, 0xBE, 0xEF, 0x02, 0x01, 0x00, 0x41]).unwrap();
    assert_eq!(
        ud.concat,
        Some(ConcatInfo {
            reference: 0xBEEF,
            total: 2,
            seq: 1,
            wide_reference: true,
        })
    );
    assert_eq!(ud.payload, [0x00, 0x41]);
    assert_eq!(ud.fill_bits(), 0);

    // Other elements (a national language shift, an empty one) are skipped.
    let sm = [0x08, 0x24, 0x01, 0x02, 0x00, 0x03, 0x07, 0x02, 0x02, 0x61];
    let ud = parse_udh(&sm).unwrap();
    assert_eq!(
        ud.concat.map(|c| (c.reference, c.total, c.seq)),
        Some((7, 2, 2))
    );
    assert_eq!(ud.payload, b"a");
    let ud = parse_udh(&[0x02, 0x70, 0x00, 0x61]).unwrap();
    assert_eq!(ud.concat, None);
    assert_eq!(ud.payload, b"a");
    // Only a header, no payload.
    assert_eq!(parse_udh(&[0x00]).unwrap().payload, b"");
}

#[test]
fn parse_udh_invalid_concat_values_are_ignored() {
    // 23.040 §9.2.3.24.1: seq 0 or seq > total → ignore the element.
    for (total, seq) in [(2, 0), (2, 3), (0, 0), (0, 1)] {
        let sm = [0x05, 0x00, 0x03, 0x01, total, seq];
        let ud = parse_udh(&sm).unwrap();
        assert_eq!(ud.concat, None, "total {total} seq {seq}");
    }
    // A repeated element: the last one wins.
    let sm = [
        0x0A, 0x00, 0x03, 0x01, 0x02, 0x01, 0x00, 0x03, 0x09, 0x04, 0x03,
    ];
    let ud = parse_udh(&sm).unwrap();
    assert_eq!(
        ud.concat.map(|c| (c.reference, c.total, c.seq)),
        Some((9, 4, 3))
    );
}

#[test]
fn parse_udh_bad_lengths_are_errors() {
    let bad: [&[u8]; 7] = [
        &[],                                         // no UDHL
        &[0x05, 0x00, 0x03, 0x01, 0x02],             // UDHL past end
        &[0x01, 0x00],                               // IE without length
        &[0x03, 0x00, 0x03, 0x01],                   // IE data past UDH
        &[0x04, 0x00, 0x02, 0x01, 0x02],             // 8-bit concat of 2 octets
        &[0x06, 0x08, 0x03, 0x01, 0x02, 0x01, 0x00], // 16-bit concat of 3
        &[0x05, 0x00, 0x04, 0x01, 0x02, 0x01],       // IE length past UDH
    ];
    for sm in bad {
        assert!(
            matches!(parse_udh(sm), Err(TextError::MalformedUdh { .. })),
            "{sm:02X?}"
        );
    }
}

/// Reassembles split parts the way an inbound path would: strip the UDH,
/// unpack GSM if packed, concatenate, decode by data_coding.
fn reassemble(parts: &[Segment], packing: Gsm7Packing) -> String {
    let mut all = Vec::new();
    for p in parts {
        let (payload, fill) = if p.udhi {
            let ud = parse_udh(&p.short_message).unwrap();
            (ud.payload, ud.fill_bits())
        } else {
            (&p.short_message[..], 0)
        };
        if p.data_coding == 0 && packing == Gsm7Packing::Packed {
            all.extend(gsm7::unpack_all(payload, fill));
        } else {
            all.extend_from_slice(payload);
        }
    }
    decode(parts[0].data_coding, &all).unwrap()
}

/// Checks every invariant of a split against `text`.
fn check_split(text: &str, options: SplitOptions) -> Result<(), TestCaseError> {
    let Ok(parts) = split(text, &options) else {
        // Only the 255-part limit can fail for encodable input here.
        return Ok(());
    };
    let encoding = parts[0].data_coding;
    let count = count_segments_with(
        text,
        options
            .encoding
            .unwrap_or_else(|| count_segments(text).encoding),
        options.concatenation,
    )
    .unwrap();
    prop_assert_eq!(parts.len(), count.segments);
    if options.encoding.is_none() && options.concatenation == UDH8 {
        prop_assert_eq!(parts.len(), count_segments(text).segments);
    }
    prop_assert_eq!(reassemble(&parts, options.packing), text);

    if options.concatenation == Concatenation::MessagePayload {
        return Ok(());
    }
    let total = parts.len();
    for (i, p) in parts.iter().enumerate() {
        prop_assert_eq!(p.data_coding, encoding);
        prop_assert_eq!(
            p.udhi,
            total > 1
                && matches!(
                    options.concatenation,
                    Concatenation::Udh8 { .. } | Concatenation::Udh16 { .. }
                )
        );
        if let (Some(sar), Concatenation::Sar { reference }) = (p.sar, options.concatenation) {
            prop_assert_eq!(sar.msg_ref_num, reference);
            prop_assert_eq!(usize::from(sar.total_segments), total);
            prop_assert_eq!(usize::from(sar.segment_seqnum), i + 1);
        }
        if p.udhi {
            let ud = parse_udh(&p.short_message).unwrap();
            let concat = ud.concat.unwrap();
            prop_assert_eq!(usize::from(concat.total), total);
            prop_assert_eq!(usize::from(concat.seq), i + 1);
        }
        let (udh_len, body) = if p.udhi {
            let ud = parse_udh(&p.short_message).unwrap();
            (ud.header_len, ud.payload.to_vec())
        } else {
            (0, p.short_message.clone())
        };
        let unpacked_gsm = encoding == 0 && options.packing == Gsm7Packing::Unpacked;
        if unpacked_gsm {
            // 23.040 accounting: UDH septets (with fill) + text septets ≤ 160.
            prop_assert!(gsm7::udh_septets(udh_len) + body.len() <= 160);
            prop_assert_ne!(body.last(), Some(&gsm7::ESCAPE));
        } else {
            prop_assert!(p.short_message.len() <= 140);
        }
        if encoding == 0x08 {
            prop_assert!(body.len() % 2 == 0);
            let first = body.first().copied();
            let last_hi = body.len().checked_sub(2).and_then(|i| body.get(i)).copied();
            prop_assert!(
                !matches!(first, Some(0xDC..=0xDF)),
                "part starts with a low surrogate"
            );
            prop_assert!(
                !matches!(last_hi, Some(0xD8..=0xDB)),
                "part ends with a high surrogate"
            );
        }
        if encoding == 0 && options.packing == Gsm7Packing::Packed {
            let septets = gsm7::unpack_all(&body, gsm7::fill_bits(udh_len));
            prop_assert_ne!(septets.last(), Some(&gsm7::ESCAPE));
        }
    }
    Ok(())
}

fn gsm_text() -> impl Strategy<Value = String> {
    // Weighted towards extension characters so they land on boundaries.
    let chars = proptest::sample::select(vec![
        'a', 'Z', ' ', '@', '€', '{', '\\', '|', 'Ω', 'é', '\n', '\r',
    ]);
    proptest::collection::vec(chars, 0..700).prop_map(|v| v.into_iter().collect())
}

fn ucs2_text() -> impl Strategy<Value = String> {
    let chars = proptest::sample::select(vec![
        'a',
        'й',
        '😀',
        '🇫',
        '€',
        'ç',
        '\u{FFFF}',
        '\u{10FFFF}',
    ]);
    proptest::collection::vec(chars, 0..300).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn split_any_string(text in any::<String>()) {
        for mode in ALL_MODES {
            check_split(&text, SplitOptions::new(mode))?;
        }
    }

    #[test]
    fn split_gsm_text(text in gsm_text()) {
        for mode in ALL_MODES {
            check_split(&text, SplitOptions::new(mode))?;
        }
    }

    #[test]
    fn split_ucs2_text(text in ucs2_text()) {
        for mode in ALL_MODES {
            check_split(&text, SplitOptions::new(mode))?;
            check_split(&text, SplitOptions::new(mode).with_encoding(Encoding::Ucs2))?;
        }
    }

    #[test]
    fn split_latin1_text(text in "[\\u{0}-\\u{ff}]{0,500}") {
        for mode in ALL_MODES {
            check_split(&text, SplitOptions::new(mode).with_encoding(Encoding::Latin1))?;
        }
    }

    /// Packed parts are read back from octet lengths alone, which 23.038
    /// §6.1.2.3.1 makes ambiguous for a real final CR on an octet boundary,
    /// so CR is left out of this alphabet (see `seven_spare_bits_and_the_at_sign`).
    #[test]
    fn split_gsm_text_packed(text in gsm_text().prop_map(|t| t.replace('\r', "\n"))) {
        for mode in ALL_MODES {
            check_split(&text, SplitOptions::new(mode).with_packing(Gsm7Packing::Packed))?;
        }
    }

    #[test]
    fn parse_udh_never_panics(sm in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(ud) = parse_udh(&sm) {
            prop_assert_eq!(ud.header_len + ud.payload.len(), sm.len());
        }
    }
}
