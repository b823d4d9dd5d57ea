//! Delivery receipt parsing, merging with TLVs, formatting and id matching.

use proptest::prelude::*;
use sairex_pdu::receipt::{
    MessageState, Receipt, ReceiptDate, ReceiptError, TEXT_LIMIT, id_candidates, ids_match,
    same_spelling,
};

fn date(digits: &str) -> Option<ReceiptDate> {
    ReceiptDate::parse(digits.as_bytes())
}

fn parse(text: &str) -> Receipt {
    Receipt::parse(text.as_bytes()).unwrap()
}

// ---- MessageState ----------------------------------------------------------

#[test]
fn message_state_values_follow_smpp() {
    let expected = [
        (1, "ENROUTE"),
        (2, "DELIVRD"),
        (3, "EXPIRED"),
        (4, "DELETED"),
        (5, "UNDELIV"),
        (6, "ACCEPTD"),
        (7, "UNKNOWN"),
        (8, "REJECTD"),
        (9, "SKIPPED"),
    ];
    for (state, (value, word)) in MessageState::ALL.into_iter().zip(expected) {
        assert_eq!(state.as_u8(), value);
        assert_eq!(MessageState::from_u8(value), Some(state));
        assert_eq!(state.stat_word(), word);
        assert_eq!(state.to_string(), word);
        assert_eq!(MessageState::from_stat(word.as_bytes()), Some(state));
        assert_eq!(
            MessageState::from_stat(value.to_string().as_bytes()),
            Some(state)
        );
    }
    assert_eq!(MessageState::from_u8(0), None);
    assert_eq!(MessageState::from_u8(10), None);
    assert_eq!(MessageState::from_u8(255), None);
}

#[test]
fn stat_word_variants() {
    use MessageState::*;
    let cases: &[(&[u8], Option<MessageState>)] = &[
        (b"delivrd", Some(Delivered)),
        (b"Delivered", Some(Delivered)),
        (b" DELIVRD\0", Some(Delivered)),
        (b"UNDELIVERABLE", Some(Undeliverable)),
        (b"undelivered", Some(Undeliverable)),
        (b"FAILED", Some(Undeliverable)),
        (b"REJECTED", Some(Rejected)),
        (b"ACCEPTED", Some(Accepted)),
        (b"EN_ROUTE", Some(Enroute)),
        (b"", None),
        (b"0", None),
        (b"DELIV", None),
        (b"DELIVRDX", None),
        (b"UNDELIVERABLEXYZ", None),
        (b"\xff\xfe", None),
    ];
    for (word, state) in cases {
        assert_eq!(
            MessageState::from_stat(word),
            *state,
            "{}",
            String::from_utf8_lossy(word)
        );
    }
}

#[test]
fn only_enroute_is_not_final() {
    for state in MessageState::ALL {
        assert_eq!(state.is_final(), state != MessageState::Enroute, "{state}");
    }
}

// ---- ReceiptDate -----------------------------------------------------------

