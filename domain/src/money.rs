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
        format_minor(self.minor)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", format_minor(self.minor), self.currency)
    }
}

/// `29900` -> `"299.00"`.
pub fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
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
}
