//! Exact decimal amounts: requests carry roubles with at most 2 decimals, the store keeps minor units.

use std::fmt;

/// Largest accepted amount in minor units (10^13 kopecks = 100 billion roubles).
pub const MAX_MINOR: i64 = 10_000_000_000_000;

/// Why an amount was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a decimal number.
    #[error("not a decimal number")]
    NotANumber,
    /// More than two digits after the point.
    #[error("more than 2 decimals")]
    TooManyDecimals,
    /// Zero or negative.
    #[error("must be positive")]
    NotPositive,
    /// Larger than [`MAX_MINOR`].
    #[error("too large")]
    TooLarge,
}

/// A positive amount in minor units (kopecks, cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minor(pub i64);

impl Minor {
    /// Parses a decimal text such as `12`, `12.3`, `12.34`, `0.01` (no sign, no exponent).
    pub fn parse_decimal(text: &str) -> Result<Self, AmountError> {
        let t = text.trim();
        let t = t.strip_prefix('+').unwrap_or(t);
        if let Some(rest) = t.strip_prefix('-') {
            // Any negative number (and "-0") is not positive; other text is not a number.
            if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return Err(AmountError::NotPositive);
            }
            return Err(AmountError::NotANumber);
        }
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) => (i, f),
            None => (t, ""),
        };
        if (int.is_empty() && frac.is_empty())
            || !int.chars().all(|c| c.is_ascii_digit())
            || !frac.chars().all(|c| c.is_ascii_digit())
            || (t.contains('.') && frac.is_empty() && int.is_empty())
        {
            return Err(AmountError::NotANumber);
        }
        let frac_trimmed = frac.trim_end_matches('0');
        if frac_trimmed.len() > 2 {
            return Err(AmountError::TooManyDecimals);
        }
        let int = int.trim_start_matches('0');
        if int.len() > 14 {
            return Err(AmountError::TooLarge);
        }
        let whole: i64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| AmountError::TooLarge)?
        };
        let mut cents: i64 = 0;
        for (i, c) in frac_trimmed.chars().enumerate() {
            let d = i64::from(c as u8 - b'0');
            cents += if i == 0 { d * 10 } else { d };
        }
        let minor = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .ok_or(AmountError::TooLarge)?;
        if minor <= 0 {
            return Err(AmountError::NotPositive);
        }
        if minor > MAX_MINOR {
            return Err(AmountError::TooLarge);
        }
        Ok(Minor(minor))
    }

    /// Parses a JSON number: its shortest round-trip text is what the client wrote.
    pub fn from_f64(v: f64) -> Result<Self, AmountError> {
        if !v.is_finite() {
            return Err(AmountError::NotANumber);
        }
        if v <= 0.0 {
            return Err(AmountError::NotPositive);
        }
        if v > (MAX_MINOR / 100) as f64 {
            return Err(AmountError::TooLarge);
        }
        Self::parse_decimal(&format!("{v}"))
    }

    /// The amount as a JSON number (exact for every value up to [`MAX_MINOR`]).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// Fixed two-decimal text (`123.00`), as webhooks send it.
    pub fn to_fixed(self) -> String {
        format_minor(self.0)
    }
}

/// Formats minor units as `major.mm` (also for zero and negatives).
pub fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let a = minor.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_minor(self.0))
    }
}

/// ISO codes the emulator accepts, with the `CurrencyCode` it reports (only RUB=0 is confirmed).
pub const CURRENCIES: &[(&str, u32)] = &[
    ("RUB", 0),
    ("USD", 1),
    ("EUR", 2),
    ("GBP", 3),
    ("UAH", 4),
    ("BYR", 5),
    ("BYN", 6),
    ("KZT", 7),
    ("AZN", 8),
    ("CHF", 9),
    ("CZK", 10),
    ("CAD", 11),
    ("PLN", 12),
    ("SEK", 13),
    ("TRY", 14),
    ("CNY", 15),
    ("INR", 16),
    ("BRL", 17),
    ("ZAR", 18),
    ("UZS", 19),
    ("BGN", 20),
    ("RON", 21),
    ("AUD", 22),
    ("HKD", 23),
    ("GEL", 24),
    ("KGS", 25),
    ("AMD", 26),
    ("AED", 27),
    ("TJS", 28),
    ("ILS", 29),
    ("JPY", 30),
    ("KRW", 31),
    ("MDL", 32),
    ("NOK", 33),
    ("DKK", 34),
    ("HUF", 35),
    ("SGD", 36),
    ("THB", 37),
    ("VND", 38),
    ("MXN", 39),
    ("NZD", 40),
    ("QAR", 41),
    ("SAR", 42),
    ("EGP", 43),
    ("IDR", 44),
    ("MYR", 45),
    ("PHP", 46),
    ("RSD", 47),
    ("TMT", 48),
    ("MNT", 49),
    ("KWD", 50),
    ("BHD", 51),
    ("OMR", 52),
    ("ARS", 53),
    ("CLP", 54),
    ("COP", 55),
    ("PEN", 56),
    ("ISK", 57),
];

/// `CurrencyCode` of an accepted ISO code (case-insensitive), `None` if unsupported.
pub fn currency_code(iso: &str) -> Option<(&'static str, u32)> {
    CURRENCIES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(iso.trim()))
        .map(|(c, n)| (*c, *n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(Minor::parse_decimal("12.34"), Ok(Minor(1234)));
        assert_eq!(Minor::parse_decimal("12.3"), Ok(Minor(1230)));
        assert_eq!(Minor::parse_decimal("12"), Ok(Minor(1200)));
        assert_eq!(Minor::parse_decimal("0.01"), Ok(Minor(1)));
        assert_eq!(Minor::parse_decimal(".5"), Ok(Minor(50)));
        assert_eq!(Minor::parse_decimal("12.340"), Ok(Minor(1234)));
        assert_eq!(
            Minor::parse_decimal("12.345"),
            Err(AmountError::TooManyDecimals)
        );
        assert_eq!(Minor::parse_decimal("0"), Err(AmountError::NotPositive));
        assert_eq!(Minor::parse_decimal("0.00"), Err(AmountError::NotPositive));
        assert_eq!(Minor::parse_decimal("-1"), Err(AmountError::NotPositive));
        assert_eq!(Minor::parse_decimal("1e3"), Err(AmountError::NotANumber));
        assert_eq!(Minor::parse_decimal(""), Err(AmountError::NotANumber));
        assert_eq!(Minor::parse_decimal("."), Err(AmountError::NotANumber));
        assert_eq!(Minor::parse_decimal("1,5"), Err(AmountError::NotANumber));
        assert_eq!(
            Minor::parse_decimal("999999999999999999999"),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn parses_json_numbers_without_float_surprises() {
        assert_eq!(
            Minor::from_f64(0.1 + 0.2),
            Err(AmountError::TooManyDecimals)
        );
        assert_eq!(Minor::from_f64(19.99), Ok(Minor(1999)));
        assert_eq!(Minor::from_f64(1e-7), Err(AmountError::TooManyDecimals));
        assert_eq!(Minor::from_f64(100.0), Ok(Minor(10000)));
        assert_eq!(Minor(1999).as_f64().to_string(), "19.99");
        assert_eq!(Minor(12300).to_fixed(), "123.00");
        assert_eq!(format_minor(-5), "-0.05");
    }
}
