//! Every sentence a user is told (the `message` of a notification), from one fixed catalogue.
//! Internal error text (a timeout, a gateway message, a stack of causes) never reaches a user:
//! what happened is one of these cases, with the decline's reason code described by
//! [`crate::decline::describe`].

use crate::decline::describe;
use chrono::{DateTime, Utc};

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The user cancelled with immediate effect.
    ByUser,
    /// The user had cancelled at the end of the paid period, which has come.
    AtPeriodEnd,
    /// The renewal stayed unpaid to the end of the dunning.
    NonPayment,
    /// The service operator cancelled it (Temporal cancellation request).
    ByOperator,
    /// The service operator cancelled it before the bank confirmed the first payment.
    ByOperatorBeforePayment,
}

fn date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The first payment went through.
pub fn paid(tariff: &str, until: DateTime<Utc>) -> String {
    format!("Your {tariff} subscription is paid until {}.", date(until))
}

/// The first payment was declined.
pub fn declined(code: i32) -> String {
    format!(
        "The payment was declined: {}. Nothing was charged.",
        describe(code)
    )
}

/// The gateway refused the payment request itself (not the bank).
pub fn refused() -> String {
    "The payment could not be made with this card. Nothing was charged.".into()
}

/// The bank asks the user to confirm the payment.
pub fn three_ds_required() -> String {
    "Confirm the payment with your bank (3-D Secure) to start the subscription.".into()
}

/// Nobody confirmed the 3-D Secure challenge in time.
pub fn three_ds_expired() -> String {
    "The 3-D Secure confirmation was not completed in time. Nothing was charged.".into()
}

/// A renewal went through.
pub fn renewed(until: DateTime<Utc>) -> String {
    format!("Your subscription is renewed until {}.", date(until))
}

/// A renewal was declined; `retry` says whether billing will try again by itself.
pub fn renewal_failed(code: i32, retry: bool) -> String {
    if retry {
        format!(
            "The renewal payment was declined: {}. We will try again; you keep access meanwhile.",
            describe(code)
        )
    } else {
        format!(
            "The renewal payment was declined: {}. Update your card to keep watching.",
            describe(code)
        )
    }
}

/// Access is suspended while the renewal stays unpaid.
pub fn suspended() -> String {
    "Access is suspended: the renewal is unpaid. Update your card to watch again.".into()
}

/// The subscription ended.
pub fn ended(why: Ending) -> String {
    match why {
        Ending::ByUser => "Your subscription is cancelled.".into(),
        Ending::AtPeriodEnd => {
            "Your subscription has ended at the end of the paid period, as you asked.".into()
        }
        Ending::NonPayment => {
            "Your subscription is cancelled: the renewal stayed unpaid.".into()
        }
        Ending::ByOperator => "Your subscription was cancelled by the service.".into(),
        Ending::ByOperatorBeforePayment => {
            "Your subscription was cancelled by the service before the payment was confirmed. Nothing was charged.".into()
        }
    }
}

/// A cancel-now arrived while the renewal was being paid: the paid period is kept.
pub fn cancelled_after_paid_period(until: DateTime<Utc>) -> String {
    format!(
        "Your cancellation arrived while the renewal was being paid. The payment went through, so your subscription stays active until {} and then ends; nothing more will be charged.",
        date(until)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_happened_and_nothing_internal() {
        assert!(declined(5051).contains("insufficient funds"));
        assert!(renewal_failed(5051, true).contains("try again"));
        assert!(renewal_failed(5054, false).contains("Update your card"));
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(
            renewed(t),
            "Your subscription is renewed until 2027-01-15 08:00 UTC."
        );
        for m in [
            refused(),
            three_ds_expired(),
            suspended(),
            ended(Ending::ByOperator),
        ] {
            assert!(!m.contains("error") && !m.contains("timeout"), "{m}");
        }
    }
}
