//! The `submit date:` / `done date:` timestamps of a receipt.

use std::fmt;

/// A receipt timestamp: `YYMMDDhhmm` as SMPP 3.4 Appendix B gives it, or
/// `YYMMDDhhmmss`, which many SMSCs send instead.
///
/// The fields are range-checked on construction (month 1–12, a day that
/// exists in that month, hour 0–23, minute and second 0–59), so every value
/// of this type is a real time. The year is kept as the two digits sent;
/// Appendix B has no century, see [`ReceiptDate::full_year`]. No time zone is
/// carried: the spec leaves it to the SMSC, usually its local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiptDate {
    year: u8,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: Option<u8>,
}

impl ReceiptDate {
    /// A date from its parts, or `None` if any part is out of range.
    /// `year` is two-digit (0–99); `second` is `None` for the 10-digit form.
    pub const fn new(
        year: u8,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: Option<u8>,
    ) -> Option<Self> {
        let second_ok = match second {
            Some(s) => s <= 59,
            None => true,
        };
        if year > 99
            || month < 1
            || month > 12
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || !second_ok
        {
            return None;
        }
        Some(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// Parses exactly 10 (`YYMMDDhhmm`) or 12 (`YYMMDDhhmmss`) ASCII digits;
    /// anything else, including an impossible date such as month 13, is
    /// `None`.
    pub fn parse(digits: &[u8]) -> Option<Self> {
        if !(digits.len() == 10 || digits.len() == 12) || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let pair = |i: usize| -> Option<u8> {
            let d = digits.get(i..i + 2)?;
            Some((d[0] - b'0') * 10 + (d[1] - b'0'))
        };
        let second = if digits.len() == 12 {
            Some(pair(10)?)
        } else {
            None
        };
        Self::new(pair(0)?, pair(2)?, pair(4)?, pair(6)?, pair(8)?, second)
    }

    /// The two-digit year as sent (0–99).
    pub const fn year(&self) -> u8 {
        self.year
    }

    /// The year assuming the 21st century (2000–2099), which is right for any
    /// receipt an SMSC can send today.
    pub const fn full_year(&self) -> u16 {
        2000 + self.year as u16
    }

    /// Month, 1–12.
    pub const fn month(&self) -> u8 {
        self.month
    }

    /// Day of the month, 1–31.
    pub const fn day(&self) -> u8 {
        self.day
    }

    /// Hour, 0–23.
    pub const fn hour(&self) -> u8 {
        self.hour
    }

    /// Minute, 0–59.
    pub const fn minute(&self) -> u8 {
        self.minute
    }

    /// Second, 0–59, if the SMSC sent the 12-digit form.
    pub const fn second(&self) -> Option<u8> {
        self.second
    }
}

impl fmt::Display for ReceiptDate {
    /// Writes the receipt form: 10 digits, or 12 when seconds are present.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}{:02}{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )?;
        if let Some(s) = self.second {
            write!(f, "{s:02}")?;
        }
        Ok(())
    }
}

/// Days in `month` of year 20`yy`; in 2000–2099 every fourth year is a leap
/// year (2000 included), so the century rules never apply.
const fn days_in_month(yy: u8, month: u8) -> u8 {
    match month {
        2 if yy.is_multiple_of(4) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
