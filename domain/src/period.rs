//! Calendar-aware billing periods. Period `n` is computed from the anchor, never by chaining
//! (a month from Jan 31 is Feb 28/29, and the period after that is Mar 31 again: no drift).

use chrono::{DateTime, Datelike, Duration, Months, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodUnit {
    /// Test tariffs only: lets a test run many periods in seconds.
    Second,
    Day,
    Week,
    Month,
    Year,
}

impl PeriodUnit {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "second" => Some(Self::Second),
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Second => "second",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }
}

/// A tariff's billing period: `count` × `unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BillingPeriod {
    pub unit: PeriodUnit,
    pub count: u32,
}

impl BillingPeriod {
    /// Start of period number `n` (0-based) for a subscription anchored at `anchor`.
    /// Returns `None` only on calendar overflow (year > 262143).
    pub fn nth_start(&self, anchor: DateTime<Utc>, n: u32) -> Option<DateTime<Utc>> {
        let steps = i64::from(self.count) * i64::from(n);
        match self.unit {
            PeriodUnit::Second => anchor.checked_add_signed(Duration::try_seconds(steps)?),
            PeriodUnit::Day => anchor.checked_add_signed(Duration::try_days(steps)?),
            PeriodUnit::Week => anchor.checked_add_signed(Duration::try_weeks(steps)?),
            PeriodUnit::Month => add_months(anchor, steps),
            PeriodUnit::Year => add_months(anchor, steps.checked_mul(12)?),
        }
    }

    /// End of period `n` = start of period `n + 1`.
    pub fn nth_end(&self, anchor: DateTime<Utc>, n: u32) -> Option<DateTime<Utc>> {
        self.nth_start(anchor, n.checked_add(1)?)
    }
}

/// chrono's `checked_add_months` already clamps to the last day of a shorter month.
fn add_months(anchor: DateTime<Utc>, months: i64) -> Option<DateTime<Utc>> {
    let m = u32::try_from(months).ok()?;
    let out = anchor.checked_add_months(Months::new(m))?;
    debug_assert!(out.day() <= anchor.day());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(y: i32, m: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, day, 10, 30, 0).unwrap()
    }

    #[test]
    fn month_end_clamps_without_drift() {
        let p = BillingPeriod {
            unit: PeriodUnit::Month,
            count: 1,
        };
        let a = d(2026, 1, 31);
        assert_eq!(p.nth_start(a, 0).unwrap(), a);
        assert_eq!(p.nth_end(a, 0).unwrap(), d(2026, 2, 28));
        assert_eq!(p.nth_end(a, 1).unwrap(), d(2026, 3, 31));
        assert_eq!(p.nth_end(a, 2).unwrap(), d(2026, 4, 30));
        // leap year
        assert_eq!(p.nth_end(d(2028, 1, 31), 0).unwrap(), d(2028, 2, 29));
        assert_eq!(p.nth_end(d(2028, 1, 31), 11).unwrap(), d(2029, 1, 31));
    }

    #[test]
    fn yearly_from_leap_day() {
        let p = BillingPeriod {
            unit: PeriodUnit::Year,
            count: 1,
        };
        assert_eq!(p.nth_end(d(2028, 2, 29), 0).unwrap(), d(2029, 2, 28));
        assert_eq!(p.nth_end(d(2028, 2, 29), 3).unwrap(), d(2032, 2, 29));
    }

    #[test]
    fn fixed_units() {
        let p = BillingPeriod {
            unit: PeriodUnit::Week,
            count: 2,
        };
        assert_eq!(p.nth_end(d(2026, 1, 1), 0).unwrap(), d(2026, 1, 15));
        let s = BillingPeriod {
            unit: PeriodUnit::Second,
            count: 5,
        };
        assert_eq!(
            s.nth_end(d(2026, 1, 1), 1).unwrap(),
            d(2026, 1, 1) + Duration::seconds(10)
        );
    }
}
