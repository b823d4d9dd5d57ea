//! UCS-2 as sent in SMS and SMPP (`data_coding` 0x08): in practice UTF-16BE,
//! so characters outside the BMP (emoji) travel as surrogate pairs, which
//! handsets render. 3GPP TS 23.038 §7 names ISO/IEC 10646 UCS-2 only.

/// Encodes `text` as UTF-16BE. Never fails: every `char` has a UTF-16 form.
pub fn encode(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// The number of UTF-16 code units `text` takes (a surrogate pair counts 2).
pub fn unit_count(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Decodes UTF-16BE leniently, because inbound messages come from handsets
/// and SMSCs we do not control:
///
/// - a lone (unpaired) surrogate decodes as U+FFFD;
/// - an odd trailing octet cannot be a code unit; it decodes as one U+FFFD
///   rather than being dropped silently, so the damage stays visible.
pub fn decode(bytes: &[u8]) -> String {
    let chunks = bytes.chunks_exact(2);
    let odd = !chunks.remainder().is_empty();
    let units = chunks.map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    let mut out: String = char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if odd {
        out.push(char::REPLACEMENT_CHARACTER);
    }
    out
}
