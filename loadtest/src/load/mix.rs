//! The traffic mix: priorities (`--mix otp:10,transactional:30,bulk:60`), message lengths in
//! GSM-7 segments (`--segments 1,2,3` or `1:80,2:15,3:5`), and destination numbers.
//!
//! Choices are deterministic: request `i` gets entry `i mod W` of a table where each value
//! appears as often as its weight, spread evenly (smooth weighted round robin). Every window of
//! W requests has the exact proportions, and two runs send the same traffic.

use std::fmt;
use std::str::FromStr;

use super::LoadError;

/// The largest table a mix may need (the sum of its weights after dividing by their common
/// divisor): a finer mix than 1 in 10,000 makes no difference to a load test.
const MAX_TABLE: u64 = 10_000;

/// A message priority, as the API spells it in the `priority` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// One-time passwords: sent first.
    Otp,
    /// Transactional messages.
    Transactional,
    /// Bulk and marketing messages: sent last.
    Bulk,
}

impl Priority {
    /// The API's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Otp => "otp",
            Self::Transactional => "transactional",
            Self::Bulk => "bulk",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = LoadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "otp" => Ok(Self::Otp),
            "transactional" => Ok(Self::Transactional),
            "bulk" => Ok(Self::Bulk),
            other => Err(LoadError::invalid(
                "--mix",
                format!("unknown priority {other:?} (otp, transactional or bulk)"),
            )),
        }
    }
}

/// Values chosen by index in fixed proportions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weighted<T> {
    /// (value, weight) as given, weights reduced by their common divisor.
    weights: Vec<(T, u64)>,
    table: Vec<T>,
}

impl<T: Copy + PartialEq> Weighted<T> {
    /// From (value, weight) pairs: weights may be 0 (left out), not all of them.
    ///
    /// # Errors
    /// [`LoadError::Invalid`] (naming `flag`) for no positive weight, a value given twice, or a
    /// mix finer than 1 in 10,000.
    pub fn new(flag: &'static str, pairs: Vec<(T, u64)>) -> Result<Self, LoadError>
    where
        T: fmt::Debug,
    {
        for (i, (v, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(w, _)| w == v) {
                return Err(LoadError::invalid(flag, format!("{v:?} is given twice")));
            }
        }
        let divisor = pairs.iter().fold(0, |g, (_, w)| gcd(g, *w));
        if divisor == 0 {
            return Err(LoadError::invalid(
                flag,
                "needs at least one positive weight",
            ));
        }
        let weights: Vec<(T, u64)> = pairs.into_iter().map(|(v, w)| (v, w / divisor)).collect();
        let total: u64 = weights.iter().map(|(_, w)| w).sum();
        if total > MAX_TABLE {
            return Err(LoadError::invalid(
                flag,
                format!("weights too fine: reduced, they add up to {total} (at most {MAX_TABLE})"),
            ));
        }
        // Smooth weighted round robin: each step every value gains its weight, the richest is
        // chosen and pays the total. Values come out evenly spread, in exact proportions.
        let mut credit = vec![0i64; weights.len()];
        let mut table = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let mut best = 0;
            for (j, (_, w)) in weights.iter().enumerate() {
                credit[j] += *w as i64;
                if credit[j] > credit[best] {
                    best = j;
                }
            }
            credit[best] -= total as i64;
            table.push(weights[best].0);
        }
        Ok(Self { weights, table })
    }

    /// The value for request `index`.
    pub fn pick(&self, index: u64) -> T {
        // The table is never empty: new() refuses a zero total.
        self.table[(index % self.table.len() as u64) as usize]
    }

    /// (value, weight) pairs, weights reduced by their common divisor.
    pub fn weights(&self) -> &[(T, u64)] {
        &self.weights
    }

