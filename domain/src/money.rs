//! Money is integer minor units plus an ISO 4217 currency. Never floating point.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Currencies billing accepts. All have two minor digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Currency {
    Rub,
    Usd,
    Eur,
    Kzt,
}

impl Currency {
    pub fn code(self) -> &'static str {
        match self {
            Currency::Rub => "RUB",
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Kzt => "KZT",
        }
    }

    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        match code.trim().to_ascii_uppercase().as_str() {
            "RUB" => Ok(Currency::Rub),
            "USD" => Ok(Currency::Usd),
            "EUR" => Ok(Currency::Eur),
            "KZT" => Ok(Currency::Kzt),
            other => Err(MoneyError::UnknownCurrency(other.to_string())),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The currency code is not one billing supports; fix the tariff or the request.
    #[error("unknown currency `{0}`")]
    UnknownCurrency(String),
    /// The decimal amount is malformed (not digits, or more than two decimals).
    #[error("invalid decimal amount `{0}`")]
    InvalidDecimal(String),
    /// Amounts must be positive.
    #[error("amount must be positive, got {0} minor units")]
    NotPositive(i64),
}

/// An amount of money: integer minor units (kopecks, cents) and a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor <= 0 {
            return Err(MoneyError::NotPositive(minor));
        }
        Ok(Self { minor, currency })
    }

    /// Decimal major units with exactly two decimals, as the gateway wants them ("299.00").
    pub fn to_decimal_string(&self) -> String {
        decimal_from_minor(self.minor, self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", format_minor(self.minor), self.currency)
    }
}

/// `29900` -> `"299.00"`.
pub fn format_minor(minor: i64) -> String {
    format_scaled(minor, 2)
}

/// Parses a decimal major-unit amount as the gateway sends it (`10`, `10.5`, `12.34`) into minor
/// units, exactly, without going through floating point.
pub fn parse_decimal_minor(text: &str) -> Result<i64, MoneyError> {
    let bad = || MoneyError::InvalidDecimal(text.to_string());
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (int_part, frac_part) = match t.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t, ""),
    };
    if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // JSON numbers like 10.50 or 10.0 may carry trailing zeros beyond two places.
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() > 2 || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let units: i64 = int_part.parse().map_err(|_| bad())?;
    let mut frac = frac_trimmed.to_string();
    while frac.len() < 2 {
        frac.push('0');
    }
    let cents: i64 = frac.parse().map_err(|_| bad())?;
    let v = units
        .checked_mul(100)
        .and_then(|v| v.checked_add(cents))
        .ok_or_else(bad)?;
    Ok(if neg { -v } else { v })
}

impl Currency {
    /// Digits after the decimal point of the major unit (the ISO 4217 minor-unit exponent):
    /// `29900` minor units of a 2-digit currency are `299.00`. Exhaustive on purpose: a new
    /// currency (JPY has 0 digits, KWD 3) must say how many it has.
    pub fn minor_digits(self) -> u32 {
        match self {
            Currency::Rub | Currency::Usd | Currency::Eur | Currency::Kzt => 2,
        }
    }
}

/// Why a decimal amount is not an exact, representable number of minor units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not a decimal number in JSON number syntax (`12`, `12.34`, `1.2e3`).
    #[error("`{0}` is not a decimal number")]
    Malformed(String),
    /// Below zero; amounts never are.
    #[error("amount `{0}` is negative")]
    Negative(String),
    /// Non-zero digits below the currency's minor unit: an error, never rounded.
    #[error("amount `{text}` has more than {digits} decimals, the most {currency} has")]
    TooPrecise {
        text: String,
        currency: Currency,
        digits: u32,
    },
    /// More minor units than an `i64` holds.
    #[error("amount `{0}` does not fit in 64-bit minor units")]
    Overflow(String),
}

/// Minor units -> decimal major units with exactly the currency's digits (`29900` RUB ->
/// `"299.00"`), in integer arithmetic.
pub fn decimal_from_minor(minor: i64, currency: Currency) -> String {
    format_scaled(minor, currency.minor_digits())
}

/// Decimal major units, written as a JSON number (`299`, `299.00`, `0.01`, `2.99e2`), -> minor
/// units of `currency`, exactly: the digits are shifted as text and parsed as an integer, never
/// through floating point. Zeros past the currency's digits are fine (`10.500`); any other digit
/// there, a minus sign (other than on zero) or an `i64` overflow is an error.
pub fn minor_from_decimal(text: &str, currency: Currency) -> Result<i64, DecimalError> {
    let malformed = || DecimalError::Malformed(text.to_string());
    let overflow = || DecimalError::Overflow(text.to_string());
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) if digits_only(frac) => (int, frac),
        Some(_) => return Err(malformed()),
        None => (mantissa, ""),
    };
    if !digits_only(int) || (int.len() > 1 && int.starts_with('0')) {
        return Err(malformed());
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let (sign, magnitude) = match e.strip_prefix('-') {
                Some(m) => (-1, m),
                None => (1, e.strip_prefix('+').unwrap_or(e)),
            };
            if !digits_only(magnitude) {
                return Err(malformed());
            }
            // Beyond i64 only matters for zero (`0e99999999999999999999`); saturate.
            sign * magnitude.parse::<i64>().unwrap_or(i64::MAX)
        }
    };
    let all_digits = format!("{int}{frac}");
    let significant = all_digits.trim_start_matches('0');
    if significant.is_empty() {
        return Ok(0);
    }
    if negative {
        return Err(DecimalError::Negative(text.to_string()));
    }
    // value = significant * 10^(exponent - frac.len()); minor = value * 10^digits.
    let digits = currency.minor_digits();
    let shift = exponent
        .saturating_sub(frac.len() as i64)
        .saturating_add(i64::from(digits));
    let (kept, shift) = if shift < 0 {
        let drop = usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX);
        let cut = significant.len().saturating_sub(drop);
        let (kept, dropped) = significant.split_at(cut);
        if kept.is_empty() || dropped.bytes().any(|b| b != b'0') {
            return Err(DecimalError::TooPrecise {
                text: text.to_string(),
                currency,
                digits,
            });
        }
        (kept, 0)
    } else {
        (significant, u32::try_from(shift).map_err(|_| overflow())?)
    };
    let base: i64 = kept.parse().map_err(|_| overflow())?;
    10i64
        .checked_pow(shift)
        .and_then(|scale| base.checked_mul(scale))
        .ok_or_else(overflow)
}

