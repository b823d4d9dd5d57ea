//! Correlating a receipt's message id with the id from `submit_sm_resp`.
//!
//! Many SMSCs hand out the id in one base and report it in another: the
//! `submit_sm_resp` `message_id` in hex and the receipt `id:` (or
//! receipted_message_id, SMPP 3.4 §5.3.2.12) in decimal, or the reverse, and
//! with or without zero padding. These rules recognise those spellings of the
//! same number without letting two different live ids match.

/// Significant digits an all-decimal-digit id must have before it is also
/// read as hex.
///
/// Any all-digit id is a valid hex number, so reading every one both ways
/// would make `10` match `16` (0x10). Below 8 digits that is a real risk: a
/// sequential SMSC can easily have both ids pending at once. From 8 digits on
/// the hex reading is at least 0x10000000 (268 million) while the decimal
/// reading is under 10^8, so the two numbers are far too far apart to be live
/// at the same time. 8 digits is also the width of the 32-bit hex ids that
/// SMSCs typically hand out, which is where hex ids without a letter occur.
const AMBIGUOUS_HEX_MIN_DIGITS: usize = 8;

/// Normalised keys under which a message id can be found.
///
/// Two ids refer to the same message exactly when their key sets intersect
/// (that is what [`ids_match`] checks), so a store can index a submitted
/// message under every key of its `submit_sm_resp` id and look a receipt up by
/// each key of the receipt id. The keys are opaque strings; only equality
/// between them is meaningful.
///
/// Rules, after trimming ASCII whitespace and NULs (an empty id has no keys
/// and matches nothing):
///
/// * **Decimal** (only digits `0-9`): the number, so leading zeros do not
///   matter (`0001234` ≡ `1234`). With at least 8 significant digits the id
///   is also read as hex (`12345678` ≡ `305419896`); shorter ones are not,
///   see the note on false positives below.
/// * **Hex** (only hex digits with at least one letter `a-f`, or a `0x`/`0X`
///   prefix): the number, so letter case and leading zeros do not matter
///   (`00AbC` ≡ `abc` ≡ `0xABC`) and it matches the decimal spelling of the
///   same number (`1A` ≡ `26`).
/// * **Anything else** (dashes, other letters, punctuation): the exact
///   string, case-sensitive, since such ids may well be case-significant
///   (base-62 ids, for instance).
///
/// False positives this avoids: `10` vs `16` (short decimal ids are never
/// read as hex), `0x10` vs `10` (`10` is read as decimal 10, not as 0x10),
/// `xyz` vs `XYZ`. False negatives it accepts: a hex id with no letter, no
/// prefix and fewer than 8 significant digits is only matched as decimal.
/// Numbers too large for 128 bits (over 32 hex digits) are compared as
/// digit strings rather than by value.
pub fn id_candidates(id: &str) -> Vec<String> {
    let id = id.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
    if id.is_empty() {
        return Vec::new();
    }
    let prefixed = id
        .strip_prefix("0x")
        .or_else(|| id.strip_prefix("0X"))
        .filter(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()));
    if let Some(hex) = prefixed {
        return vec![hex_key(hex)];
    }
    if id.bytes().all(|b| b.is_ascii_digit()) {
        let digits = significant(id);
        let mut keys = vec![format!("n:{digits}")];
        if digits.len() >= AMBIGUOUS_HEX_MIN_DIGITS {
            keys.push(hex_key(digits));
        }
        return keys;
    }
    if id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return vec![hex_key(id)];
    }
    vec![format!("s:{id}")]
}

/// Whether a receipt's id (`receipt_id`) refers to the message that
/// `submit_sm_resp` named `submit_resp_id`, by the rules of
/// [`id_candidates`].
///
/// The relation is symmetric, so the argument order only documents intent.
pub fn ids_match(submit_resp_id: &str, receipt_id: &str) -> bool {
    let ours = id_candidates(submit_resp_id);
    id_candidates(receipt_id)
        .iter()
        .any(|key| ours.contains(key))
}

/// Whether two ids are written the same way: equal after trimming whitespace and NULs, a
/// `0x` prefix, leading zeros and letter case. [`ids_match`] also pairs spellings of one number
/// in two bases (`c5` and `197`); that is only right for an SMSC that reports in another base
/// than it hands out. One that repeats its own spelling also issues `000000c5` and `00000197`
/// as two different messages, so a caller that has seen a provider repeat its spellings should
/// accept only matches this confirms.
pub fn same_spelling(a: &str, b: &str) -> bool {
    /// The id without wire padding, and for a hex-digit id also without `0x` and leading zeros.
    fn plain(id: &str) -> (&str, bool) {
        let id = id.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
        let digits = id
            .strip_prefix("0x")
            .or_else(|| id.strip_prefix("0X"))
            .unwrap_or(id);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return (id, false);
        }
        (significant(digits), true)
    }
    let ((a, a_hex), (b, b_hex)) = (plain(a), plain(b));
    if a.is_empty() || a_hex != b_hex {
        return false;
    }
    if a_hex {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// The digits without leading zeros; `"0"` for an all-zero id.
fn significant(digits: &str) -> &str {
    match digits.trim_start_matches('0') {
        "" => "0",
        rest => rest,
    }
}

/// The key of a hex number: its decimal value, so it meets the decimal key of
/// the same number; past 128 bits, the lower-case significant digits.
fn hex_key(hex: &str) -> String {
    let digits = significant(hex);
    match u128::from_str_radix(digits, 16) {
        Ok(value) => format!("n:{value}"),
        Err(_) => format!("h:{}", digits.to_ascii_lowercase()),
    }
}
