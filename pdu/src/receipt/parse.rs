//! Splitting Appendix B receipt text into its raw fields.
//!
//! A hand-written scanner rather than nom: the grammar is "key:value pairs
//! separated by whitespace, except that `text:` runs to the end", and the
//! leniency real SMSCs need (two-word keys, empty values, unknown keys,
//! stray words) is easier to state as a loop than as combinators. It makes
//! one pass, never indexes out of bounds and never fails: deciding what is
//! missing is left to the caller.

/// The raw field values found in a receipt text; `None` for a field that is
/// absent or has an empty value.
#[derive(Debug, Default)]
pub(crate) struct Fields<'a> {
    pub(crate) id: Option<&'a [u8]>,
    pub(crate) sub: Option<&'a [u8]>,
    pub(crate) dlvrd: Option<&'a [u8]>,
    pub(crate) submit_date: Option<&'a [u8]>,
    pub(crate) done_date: Option<&'a [u8]>,
    pub(crate) stat: Option<&'a [u8]>,
    pub(crate) err: Option<&'a [u8]>,
    pub(crate) text: Option<&'a [u8]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Id,
    Sub,
    Dlvrd,
    SubmitDate,
    DoneDate,
    Stat,
    Err,
    Text,
    /// A `word:` we do not know (`dlr_id:`, `mcc:`, ...); its value is
    /// skipped.
    Other,
}

impl Key {
    /// The key named `word`, ignoring case and `_`/`-` so that `submit_date`,
    /// `Submit-Date` and `SUBMITDATE` are all recognised.
    fn from_word(word: &[u8]) -> Self {
        // Longest known key is "submitdate" (10 letters); longer words can
        // only be unknown keys.
        let mut buf = [0u8; 10];
        let mut len = 0;
        for &b in word.iter().filter(|&&b| b != b'_' && b != b'-') {
            let Some(slot) = buf.get_mut(len) else {
                return Self::Other;
            };
            *slot = b.to_ascii_lowercase();
            len += 1;
        }
        match buf.get(..len).unwrap_or_default() {
            b"id" => Self::Id,
            b"sub" => Self::Sub,
            b"dlvrd" => Self::Dlvrd,
            b"submitdate" => Self::SubmitDate,
            b"donedate" => Self::DoneDate,
            b"stat" => Self::Stat,
            b"err" => Self::Err,
            b"text" => Self::Text,
            _ => Self::Other,
        }
    }
}

/// Field separators: whitespace, and NUL, which some SMSCs pad with.
fn is_sep(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0
}

/// Index of the first byte at or after `at` that is not a separator.
fn skip_seps(s: &[u8], at: usize) -> usize {
    s.get(at..)
        .and_then(|rest| rest.iter().position(|&b| !is_sep(b)))
        .map_or(s.len(), |i| at + i)
}

/// Index of the first byte at or after `at` satisfying `stop`, or the end.
fn find(s: &[u8], at: usize, stop: impl Fn(u8) -> bool) -> usize {
    s.get(at..)
        .and_then(|rest| rest.iter().position(|&b| stop(b)))
        .map_or(s.len(), |i| at + i)
}

/// If a key starts at `at`, the key and the index just past its `:`.
///
/// A key is a word directly followed by `:`, or the two-word `submit date:` /
/// `done date:` with any separators between the words (the spec spells them
/// with a space).
fn key_at(s: &[u8], at: usize) -> Option<(Key, usize)> {
    let end = find(s, at, |b| is_sep(b) || b == b':');
    let word = s.get(at..end)?;
    if s.get(end) == Some(&b':') {
        return Some((Key::from_word(word), end + 1));
    }
    let two_word = if word.eq_ignore_ascii_case(b"submit") {
        Key::SubmitDate
    } else if word.eq_ignore_ascii_case(b"done") {
        Key::DoneDate
    } else {
        return None;
    };
    let second = skip_seps(s, end);
    let second_end = find(s, second, |b| is_sep(b) || b == b':');
    let is_date = s
        .get(second..second_end)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"date"));
    (is_date && s.get(second_end) == Some(&b':')).then_some((two_word, second_end + 1))
}

impl<'a> Fields<'a> {
    /// Scans `s` for receipt fields; never fails.
    pub(crate) fn parse(s: &'a [u8]) -> Self {
        let mut fields = Self::default();
        let mut at = skip_seps(s, 0);
        while at < s.len() {
            let Some((key, value_start)) = key_at(s, at) else {
                // A stray word with no colon: skip it.
                at = skip_seps(s, find(s, at, is_sep));
                continue;
            };
            if key == Key::Text {
                // Appendix B puts text last; it may hold anything, including
                // colons and key names, so it runs to the end. Trailing NULs
                // are C-string terminators, not text.
                let rest = s.get(value_start..).unwrap_or_default();
                let len = rest.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                fields
                    .text
                    .get_or_insert(rest.get(..len).unwrap_or_default());
                break;
            }
            // Tolerate `key: value`. If what follows is itself a known key,
            // this field is empty (`sub: dlvrd:001`) and that key is next.
            let token = skip_seps(s, value_start);
            let value = match key_at(s, token) {
                Some((next, _)) if next != Key::Other => {
                    at = token;
                    None
                }
                _ => {
                    let end = find(s, token, is_sep);
                    at = skip_seps(s, end);
                    s.get(token..end).filter(|v| !v.is_empty())
                }
            };
            let slot = match key {
                Key::Id => &mut fields.id,
                Key::Sub => &mut fields.sub,
                Key::Dlvrd => &mut fields.dlvrd,
                Key::SubmitDate => &mut fields.submit_date,
                Key::DoneDate => &mut fields.done_date,
                Key::Stat => &mut fields.stat,
                Key::Err => &mut fields.err,
                Key::Text | Key::Other => continue,
            };
            if slot.is_none() {
                *slot = value;
            }
        }
        fields
    }
}