/// `minor` with `digits` decimals, in integer arithmetic.
fn format_scaled(minor: i64, digits: u32) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if digits == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10u64.pow(digits);
    let width = digits as usize;
    format!("{sign}{}.{:0width$}", abs / scale, abs % scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trip() {
        assert_eq!(parse_decimal_minor("299").unwrap(), 29900);
        assert_eq!(parse_decimal_minor("299.5").unwrap(), 29950);
        assert_eq!(parse_decimal_minor("12.34").unwrap(), 1234);
        assert_eq!(parse_decimal_minor("10.0").unwrap(), 1000);
        assert_eq!(parse_decimal_minor("0.01").unwrap(), 1);
        assert!(parse_decimal_minor("1.234").is_err());
        assert!(parse_decimal_minor("abc").is_err());
        assert!(parse_decimal_minor("").is_err());
        assert_eq!(format_minor(29900), "299.00");
        assert_eq!(format_minor(1), "0.01");
        assert_eq!(
            Money::new(29900, Currency::Rub).unwrap().to_string(),
            "299.00 RUB"
        );
        assert!(Money::new(0, Currency::Rub).is_err());
        assert_eq!(Currency::parse("rub").unwrap(), Currency::Rub);
        assert!(Currency::parse("XYZ").is_err());
    }

    const ALL: [Currency; 4] = [Currency::Rub, Currency::Usd, Currency::Eur, Currency::Kzt];

    #[test]
    fn exact_decimal_to_minor_for_every_currency() {
        for c in ALL {
            assert_eq!(c.minor_digits(), 2, "{c}");
            assert_eq!(minor_from_decimal("299", c), Ok(29900));
            assert_eq!(minor_from_decimal("299.00", c), Ok(29900));
            assert_eq!(minor_from_decimal("299.0", c), Ok(29900));
            assert_eq!(minor_from_decimal("0.01", c), Ok(1));
            assert_eq!(minor_from_decimal("1000000.50", c), Ok(100000050));
            assert_eq!(minor_from_decimal("10.500", c), Ok(1050));
            assert_eq!(minor_from_decimal("0", c), Ok(0));
            assert_eq!(minor_from_decimal("-0.00", c), Ok(0));
            assert_eq!(minor_from_decimal("2.99e2", c), Ok(29900));
            assert_eq!(minor_from_decimal("1E-2", c), Ok(1));
            assert_eq!(minor_from_decimal("0e999999999999999999999", c), Ok(0));
            // Beyond f64's 53 bits: 9007199254740993 kopecks.
            assert_eq!(
                minor_from_decimal("90071992547409.93", c),
                Ok(9_007_199_254_740_993)
            );
            assert_eq!(minor_from_decimal("92233720368547758.07", c), Ok(i64::MAX));
            for (minor, text) in [
                (29900, "299.00"),
                (1, "0.01"),
                (100000050, "1000000.50"),
                (0, "0.00"),
                (i64::MAX, "92233720368547758.07"),
            ] {
                assert_eq!(decimal_from_minor(minor, c), text);
                assert_eq!(minor_from_decimal(text, c), Ok(minor));
            }
        }
    }

    #[test]
    fn inexact_or_malformed_decimals_are_errors() {
        let c = Currency::Rub;
        let too_precise = |t: &str| DecimalError::TooPrecise {
            text: t.to_string(),
            currency: c,
            digits: 2,
        };
        assert_eq!(minor_from_decimal("1.234", c), Err(too_precise("1.234")));
        assert_eq!(minor_from_decimal("0.001", c), Err(too_precise("0.001")));
        assert_eq!(minor_from_decimal("1e-3", c), Err(too_precise("1e-3")));
        assert_eq!(
            minor_from_decimal("-1", c),
            Err(DecimalError::Negative("-1".into()))
        );
        assert_eq!(
            minor_from_decimal("-0.01", c),
            Err(DecimalError::Negative("-0.01".into()))
        );
        for t in ["92233720368547758.08", "1e400", "99999999999999999999"] {
            assert_eq!(
                minor_from_decimal(t, c),
                Err(DecimalError::Overflow(t.into()))
            );
        }
        for t in [
            "", "-", ".5", "5.", "01", "1,5", "1e", "1e+", "abc", " 1", "1 ", "+1", "0x10",
            "1.2.3", "NaN", "1e2.5",
        ] {
            assert_eq!(
                minor_from_decimal(t, c),
                Err(DecimalError::Malformed(t.into())),
                "{t:?}"
            );
        }
    }
}