#[test]
fn dates_of_10_and_12_digits() {
    let d = date("2403151742").unwrap();
    assert_eq!(
        (
            d.year(),
            d.month(),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        (24, 3, 15, 17, 42, None)
    );
    assert_eq!(d.full_year(), 2024);
    assert_eq!(d.to_string(), "2403151742");

    let d = date("240315174259").unwrap();
    assert_eq!(d.second(), Some(59));
    assert_eq!(d.to_string(), "240315174259");
}

#[test]
fn invalid_dates_are_rejected() {
    for bad in [
        "",
        "240315174",     // 9 digits
        "24031517421",   // 11 digits
        "2403151742123", // 13 digits
        "2413151742",    // month 13
        "2400151742",    // month 0
        "2403001742",    // day 0
        "2404311742",    // 31 April
        "2502291200",    // 29 Feb in a non-leap year
        "2403152400",    // hour 24
        "2403151760",    // minute 60
        "240315174260",  // second 60
        "24031517a2",
        "-403151742",
    ] {
        assert_eq!(date(bad), None, "{bad}");
    }
    assert!(date("2402291200").is_some(), "2024 is a leap year");
    assert!(date("0002291200").is_some(), "2000 is a leap year");
    assert_eq!(ReceiptDate::new(100, 1, 1, 0, 0, None), None);
}

// ---- Parsing ---------------------------------------------------------------

#[test]
fn appendix_b_example() {
    let r = parse(
        "id:0123456789 sub:001 dlvrd:001 submit date:0610191018 done date:0610191018 \
         stat:DELIVRD err:000 text:Hello world, this is",
    );
    assert_eq!(
        r,
        Receipt {
            id: "0123456789".into(),
            sub: Some(1),
            dlvrd: Some(1),
            submit_date: date("0610191018"),
            done_date: date("0610191018"),
            stat: "DELIVRD".into(),
            state: Some(MessageState::Delivered),
            err: Some("000".into()),
            text: b"Hello world, this is".to_vec(),
        }
    );
    assert!(r.submit_date.is_some());
    assert!(r.is_final());
}

#[test]
fn kannel_style_with_capital_text_key() {
    let r = parse(
        "id:1529437183 sub:001 dlvrd:000 submit date:1806191623 done date:1806191624 \
         stat:UNDELIV err:001 Text:Your code is 1234",
    );
    assert_eq!(r.id, "1529437183");
    assert_eq!(r.dlvrd, Some(0));
    assert_eq!(r.state, Some(MessageState::Undeliverable));
    assert_eq!(r.err.as_deref(), Some("001"));
    assert_eq!(r.text, b"Your code is 1234");
}

#[test]
fn upper_case_keys() {
    let r = parse(
        "ID:ABC123 SUB:001 DLVRD:001 SUBMIT DATE:2001011200 DONE DATE:2001011201 \
         STAT:DELIVRD ERR:000 TEXT:hi",
    );
    assert_eq!(r.id, "ABC123");
    assert_eq!(r.submit_date, date("2001011200"));
    assert_eq!(r.done_date, date("2001011201"));
    assert_eq!(r.state, Some(MessageState::Delivered));
    assert_eq!(r.text, b"hi");

    let r = parse("Id:7 Stat:Rejected Err:0x0B");
    assert_eq!(r.stat, "Rejected");
    assert_eq!(r.state, Some(MessageState::Rejected));
    assert_eq!(r.err.as_deref(), Some("0x0B"));
}

#[test]
fn twelve_digit_dates() {
    let r = parse(
        "id:7220348389 sub:001 dlvrd:001 submit date:200415153212 done date:200415153215 \
         stat:DELIVRD err:000 text:",
    );
    assert_eq!(r.submit_date.and_then(|d| d.second()), Some(12));
    assert_eq!(r.done_date.and_then(|d| d.second()), Some(15));
    assert_eq!(r.text, b"");
}

#[test]
fn missing_sub_dlvrd_dates_err_and_text() {
    let r = parse("id:42 stat:EXPIRED");
    assert_eq!(
        r,
        Receipt {
            id: "42".into(),
            sub: None,
            dlvrd: None,
            submit_date: None,
            done_date: None,
            stat: "EXPIRED".into(),
            state: Some(MessageState::Expired),
            err: None,
            text: Vec::new(),
        }
    );
}

#[test]
fn extra_fields_are_ignored() {
    let r = parse(
        "id:2064213862 sub:001 dlvrd:001 submit date:1807171150 done date:1807171150 \
         stat:DELIVRD err:000 mcc:234 mnc:15 dlr_id:99887 Text:Test",
    );
    assert_eq!(r.id, "2064213862");
    assert_eq!(r.state, Some(MessageState::Delivered));
    assert_eq!(r.err.as_deref(), Some("000"));
    assert_eq!(r.text, b"Test");

    // An unknown key ending in "id" must not be taken for the id.
    let r = parse("dlr_id:55 msgid:66 id:77 stat:DELIVRD");
    assert_eq!(r.id, "77");
}

#[test]
fn hex_and_zero_padded_ids_are_kept_as_sent() {
    assert_eq!(parse("id:5D2F8A1C stat:DELIVRD").id, "5D2F8A1C");
    assert_eq!(parse("id:0000012345 stat:DELIVRD").id, "0000012345");
    assert_eq!(
        parse("id:6f1e2b4a-0c3d-4e5f-9a8b-7c6d5e4f3a2b stat:DELIVRD").id,
        "6f1e2b4a-0c3d-4e5f-9a8b-7c6d5e4f3a2b"
    );
}

#[test]
fn underscore_spellings_and_extra_spaces() {
    let r = parse(
        "  id: 99   sub:1\tdlvrd:1  submit_date:2401011200 done_date:2401011205 \
         stat:  DELIVRD  err:000 text:x  ",
    );
    assert_eq!(r.id, "99");
    assert_eq!(r.sub, Some(1));
    assert_eq!(r.dlvrd, Some(1));
    assert_eq!(r.submit_date, date("2401011200"));
    assert_eq!(r.done_date, date("2401011205"));
    assert_eq!(r.state, Some(MessageState::Delivered));
    // Text is kept verbatim, including trailing spaces.
    assert_eq!(r.text, b"x  ");

    let r = parse("id:1 submit   date:2401011200 DONE  Date:2401011205 stat:DELIVRD");
    assert_eq!(r.submit_date, date("2401011200"));
    assert_eq!(r.done_date, date("2401011205"));
}

#[test]
fn empty_values_do_not_swallow_the_next_field() {
    let r = parse("id:5 sub: dlvrd:001 submit date: done date:2401011200 stat:DELIVRD err: text:");
    assert_eq!(r.sub, None);
    assert_eq!(r.dlvrd, Some(1));
    assert_eq!(r.submit_date, None);
    assert_eq!(r.done_date, date("2401011200"));
    assert_eq!(r.err, None);
}

#[test]
fn text_may_contain_colons_keywords_and_non_utf8() {
    let r = parse("id:1 stat:DELIVRD err:000 text:id:2 stat:UNDELIV err:9 at 10:30");
    assert_eq!(r.id, "1");
    assert_eq!(r.state, Some(MessageState::Delivered));
    assert_eq!(r.err.as_deref(), Some("000"));
    assert_eq!(r.text, b"id:2 stat:UNDELIV err:9 at 10:30");

    let r = Receipt::parse(b"id:1 stat:DELIVRD text:caf\xe9 \xff\x00\x00").unwrap();
    assert_eq!(r.text, b"caf\xe9 \xff");
}

#[test]
fn invalid_dates_and_counts_become_none() {
    let r = parse(
        "id:1 sub:abc dlvrd:99999999999 submit date:2413011200 done date:24010112 stat:DELIVRD",
    );
    assert_eq!(r.sub, None);
    assert_eq!(r.dlvrd, None);
    assert_eq!(r.submit_date, None);
    assert_eq!(r.done_date, None);
    assert_eq!(r.state, Some(MessageState::Delivered));
}

#[test]
fn first_of_repeated_fields_wins() {
    let r = parse("id:1 stat:DELIVRD id:2 stat:UNDELIV");
    assert_eq!(r.id, "1");
    assert_eq!(r.state, Some(MessageState::Delivered));
}

#[test]
fn unrecognised_stat_is_kept_raw() {
    let r = parse("id:1 stat:WEIRD");
    assert_eq!(r.stat, "WEIRD");
    assert_eq!(r.state, None);
    assert!(!r.is_final());
}

#[test]
fn errors_say_what_is_missing() {
    assert_eq!(
        Receipt::parse(b"stat:DELIVRD err:000"),
        Err(ReceiptError::MissingId)
    );
    assert_eq!(
        Receipt::parse(b"id: stat:DELIVRD"),
        Err(ReceiptError::MissingId)
    );
    assert_eq!(Receipt::parse(b""), Err(ReceiptError::MissingId));
    assert_eq!(
        Receipt::parse(b"hello, this is not a receipt"),
        Err(ReceiptError::MissingId)
    );
    assert_eq!(
        Receipt::parse(b"id:123 sub:001 err:000 text:stat:DELIVRD"),
        Err(ReceiptError::MissingStat)
    );
    assert_eq!(
        Receipt::parse(b"id:12\xff3 stat:DELIVRD"),
        Err(ReceiptError::InvalidId("12\u{fffd}3".into()))
    );
    let msg = ReceiptError::MissingStat.to_string();
    assert!(msg.contains("stat"), "{msg}");
}

// ---- Merging with TLVs -----------------------------------------------------

#[test]
fn tlvs_take_precedence_over_text() {
    let text = b"id:111 sub:001 dlvrd:000 submit date:2401011200 done date:2401011201 \
                 stat:ENROUTE err:000 text:hello";
    let r = Receipt::from_deliver_sm(text, Some(b"6F\0"), Some(2)).unwrap();
    assert_eq!(r.id, "6F");
    assert_eq!(r.state, Some(MessageState::Delivered));
    // The raw word is kept as sent even though the TLV overrides it.
    assert_eq!(r.stat, "ENROUTE");
    // The rest comes from the text.
    assert_eq!(r.submit_date, date("2401011200"));
    assert_eq!(r.err.as_deref(), Some("000"));
    assert_eq!(r.text, b"hello");
}

#[test]
fn tlvs_alone_with_empty_text() {
    let r = Receipt::from_deliver_sm(b"", Some(b"abc123"), Some(5)).unwrap();
    assert_eq!(
        r,
        Receipt {
            id: "abc123".into(),
            sub: None,
            dlvrd: None,
            submit_date: None,
            done_date: None,
            stat: "UNDELIV".into(),
            state: Some(MessageState::Undeliverable),
            err: None,
            text: Vec::new(),
        }
    );
}

#[test]
fn tlv_fills_what_the_text_lacks() {
    let r = Receipt::from_deliver_sm(b"stat:DELIVRD err:000", Some(b"9"), None).unwrap();
    assert_eq!(
        (r.id.as_str(), r.state),
        ("9", Some(MessageState::Delivered))
    );

    let r = Receipt::from_deliver_sm(b"id:9 err:000", None, Some(8)).unwrap();
    assert_eq!(
        (r.stat.as_str(), r.state),
        ("REJECTD", Some(MessageState::Rejected))
    );
}

#[test]
fn bad_tlvs_fall_back_to_text() {
    let text = b"id:111 stat:DELIVRD";
    for bad_id in [&b""[..], b"\0", b"  ", b"a\x01b"] {
        let r = Receipt::from_deliver_sm(text, Some(bad_id), None).unwrap();
        assert_eq!(r.id, "111");
    }
    let r = Receipt::from_deliver_sm(text, None, Some(0)).unwrap();
    assert_eq!(r.state, Some(MessageState::Delivered));

    assert_eq!(
        Receipt::from_deliver_sm(b"", Some(b"1"), Some(42)),
        Err(ReceiptError::UnknownTlvState(42))
    );
    assert_eq!(
        Receipt::from_deliver_sm(b"", Some(b"1"), None),
        Err(ReceiptError::MissingStat)
    );
    assert_eq!(
        Receipt::from_deliver_sm(b"", None, Some(2)),
        Err(ReceiptError::MissingId)
    );
}

// ---- Formatting ------------------------------------------------------------

#[test]
fn format_is_canonical_appendix_b() {
    let r = Receipt {
        submit_date: date("2401011200"),
        done_date: date("2401011201"),
        text: b"Hello world, this is a long message".to_vec(),
        ..Receipt::new("abc123", MessageState::Delivered)
    };
    assert_eq!(
        r.format(),
        b"id:abc123 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 \
          stat:DELIVRD err:000 text:Hello world, this is"
    );
    let r = Receipt::new("7", MessageState::Expired);
    assert_eq!(
        r.format(),
        b"id:7 sub:001 dlvrd:000 stat:EXPIRED err:000 text:"
    );
}

#[test]
fn format_truncates_text_by_characters() {
    let text = "ééééééééééééééééééééééé"; // 23 two-byte characters
    let r = Receipt {
        text: text.as_bytes().to_vec(),
        ..Receipt::new("1", MessageState::Delivered)
    };
    let parsed = Receipt::parse(&r.format()).unwrap();
    assert_eq!(parsed.text, "éééééééééééééééééééé".as_bytes());
    assert_eq!(
        std::str::from_utf8(&parsed.text).unwrap().chars().count(),
        TEXT_LIMIT
    );

    // Not UTF-8: cut at 20 bytes.
    let r = Receipt {
        text: vec![0xff; 30],
        ..Receipt::new("1", MessageState::Delivered)
    };
    assert_eq!(Receipt::parse(&r.format()).unwrap().text, vec![0xff; 20]);
}

#[test]
fn format_parse_round_trip() {
    let r = Receipt {
        sub: Some(3),
        dlvrd: Some(2),
        submit_date: date("991231235959"),
        done_date: date("0001010000"),
        err: Some("0x0B".into()),
        text: b"a:b stat:X text:y".to_vec(),
        ..Receipt::new("0xDEADbeef", MessageState::Rejected)
    };
    assert_eq!(Receipt::parse(&r.format()), Ok(r));
}

// ---- Id correlation --------------------------------------------------------

#[test]
fn ids_match_truth_table() {
    let cases = [
        // Exact.
        ("1234567890", "1234567890", true),
        ("msg-42", "msg-42", true),
        // Case-insensitive hex.
        ("5d2f8a1c", "5D2F8A1C", true),
        ("0xABC", "abc", true),
        // Leading zeros.
        ("0000012345", "12345", true),
        ("00ff", "FF", true),
        ("0", "000", true),
        // Hex <-> decimal.
        ("1A", "26", true),
        ("3B9ACA0F", "1000000015", true),
        ("ff", "255", true),
        ("0x10", "16", true),
        ("12345678", "305419896", true), // letterless 8-digit hex id
        ("305419896", "12345678", true),
        (
            "00000000000000000000000000000000000000ABCDEF",
            "11259375",
            true,
        ),
        // Whitespace / NUL padding from the wire.
        (" 123\0", "123", true),
        // Different ids.
        ("10", "16", false), // short decimals are not read as hex
        ("10", "0x10", false),
        ("99", "153", false),
        ("123", "1234", false),
        ("1A", "1B", false),
        ("1A", "27", false),
        ("12345678", "12345679", false),
        ("12345678", "305419897", false),
        ("xyz", "XYZ", false), // not hex: case matters
        ("msg-42", "msg-042", false),
        ("1234567", "19088743", false), // 7 digits: no hex reading (0x1234567)
        ("", "", false),
        (" ", "\0", false),
        ("", "0", false),
        ("0x", "0", false),
    ];
    for (a, b, expected) in cases {
        assert_eq!(ids_match(a, b), expected, "ids_match({a:?}, {b:?})");
        assert_eq!(ids_match(b, a), expected, "ids_match({b:?}, {a:?})");
    }
}

#[test]
fn same_spelling_ignores_padding_and_case_but_not_the_base() {
    let cases = [
        ("00000197", "197", true),
        ("0x00C5", "c5", true),
        (" 5d2f8a1c\0", "5D2F8A1C", true),
        ("0", "0000", true),
        ("msg-42", "msg-42", true),
        // One number in two bases: ids_match pairs these, same_spelling does not.
        ("000000c5", "00000197", false),
        ("1A", "26", false),
        ("12345678", "305419896", false),
        // Not hex: case and zeros matter.
        ("xyz", "XYZ", false),
        ("msg-42", "msg-042", false),
        ("", "", false),
        ("0x", "0", false),
    ];
    for (a, b, expected) in cases {
        assert_eq!(same_spelling(a, b), expected, "same_spelling({a:?}, {b:?})");
        assert_eq!(same_spelling(b, a), expected, "same_spelling({b:?}, {a:?})");
        if expected {
            assert!(ids_match(a, b), "a same spelling is a match: {a:?} {b:?}");
        }
    }
}

#[test]
fn id_candidates_are_shared_keys() {
    assert!(id_candidates("").is_empty());
    assert_eq!(id_candidates("0x1A"), id_candidates("1a"));
    assert_eq!(id_candidates("1a"), id_candidates("26"));
    assert_eq!(id_candidates("12345678").len(), 2);
    // Longer than 128 bits: compared as digit strings.
    let long_hex = "f".repeat(40);
    assert!(ids_match(
        &long_hex,
        &format!("000{}", long_hex.to_uppercase())
    ));
    assert!(!ids_match(&long_hex, &"e".repeat(40)));
}

// ---- Properties ------------------------------------------------------------

/// Receipt-like bytes: known keys, junk and separators in any order, so the
/// scanner's edge cases are reached far more often than by random bytes.
fn receipt_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"id:".to_vec()),
        Just(b"sub:".to_vec()),
        Just(b"dlvrd:".to_vec()),
        Just(b"submit date:".to_vec()),
        Just(b"submit".to_vec()),
        Just(b"done".to_vec()),
        Just(b"date:".to_vec()),
        Just(b"stat:".to_vec()),
        Just(b"err:".to_vec()),
        Just(b"text:".to_vec()),
        Just(b"DELIVRD".to_vec()),
        Just(b"2401011200".to_vec()),
        Just(b":".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\0".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..4),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

fn token(regex: &'static str) -> impl Strategy<Value = String> {
    proptest::string::string_regex(regex).unwrap()
}

fn receipt_date() -> impl Strategy<Value = ReceiptDate> {
    (
        0u8..=99,
        1u8..=12,
        1u8..=31,
        0u8..=23,
        0u8..=59,
        proptest::option::of(0u8..=59),
    )
        .prop_filter_map("impossible day", |(y, mo, d, h, mi, s)| {
            ReceiptDate::new(y, mo, d, h, mi, s)
        })
}

fn receipt() -> impl Strategy<Value = Receipt> {
    let state = proptest::sample::select(MessageState::ALL.to_vec());
    let stat = prop_oneof![
        state
            .clone()
            .prop_map(|s| (s.stat_word().to_owned(), Some(s))),
        token("[A-Za-z_]{1,12}").prop_map(|w| {
            let state = MessageState::from_stat(w.as_bytes());
            (w, state)
        }),
    ];
    // Text: up to the limit, no trailing NUL (a C terminator, dropped).
    let text = prop_oneof![
        token("[ -~é€]{0,20}").prop_map(String::into_bytes),
        proptest::collection::vec(1u8..=255, 0..=TEXT_LIMIT),
    ];
    (
        token("[!-9;-~]{1,40}"),
        proptest::option::of(0u32..100_000),
        proptest::option::of(0u32..100_000),
        proptest::option::of(receipt_date()),
        proptest::option::of(receipt_date()),
        stat,
        proptest::option::of(token("[!-9;-~]{1,8}")),
        text,
    )
        .prop_map(
            |(id, sub, dlvrd, submit_date, done_date, (stat, state), err, text)| Receipt {
                id,
                sub,
                dlvrd,
                submit_date,
                done_date,
                stat,
                state,
                err,
                text,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Receipt::parse(&bytes);
    }

    #[test]
    fn parse_receipt_like_never_panics(
        bytes in receipt_like(),
        id in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        state in proptest::option::of(any::<u8>()),
    ) {
        if let Ok(r) = Receipt::from_deliver_sm(&bytes, id.as_deref(), state) {
            prop_assert!(!r.id.is_empty());
            prop_assert!(r.id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        }
    }

    #[test]
    fn format_parses_back(r in receipt()) {
        let text = r.format();
        prop_assert_eq!(Receipt::parse(&text), Ok(r), "{}", String::from_utf8_lossy(&text));
    }

    #[test]
    fn tlvs_override_any_text(r in receipt(), id in token("[!-~]{1,20}"), state in 1u8..=9) {
        let merged = Receipt::from_deliver_sm(&r.format(), Some(id.as_bytes()), Some(state)).unwrap();
        prop_assert_eq!(&merged.id, &id);
        prop_assert_eq!(merged.state, MessageState::from_u8(state));
        prop_assert_eq!(merged.text, r.text);
    }

    #[test]
    fn dates_round_trip(d in receipt_date()) {
        prop_assert_eq!(ReceiptDate::parse(d.to_string().as_bytes()), Some(d));
    }

    #[test]
    fn ids_match_is_reflexive_and_symmetric(a in token("[!-~]{1,20}"), b in token("[0-9a-fA-F]{1,12}")) {
        prop_assert!(ids_match(&a, &a));
        prop_assert_eq!(ids_match(&a, &b), ids_match(&b, &a));
    }

    #[test]
    fn hex_matches_its_decimal(n in any::<u64>(), zeros in 0usize..4, upper in any::<bool>()) {
        let hex = if upper { format!("{n:X}") } else { format!("{n:x}") };
        let padded = format!("{}{hex}", "0".repeat(zeros));
        let prefixed = format!("0x{hex}");
        let padded_decimal = format!("{}{n}", "0".repeat(zeros));
        prop_assert!(ids_match(&padded, &prefixed));
        prop_assert!(ids_match(&hex.to_lowercase(), &hex.to_uppercase()));
        prop_assert!(ids_match(&padded_decimal, &n.to_string()));
        // Hex and decimal spellings meet whenever the hex one is
        // recognisable as hex: it has a letter, or 8+ significant digits.
        if hex.bytes().any(|b| b.is_ascii_alphabetic()) || n >= 0x1000_0000 {
            prop_assert!(ids_match(&padded, &n.to_string()));
        }
    }

    #[test]
    fn distinct_short_decimals_never_match(a in 0u32..10_000_000, b in 0u32..10_000_000) {
        prop_assume!(a != b);
        prop_assert!(!ids_match(&a.to_string(), &b.to_string()));
        let (a, b) = (format!("{a:010}"), format!("{b:010}"));
        prop_assert!(!ids_match(&a, &b));
    }

    #[test]
    fn distinct_numbers_never_match(a in any::<u64>(), b in any::<u64>()) {
        prop_assume!(a != b);
        for (x, y) in [
            (format!("{a:x}"), format!("{b:X}")),
            (format!("0x{a:x}"), b.to_string()),
            (a.to_string(), format!("0x{b:x}")),
        ] {
            prop_assert!(!ids_match(&x, &y), "{} vs {}", x, y);
        }
    }
}
