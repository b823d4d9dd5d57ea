//! Encodings: the GSM 03.38 tables, packing, UCS-2, Latin-1 and data_coding.

use proptest::prelude::*;
use sairex_pdu::text::{
    Alphabet, Encoding, TextError, choose_encoding, decode, gsm7, latin1, ucs2,
};

/// 3GPP TS 23.038 §6.2.1, the default alphabet, written out from the spec's
/// table column by column. 0x1B (escape) is not a character and is absent.
const DEFAULT_TABLE: [(u8, char); 127] = [
    (0x00, '@'),
    (0x01, '£'),
    (0x02, '$'),
    (0x03, '¥'),
    (0x04, 'è'),
    (0x05, 'é'),
    (0x06, 'ù'),
    (0x07, 'ì'),
    (0x08, 'ò'),
    (0x09, 'Ç'),
    (0x0A, '\n'),
    (0x0B, 'Ø'),
    (0x0C, 'ø'),
    (0x0D, '\r'),
    (0x0E, 'Å'),
    (0x0F, 'å'),
    (0x10, 'Δ'),
    (0x11, '_'),
    (0x12, 'Φ'),
    (0x13, 'Γ'),
    (0x14, 'Λ'),
    (0x15, 'Ω'),
    (0x16, 'Π'),
    (0x17, 'Ψ'),
    (0x18, 'Σ'),
    (0x19, 'Θ'),
    (0x1A, 'Ξ'),
    (0x1C, 'Æ'),
    (0x1D, 'æ'),
    (0x1E, 'ß'),
    (0x1F, 'É'),
    (0x20, ' '),
    (0x21, '!'),
    (0x22, '"'),
    (0x23, '#'),
    (0x24, '¤'),
    (0x25, '%'),
    (0x26, '&'),
    (0x27, '\''),
    (0x28, '('),
    (0x29, ')'),
    (0x2A, '*'),
    (0x2B, '+'),
    (0x2C, ','),
    (0x2D, '-'),
    (0x2E, '.'),
    (0x2F, '/'),
    (0x30, '0'),
    (0x31, '1'),
    (0x32, '2'),
    (0x33, '3'),
    (0x34, '4'),
    (0x35, '5'),
    (0x36, '6'),
    (0x37, '7'),
    (0x38, '8'),
    (0x39, '9'),
    (0x3A, ':'),
    (0x3B, ';'),
    (0x3C, '<'),
    (0x3D, '='),
    (0x3E, '>'),
    (0x3F, '?'),
    (0x40, '¡'),
    (0x41, 'A'),
    (0x42, 'B'),
    (0x43, 'C'),
    (0x44, 'D'),
    (0x45, 'E'),
    (0x46, 'F'),
    (0x47, 'G'),
    (0x48, 'H'),
    (0x49, 'I'),
    (0x4A, 'J'),
    (0x4B, 'K'),
    (0x4C, 'L'),
    (0x4D, 'M'),
    (0x4E, 'N'),
    (0x4F, 'O'),
    (0x50, 'P'),
    (0x51, 'Q'),
    (0x52, 'R'),
    (0x53, 'S'),
    (0x54, 'T'),
    (0x55, 'U'),
    (0x56, 'V'),
    (0x57, 'W'),
    (0x58, 'X'),
    (0x59, 'Y'),
    (0x5A, 'Z'),
    (0x5B, 'Ä'),
    (0x5C, 'Ö'),
    (0x5D, 'Ñ'),
    (0x5E, 'Ü'),
    (0x5F, '§'),
    (0x60, '¿'),
    (0x61, 'a'),
    (0x62, 'b'),
    (0x63, 'c'),
    (0x64, 'd'),
    (0x65, 'e'),
    (0x66, 'f'),
    (0x67, 'g'),
    (0x68, 'h'),
    (0x69, 'i'),
    (0x6A, 'j'),
    (0x6B, 'k'),
    (0x6C, 'l'),
    (0x6D, 'm'),
    (0x6E, 'n'),
    (0x6F, 'o'),
    (0x70, 'p'),
    (0x71, 'q'),
    (0x72, 'r'),
    (0x73, 's'),
    (0x74, 't'),
    (0x75, 'u'),
    (0x76, 'v'),
    (0x77, 'w'),
    (0x78, 'x'),
    (0x79, 'y'),
    (0x7A, 'z'),
    (0x7B, 'ä'),
    (0x7C, 'ö'),
    (0x7D, 'ñ'),
    (0x7E, 'ü'),
    (0x7F, 'à'),
];