    /// The cycle length: every run of this many consecutive indexes holds each value exactly
    /// its weight times.
    pub fn period(&self) -> u64 {
        self.table.len() as u64
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Parses `name:weight,...` (or `name` alone, weight 1) with `value` parsing each name.
fn parse_pairs<T>(
    flag: &'static str,
    text: &str,
    value: impl Fn(&str) -> Result<T, LoadError>,
) -> Result<Vec<(T, u64)>, LoadError> {
    if text.trim().is_empty() {
        return Err(LoadError::invalid(flag, "is empty"));
    }
    text.split(',')
        .map(|item| {
            let item = item.trim();
            let (name, weight) = match item.split_once(':') {
                Some((name, weight)) => {
                    let weight = weight.trim().parse::<u64>().map_err(|_| {
                        LoadError::invalid(
                            flag,
                            format!("{item:?}: the weight must be a whole number"),
                        )
                    })?;
                    (name.trim(), weight)
                }
                None => (item, 1),
            };
            if name.is_empty() {
                return Err(LoadError::invalid(
                    flag,
                    format!("{item:?}: a name is missing"),
                ));
            }
            Ok((value(name)?, weight))
        })
        .collect()
}

/// The priority mix, e.g. `otp:10,transactional:30,bulk:60`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(Weighted<Priority>);

impl Mix {
    /// The priority of request `index`.
    pub fn pick(&self, index: u64) -> Priority {
        self.0.pick(index)
    }

    /// The proportions.
    pub fn weighted(&self) -> &Weighted<Priority> {
        &self.0
    }
}

impl Default for Mix {
    /// Transactional only.
    fn default() -> Self {
        Self(Weighted {
            weights: vec![(Priority::Transactional, 1)],
            table: vec![Priority::Transactional],
        })
    }
}

impl FromStr for Mix {
    type Err = LoadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let pairs = parse_pairs("--mix", s, str::parse)?;
        Ok(Self(Weighted::new("--mix", pairs)?))
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pairs(f, self.0.weights())
    }
}

fn write_pairs<T: fmt::Display>(f: &mut fmt::Formatter<'_>, pairs: &[(T, u64)]) -> fmt::Result {
    for (i, (v, w)) in pairs.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{v}:{w}")?;
    }
    Ok(())
}

/// The most segments a body may have: the API refuses bodies over 1,600 characters, and 10
/// parts of 153 GSM-7 characters is 1,530.
pub const MAX_SEGMENTS: u8 = 10;

/// Message lengths in GSM-7 segments, e.g. `1,2,3` (equal shares) or `1:80,2:15,3:5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segments(Weighted<u8>);

impl Segments {
    /// The segment count of request `index`.
    pub fn pick(&self, index: u64) -> u8 {
        self.0.pick(index)
    }

    /// The proportions.
    pub fn weighted(&self) -> &Weighted<u8> {
        &self.0
    }
}

impl Default for Segments {
    /// Single-segment messages only.
    fn default() -> Self {
        Self(Weighted {
            weights: vec![(1, 1)],
            table: vec![1],
        })
    }
}

impl FromStr for Segments {
    type Err = LoadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let pairs = parse_pairs("--segments", s, |name| match name.parse::<u8>() {
            Ok(n) if (1..=MAX_SEGMENTS).contains(&n) => Ok(n),
            _ => Err(LoadError::invalid(
                "--segments",
                format!("{name:?}: a segment count is a whole number from 1 to {MAX_SEGMENTS}"),
            )),
        })?;
        Ok(Self(Weighted::new("--segments", pairs)?))
    }
}

impl fmt::Display for Segments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pairs(f, self.0.weights())
    }
}

/// Characters in a body of `segments` GSM-7 parts, filled to the brim: 160 for one part, 153
/// per part when concatenated (7 septets go to the UDH).
pub const fn body_len(segments: u8) -> usize {
    if segments <= 1 {
        160
    } else {
        153 * segments as usize
    }
}

/// GSM-7 basic-alphabet text (no escape characters, which would count two septets).
const FILLER: &str = "Sairex load test: your code is 482913. Fee due Friday. ";

/// A body of exactly [`body_len`]`(segments)` GSM-7 characters.
pub fn body(segments: u8) -> String {
    FILLER.chars().cycle().take(body_len(segments)).collect()
}

/// Unique destination numbers: `prefix` followed by the request index on `digits` digits
/// (wrapping after 10^digits numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbers {
    prefix: String,
    digits: u32,
}

impl Default for Numbers {
    /// `+92300` and 7 digits: valid Pakistani mobile numbers.
    fn default() -> Self {
        Self {
            prefix: "+92300".to_owned(),
            digits: 7,
        }
    }
}

impl Numbers {
    /// Numbers `prefix` + `digits` digits, e.g. `+92300` and 7 for Pakistani mobiles.
    ///
    /// # Errors
    /// [`LoadError::Invalid`] unless the prefix is `+` and digits and the whole number has at
    /// most 15 digits (E.164), with 1 to 12 digits of index.
    pub fn new(prefix: &str, digits: u32) -> Result<Self, LoadError> {
        let national = prefix.strip_prefix('+').unwrap_or(prefix);
        if national.is_empty() || !national.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LoadError::invalid(
                "--to-prefix",
                format!("{prefix:?}: digits with an optional leading +, like +92300"),
            ));
        }
        if !(1..=12).contains(&digits) || national.len() + digits as usize > 15 {
            return Err(LoadError::invalid(
                "--to-digits",
                format!(
                    "{digits} digits after {prefix:?}: E.164 numbers have at most 15 digits, and \
                     the index needs 1 to 12"
                ),
            ));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            digits,
        })
    }

    /// The number for request `index`.
    pub fn number(&self, index: u64) -> String {
        let modulus = 10u64.pow(self.digits);
        format!(
            "{}{:0width$}",
            self.prefix,
            index % modulus,
            width = self.digits as usize
        )
    }

    /// How many different numbers there are.
    pub fn distinct(&self) -> u64 {
        10u64.pow(self.digits)
    }
}

