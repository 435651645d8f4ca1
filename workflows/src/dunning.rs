//! The dunning plan: what falls due next for a paid subscription, and when. Pure (no workflow
//! context), so it is unit-tested here and the loop in [`crate::active`] only acts on it.
//!
//! Every due time is an absolute instant computed from the state (period end; due date + policy
//! offsets for retries and the grace end), so nothing drifts and a re-plan after any change is
//! exact.

use billing_domain::messages::{ActiveState, BillingConfig};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::time::Duration;

/// What falls due next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    Renew,
    EndAtPeriodEnd,
    Retry,
    Suspend,
    CancelForNonPayment,
}

pub(crate) fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

/// The next due action and its instant.
pub(crate) fn plan(a: &ActiveState, c: &BillingConfig) -> (DateTime<Utc>, Due) {
    let Some(d) = &a.dunning else {
        return if a.cancel_at_period_end {
            (a.period_end, Due::EndAtPeriodEnd)
        } else {
            (a.period_end, Due::Renew)
        };
    };
    let grace_end = add(d.due_at, c.dunning.grace);
    let retry_index = d.attempts.saturating_sub(1) as usize;
    let next_retry = (!d.hard)
        .then(|| c.dunning.retry_after.get(retry_index))
        .flatten()
        .map(|off| add(d.due_at, *off));
    let Some(cancel_after) = c.dunning.cancel_after else {
        // Subscriptions started before the phases: cancelled as soon as suspended with no retry
        // left (suspension lasted no time at all when the last retry came before the grace end).
        return match next_retry {
            Some(r) if d.suspended || r <= grace_end => (r, Due::Retry),
            Some(_) => (grace_end, Due::Suspend),
            None if !d.suspended => (grace_end, Due::Suspend),
            None => (grace_end, Due::CancelForNonPayment),
        };
    };
    // Phases: retries (access kept until the grace end, then suspended; the retries left still
    // run), cancelled for non-payment at `cancel_after` whatever is left.
    let cancel_at = add(d.due_at, cancel_after);
    let suspend_first = !d.suspended && grace_end < cancel_at;
    match next_retry.filter(|r| *r < cancel_at) {
        Some(r) if suspend_first && grace_end < r => (grace_end, Due::Suspend),
        Some(r) => (r, Due::Retry),
        None if suspend_first => (grace_end, Due::Suspend),
        None => (cancel_at, Due::CancelForNonPayment),
    }
}