/// 3GPP TS 23.038 §6.2.1.1, the extension table (codes after 0x1B).
const EXTENSION_TABLE: [(u8, char); 10] = [
    (0x0A, '\u{000C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

#[test]
fn default_table_every_entry() {
    for (code, c) in DEFAULT_TABLE {
        let text = c.to_string();
        assert_eq!(gsm7::encode(&text).unwrap(), [code], "encode {c:?}");
        assert_eq!(gsm7::decode(&[code]), text, "decode {code:#04x}");
        assert_eq!(gsm7::encode_char(c), Some(gsm7::Septets::Basic(code)));
    }
    // 127 characters plus the escape code cover all 128 septets.
    let mut codes: Vec<u8> = DEFAULT_TABLE.iter().map(|&(k, _)| k).collect();
    codes.push(gsm7::ESCAPE);
    codes.sort_unstable();
    assert_eq!(codes, (0..128).collect::<Vec<u8>>());
}

#[test]
fn extension_table_every_entry() {
    for (code, c) in EXTENSION_TABLE {
        let text = c.to_string();
        assert_eq!(gsm7::encode(&text).unwrap(), [0x1B, code], "encode {c:?}");
        assert_eq!(gsm7::decode(&[0x1B, code]), text, "decode 1B {code:#04x}");
        assert_eq!(gsm7::septet_count(&text), Some(2));
    }
}

#[test]
fn unknown_extension_falls_back_to_the_default_table() {
    // Every escape code not in the extension table shows the base character
    // (23.038 §6.2.1.1); 1B 1B shows a space (23.038 §6.2.1 note 1).
    for code in 0u8..128 {
        let decoded = gsm7::decode(&[0x1B, code]);
        if let Some(&(_, c)) = EXTENSION_TABLE.iter().find(|&&(k, _)| k == code) {
            assert_eq!(decoded, c.to_string());
        } else if code == 0x1B {
            assert_eq!(decoded, " ");
        } else {
            assert_eq!(decoded, gsm7::decode(&[code]), "1B {code:#04x}");
        }
    }
    assert_eq!(gsm7::decode(&[0x1B, 0x41]), "A");
    assert_eq!(gsm7::decode(&[0x1B, 0x0D]), "\r"); // reserved CR2
    assert_eq!(gsm7::decode(&[0x1B, 0x1B, 0x41]), " A");
}

#[test]
fn trailing_escape_and_non_septets_do_not_panic() {
    assert_eq!(gsm7::decode(&[0x41, 0x1B]), "A ");
    assert_eq!(gsm7::decode(&[0x1B]), " ");
    assert_eq!(gsm7::decode(&[0x80, 0x41]), "\u{FFFD}A");
    assert_eq!(gsm7::decode(&[0x1B, 0xC1]), " \u{FFFD}");
}

#[test]
fn characters_outside_the_alphabet_are_rejected() {
    assert_eq!(
        gsm7::encode("ab`c"),
        Err(TextError::Unencodable {
            encoding: Encoding::Gsm7,
            character: '`',
            offset: 2,
        })
    );
    // ç is not in the table (only Ç at 0x09), nor is Greek lower case.
    for c in ['ç', 'α', 'Ā', '😀', '\t', '`'] {
        assert!(gsm7::encode_char(c).is_none(), "{c:?}");
    }
    assert_eq!(gsm7::encode_lossy("a`€"), [0x61, b'?', 0x1B, 0x65]);
}

#[test]
fn packed_known_vectors() {
    let hello = gsm7::encode("hello").unwrap();
    assert_eq!(gsm7::pack(&hello, 0), [0xE8, 0x32, 0x9B, 0xFD, 0x06]);
    let hh = gsm7::encode("hellohello").unwrap();
    assert_eq!(
        gsm7::pack(&hh, 0),
        [0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37]
    );
    // 8 septets fill exactly 7 octets, no spare bits.
    let eight = gsm7::encode("12345678").unwrap();
    let packed = gsm7::pack(&eight, 0);
    assert_eq!(packed, [0x31, 0xD9, 0x8C, 0x56, 0xB3, 0xDD, 0x70]);
    assert_eq!(gsm7::unpack_all(&packed, 0), eight);
    // After a 6-octet UDH one fill bit precedes the first septet.
    assert_eq!(gsm7::pack(&hello, 1), [0xD0, 0x65, 0x36, 0xFB, 0x0D]);
    assert_eq!(
        gsm7::unpack(&[0xD0, 0x65, 0x36, 0xFB, 0x0D], 1, 5).unwrap(),
        hello
    );
}

#[test]
fn seven_spare_bits_and_the_at_sign() {
    // 7 septets leave 7 spare bits: zero padding reads back as a final '@'
    // when only the octet length is known, CR padding does not.
    let seven = gsm7::encode("1234567").unwrap();
    let zero = gsm7::pack(&seven, 0);
    assert_eq!(zero, [0x31, 0xD9, 0x8C, 0x56, 0xB3, 0xDD, 0x00]);
    assert_eq!(gsm7::decode(&gsm7::unpack_all(&zero, 0)), "1234567@");
    assert_eq!(gsm7::unpack(&zero, 0, 7).unwrap(), seven);

    let cr = gsm7::pack_cr_padded(&seven, 0);
    assert_eq!(cr, [0x31, 0xD9, 0x8C, 0x56, 0xB3, 0xDD, 0x1A]);
    assert_eq!(gsm7::decode(&gsm7::unpack_all(&cr, 0)), "1234567");

    // A real '@' as the 7th septet, zero-padded: exact count keeps it.
    let at = gsm7::encode("123456@").unwrap();
    let packed = gsm7::pack(&at, 0);
    assert_eq!(packed, [0x31, 0xD9, 0x8C, 0x56, 0xB3, 0x01, 0x00]);
    assert_eq!(gsm7::unpack(&packed, 0, 7).unwrap(), at);
    let cr = gsm7::pack_cr_padded(&at, 0);
    assert_eq!(gsm7::decode(&gsm7::unpack_all(&cr, 0)), "123456@");

    // CR padding only applies with exactly 7 spare bits.
    assert_eq!(gsm7::pack_cr_padded(&hello(), 0), gsm7::pack(&hello(), 0));
}

fn hello() -> Vec<u8> {
    gsm7::encode("hello").unwrap()
}

#[test]
fn unpack_bounds() {
    assert_eq!(
        gsm7::unpack(&[0xE8, 0x32], 0, 3),
        Err(TextError::SeptetsOutOfRange {
            requested: 3,
            available: 2,
        })
    );
    assert_eq!(gsm7::unpack_all(&[], 6), Vec::<u8>::new());
    assert_eq!(gsm7::unpack_all(&[0xFF], 200), Vec::<u8>::new());
    assert_eq!(gsm7::pack(&[], 0), Vec::<u8>::new());
    // Fill bits alone still take an octet: TP-UD is ceil(7 * UDL / 8)
    // octets with the UDH's septets counted in UDL (23.040 §9.2.3.16).
    assert_eq!(gsm7::pack(&[], 3), [0x00]);
}

#[test]
fn fill_bits_and_udh_septets() {
    assert_eq!(gsm7::fill_bits(0), 0);
    assert_eq!(gsm7::fill_bits(6), 1); // 48 bits + 1 = 7 septets
    assert_eq!(gsm7::fill_bits(7), 0); // 56 bits = 8 septets
    assert_eq!(gsm7::fill_bits(3), 4);
    assert_eq!(gsm7::udh_septets(6), 7);
    assert_eq!(gsm7::udh_septets(7), 8);
    for len in 0..=140 {
        assert_eq!((len * 8 + usize::from(gsm7::fill_bits(len))) % 7, 0);
        assert_eq!(
            gsm7::udh_septets(len) * 7,
            len * 8 + usize::from(gsm7::fill_bits(len))
        );
    }
}

#[test]
fn ucs2_bmp_and_surrogates() {
    assert_eq!(ucs2::encode("Aé€"), [0x00, 0x41, 0x00, 0xE9, 0x20, 0xAC]);
    assert_eq!(ucs2::encode("😀"), [0xD8, 0x3D, 0xDE, 0x00]);
    assert_eq!(ucs2::decode(&[0xD8, 0x3D, 0xDE, 0x00]), "😀");
    assert_eq!(ucs2::unit_count("a😀"), 3);
    assert_eq!(ucs2::decode(&[0x04, 0x1F, 0x04, 0x40]), "Пр");
}

#[test]
fn ucs2_tolerates_damage() {
    // Lone high surrogate, lone low surrogate, odd trailing octet.
    assert_eq!(ucs2::decode(&[0xD8, 0x3D, 0x00, 0x41]), "\u{FFFD}A");
    assert_eq!(ucs2::decode(&[0xDE, 0x00]), "\u{FFFD}");
    assert_eq!(ucs2::decode(&[0x00, 0x41, 0x00]), "A\u{FFFD}");
    assert_eq!(ucs2::decode(&[0xD8, 0x3D, 0xDE]), "\u{FFFD}\u{FFFD}");
}

#[test]
fn latin1_and_ascii() {
    assert_eq!(latin1::encode("Zürich ÿ").unwrap(), b"Z\xFCrich \xFF");
    assert_eq!(latin1::decode(b"Z\xFCrich \xFF"), "Zürich ÿ");
    assert_eq!(
        latin1::encode("a€"),
        Err(TextError::Unencodable {
            encoding: Encoding::Latin1,
            character: '€',
            offset: 1,
        })
    );
    assert_eq!(latin1::decode_ascii(b"ok\xE9"), "ok\u{FFFD}");
}

#[test]
fn choose_and_data_coding() {
    assert_eq!(choose_encoding("Hello {world} €5"), Encoding::Gsm7);
    assert_eq!(choose_encoding(""), Encoding::Gsm7);
    assert_eq!(choose_encoding("ça va"), Encoding::Ucs2);
    assert_eq!(choose_encoding("hi 😀"), Encoding::Ucs2);
    assert_eq!(Encoding::Gsm7.data_coding(), 0x00);
    assert_eq!(Encoding::Latin1.data_coding(), 0x03);
    assert_eq!(Encoding::Ucs2.data_coding(), 0x08);
}

#[test]
fn decode_by_data_coding() {
    assert_eq!(decode(0x00, &[0x1B, 0x65, 0x31]).unwrap(), "€1");
    assert_eq!(decode(0x01, b"plain").unwrap(), "plain");
    assert_eq!(decode(0x03, b"\xE9").unwrap(), "é");
    assert_eq!(decode(0x08, &[0xD8, 0x3D, 0xDE, 0x00]).unwrap(), "😀");
    for dc in [0x02, 0x04, 0x14, 0x15, 0xF4, 0xF5, 0xF6, 0xF7] {
        assert_eq!(decode(dc, b"x"), Err(TextError::Binary { data_coding: dc }));
    }
    for dc in [
        0x05, 0x06, 0x07, 0x09, 0x0A, 0x0D, 0x0E, 0x1C, 0x20, 0x36, 0x80, 0xBF,
    ] {
        assert_eq!(
            decode(dc, b"x"),
            Err(TextError::UnsupportedDataCoding { data_coding: dc }),
            "{dc:#04x}"
        );
    }
    // GSM DCS groups: general (class bits), automatic deletion, MWI, 0xFx.
    let cases = [
        (0x10, Alphabet::Gsm7),
        (0x11, Alphabet::Gsm7),
        (0x18, Alphabet::Ucs2),
        (0x19, Alphabet::Ucs2),
        (0x40, Alphabet::Gsm7),
        (0x48, Alphabet::Ucs2),
        (0xC0, Alphabet::Gsm7),
        (0xD8, Alphabet::Gsm7),
        (0xE0, Alphabet::Ucs2),
        (0xF0, Alphabet::Gsm7),
        (0xF1, Alphabet::Gsm7),
        (0xF3, Alphabet::Gsm7),
        (0xF4, Alphabet::Binary),
    ];
    for (dc, alphabet) in cases {
        assert_eq!(
            Alphabet::from_data_coding(dc).unwrap(),
            alphabet,
            "{dc:#04x}"
        );
    }
    assert_eq!(decode(0xF1, &[0x68, 0x69]).unwrap(), "hi");
    assert_eq!(decode(0x18, &[0x00, 0x68]).unwrap(), "h");
}

fn gsm_char() -> impl Strategy<Value = char> {
    let mut all: Vec<char> = DEFAULT_TABLE.iter().map(|&(_, c)| c).collect();
    all.extend(EXTENSION_TABLE.iter().map(|&(_, c)| c));
    proptest::sample::select(all)
}

proptest! {
    #[test]
    fn gsm7_round_trip(text in proptest::collection::vec(gsm_char(), 0..400)) {
        let text: String = text.into_iter().collect();
        let septets = gsm7::encode(&text).unwrap();
        prop_assert_eq!(Some(septets.len()), gsm7::septet_count(&text));
        prop_assert_eq!(gsm7::decode(&septets), text.clone());
        prop_assert_eq!(Encoding::Gsm7.decode(&Encoding::Gsm7.encode(&text).unwrap()), text);
    }

    #[test]
    fn pack_unpack_round_trip(
        septets in proptest::collection::vec(0u8..128, 0..400),
        fill in 0u8..7,
    ) {
        let packed = gsm7::pack(&septets, fill);
        prop_assert_eq!(packed.len(), (usize::from(fill) + 7 * septets.len()).div_ceil(8));
        prop_assert_eq!(gsm7::unpack(&packed, fill, septets.len()).unwrap(), septets.clone());
        // With CR padding the octet length alone is enough, unless the text
        // itself ends in CR exactly on an octet boundary (23.038 §6.1.2.3.1).
        let ends_in_cr_on_boundary = septets.last() == Some(&0x0D)
            && (usize::from(fill) + 7 * septets.len()) % 8 == 0;
        if !ends_in_cr_on_boundary {
            let cr = gsm7::pack_cr_padded(&septets, fill);
            prop_assert_eq!(cr.len(), packed.len());
            prop_assert_eq!(gsm7::unpack_all(&cr, fill), septets);
        }
    }

    #[test]
    fn ucs2_round_trip(text in any::<String>()) {
        let bytes = ucs2::encode(&text);
        prop_assert_eq!(bytes.len(), 2 * ucs2::unit_count(&text));
        prop_assert_eq!(ucs2::decode(&bytes), text);
    }

    #[test]
    fn latin1_round_trip(text in "[\\u{0}-\\u{ff}]{0,300}") {
        let bytes = latin1::encode(&text).unwrap();
        prop_assert_eq!(bytes.len(), text.chars().count());
        prop_assert_eq!(latin1::decode(&bytes), text);
    }

    #[test]
    fn decoders_never_panic(data_coding in any::<u8>(), bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(data_coding, &bytes);
        let _ = gsm7::unpack_all(&bytes, data_coding);
        let _ = gsm7::decode(&bytes);
    }
}