#[cfg(test)]
mod tests {
    use sairex_pdu::text::{Encoding, count_segments};

    use super::*;

    #[test]
    fn the_mix_parses_and_keeps_exact_proportions() {
        let mix: Mix = "otp:10,transactional:30,bulk:60".parse().unwrap();
        assert_eq!(
            mix.weighted().weights(),
            [
                (Priority::Otp, 1),
                (Priority::Transactional, 3),
                (Priority::Bulk, 6)
            ]
        );
        assert_eq!(mix.weighted().period(), 10);
        assert_eq!(mix.to_string(), "otp:1,transactional:3,bulk:6");
        let mut counts = [0u32; 3];
        for i in 0..1_000 {
            counts[mix.pick(i) as usize] += 1;
        }
        assert_eq!(counts, [100, 300, 600]);
        // Spread out, not in runs: no 10-window starts with six bulks in a row.
        let first: Vec<Priority> = (0..10).map(|i| mix.pick(i)).collect();
        assert!(
            first
                .windows(4)
                .all(|w| w.iter().any(|p| *p != Priority::Bulk))
        );
    }

    #[test]
    fn mix_errors_are_clear() {
        let err = |s: &str| s.parse::<Mix>().unwrap_err().to_string();
        assert!(err("otp:10,sms:5").contains("unknown priority \"sms\""));
        assert!(err("otp:ten").contains("whole number"));
        assert!(err("otp:0,bulk:0").contains("at least one positive weight"));
        assert!(err("otp:1,otp:2").contains("given twice"));
        assert!(err("").contains("empty"));
        assert!(err(":3").contains("name is missing"));
        assert!(err("otp:1,bulk:10000").contains("too fine"));
        assert!(err("otp:x").starts_with("--mix: \"otp:x\": "));
        // Weight 0 leaves a priority out; no weight means 1; spaces and case are forgiven.
        let mix: Mix = " OTP , bulk:0 ".parse().unwrap();
        assert!((0..20).all(|i| mix.pick(i) == Priority::Otp));
    }

    #[test]
    fn segments_parse_with_and_without_weights() {
        let s: Segments = "1,2,3".parse().unwrap();
        assert_eq!(s.weighted().weights(), [(1, 1), (2, 1), (3, 1)]);
        assert_eq!(
            (0..6).map(|i| s.pick(i)).collect::<Vec<_>>(),
            [1, 2, 3, 1, 2, 3]
        );
        let w: Segments = "1:80,2:15,3:5".parse().unwrap();
        assert_eq!(w.weighted().period(), 20);
        let threes = (0..20).filter(|i| w.pick(*i) == 3).count();
        assert_eq!(threes, 1);
        for bad in ["0", "11", "x", "1,1", "2:-1"] {
            let e = bad.parse::<Segments>().unwrap_err().to_string();
            assert!(e.starts_with("--segments: "), "{bad}: {e}");
        }
    }

    #[test]
    fn bodies_have_the_right_number_of_segments() {
        for n in 1..=MAX_SEGMENTS {
            let text = body(n);
            assert_eq!(text.chars().count(), body_len(n));
            let count = count_segments(&text);
            assert_eq!(count.encoding, Encoding::Gsm7, "{n} segments");
            assert_eq!(count.segments, usize::from(n), "{n} segments");
            // Full: one more character needs one more part.
            let longer = format!("{text}x");
            assert_eq!(count_segments(&longer).segments, usize::from(n) + 1);
        }
        assert_eq!([body_len(1), body_len(2), body_len(3)], [160, 306, 459]);
    }

    #[test]
    fn numbers_are_unique_e164_strings() {
        let n = Numbers::new("+92300", 7).unwrap();
        assert_eq!(n.number(0), "+923000000000");
        assert_eq!(n.number(1_234), "+923000001234");
        assert_eq!(n.number(10_000_001), "+923000000001");
        assert_eq!(n.distinct(), 10_000_000);
        assert!(Numbers::new("+92 300", 7).is_err());
        assert!(Numbers::new("+", 7).is_err());
        assert!(Numbers::new("+9230012345", 7).is_err());
        assert!(Numbers::new("+92300", 0).is_err());
    }
}