/// The next planned charge (renewal or retry), for the query and the search attribute.
pub(crate) fn next_charge(a: &ActiveState, c: &BillingConfig) -> Option<DateTime<Utc>> {
    match plan(a, c) {
        (t, Due::Renew | Due::Retry) => Some(t),
        (_, Due::Suspend) => {
            let d = a.dunning.as_ref()?;
            (!d.hard)
                .then(|| {
                    c.dunning
                        .retry_after
                        .get(d.attempts.saturating_sub(1) as usize)
                })
                .flatten()
                .map(|o| add(d.due_at, *o))
                .filter(|r| {
                    c.dunning
                        .cancel_after
                        .is_none_or(|cancel| *r < add(d.due_at, cancel))
                })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_domain::messages::{Dunning, DunningPolicy, TariffSnapshot};
    use billing_domain::{BillingPeriod, Currency, InvoiceId, Money, PeriodUnit, TariffCode};

    fn state(dunning: Option<Dunning>) -> ActiveState {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        ActiveState {
            anchor: t0,
            period_index: 0,
            period_start: t0,
            period_end: t0 + ChronoDuration::days(30),
            token: Some(billing_domain::CardToken::new("tk")),
            tariff: TariffSnapshot {
                code: TariffCode::parse("basic").unwrap(),
                name: "b".into(),
                price: Money {
                    minor: 100,
                    currency: Currency::Rub,
                },
                period: BillingPeriod {
                    unit: PeriodUnit::Month,
                    count: 1,
                },
            },
            pending_tariff: None,
            cancel_at_period_end: false,
            dunning,
            renewals: 0,
            clock_offset_secs: 0,
            start_answer: None,
            email: String::new(),
        }
    }

    fn dunning(attempts: u32, hard: bool, suspended: bool) -> Dunning {
        let due = DateTime::from_timestamp(1_800_000_000, 0).unwrap() + ChronoDuration::days(30);
        Dunning {
            invoice_id: InvoiceId(uuid::Uuid::nil()),
            period_index: 1,
            due_at: due,
            period_end: due + ChronoDuration::days(30),
            amount: Money {
                minor: 100,
                currency: Currency::Rub,
            },
            attempts,
            hard,
            suspended,
            last_code: Some(5051),
        }
    }

    #[test]
    fn phases_suspend_at_the_grace_end_and_cancel_at_cancel_after() {
        let day = Duration::from_secs(86_400);
        let c = BillingConfig::default(); // retries 1, 3, 5 days; grace 7; cancel after 14
        c.dunning.validate().unwrap();
        let due = dunning(1, false, false).due_at;
        assert_eq!(
            plan(&state(Some(dunning(1, false, false))), &c),
            (add(due, day), Due::Retry)
        );
        assert_eq!(
            plan(&state(Some(dunning(3, false, false))), &c),
            (add(due, 5 * day), Due::Retry)
        );
        // Retries used up: suspended at the grace end, a week later cancelled.
        assert_eq!(
            plan(&state(Some(dunning(4, false, false))), &c),
            (add(due, 7 * day), Due::Suspend)
        );
        assert_eq!(
            plan(&state(Some(dunning(4, false, true))), &c),
            (add(due, 14 * day), Due::CancelForNonPayment)
        );
        // Hard decline: no retries, same phases.
        assert_eq!(
            plan(&state(Some(dunning(1, true, false))), &c),
            (add(due, 7 * day), Due::Suspend)
        );
        assert_eq!(
            plan(&state(Some(dunning(1, true, true))), &c),
            (add(due, 14 * day), Due::CancelForNonPayment)
        );
        // A short grace: suspended first, the retries go on while suspended.
        let mut short = c.clone();
        short.dunning.grace = day / 2;
        assert_eq!(
            plan(&state(Some(dunning(1, false, false))), &short),
            (add(due, day / 2), Due::Suspend)
        );
        assert_eq!(
            plan(&state(Some(dunning(1, false, true))), &short),
            (add(due, day), Due::Retry)
        );
        // A retry planned after the cancellation never runs.
        let mut late = c.clone();
        late.dunning.cancel_after = Some(4 * day);
        late.dunning.grace = 2 * day;
        assert_eq!(
            plan(&state(Some(dunning(3, false, true))), &late).1,
            Due::CancelForNonPayment
        );
        assert_eq!(
            next_charge(&state(Some(dunning(3, false, false))), &late),
            None
        );
    }

    #[test]
    fn policies_are_validated() {
        let day = Duration::from_secs(86_400);
        let ok = DunningPolicy::default();
        assert!(ok.validate().is_ok());
        let unordered = DunningPolicy {
            retry_after: vec![3 * day, day],
            ..ok.clone()
        };
        assert!(unordered.validate().unwrap_err().contains("ascending"));
        let long_grace = DunningPolicy {
            grace: 20 * day,
            ..ok.clone()
        };
        assert!(long_grace.validate().unwrap_err().contains("grace"));
        let retry_after_cancel = DunningPolicy {
            retry_after: vec![day, 15 * day],
            ..ok
        };
        assert!(retry_after_cancel
            .validate()
            .unwrap_err()
            .contains("before the cancellation"));
    }

    #[test]
    fn dunning_plan_follows_the_policy() {
        let day = Duration::from_secs(86_400);
        let c = BillingConfig {
            dunning: DunningPolicy {
                retry_after: vec![day, 3 * day, 5 * day],
                grace: 4 * day,
                cancel_after: None,
            },
            ..Default::default()
        };
        let s = state(None);
        assert_eq!(plan(&s, &c), (s.period_end, Due::Renew));
        let d = dunning(1, false, false);
        let due = d.due_at;
        assert_eq!(plan(&state(Some(d)), &c), (add(due, day), Due::Retry));
        assert_eq!(
            plan(&state(Some(dunning(2, false, false))), &c),
            (add(due, 3 * day), Due::Retry)
        );
        // the 5-day retry comes after the 4-day grace: suspend first, then retry
        assert_eq!(
            plan(&state(Some(dunning(3, false, false))), &c),
            (add(due, 4 * day), Due::Suspend)
        );
        assert_eq!(
            plan(&state(Some(dunning(3, false, true))), &c),
            (add(due, 5 * day), Due::Retry)
        );
        assert_eq!(
            plan(&state(Some(dunning(4, false, true))), &c).1,
            Due::CancelForNonPayment
        );
        // hard decline: no retries, wait for the grace end, then give up
        assert_eq!(
            plan(&state(Some(dunning(1, true, false))), &c),
            (add(due, 4 * day), Due::Suspend)
        );
        assert_eq!(
            plan(&state(Some(dunning(1, true, true))), &c).1,
            Due::CancelForNonPayment
        );
        let mut s = state(None);
        s.cancel_at_period_end = true;
        assert_eq!(plan(&s, &c).1, Due::EndAtPeriodEnd);
    }
}
