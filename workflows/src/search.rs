//! Search attributes (registered by `temporal/search-attributes.txt`), the operators' filters in
//! the Temporal Web UI, and [`publish`], which keeps them current. No personal data here: they
//! are stored in plain text.

use crate::dunning::next_charge;
use crate::patches::{self, patched};
use crate::state::{ts, Ctx};
use temporalio_common::search_attributes::{SearchAttributeKey, Timestamp};

pub const SUBSCRIPTION_STATUS: SearchAttributeKey<String> =
    SearchAttributeKey::keyword("SubscriptionStatus");
pub const TARIFF_CODE: SearchAttributeKey<String> = SearchAttributeKey::keyword("TariffCode");
pub const PAYMENT_STATE: SearchAttributeKey<String> = SearchAttributeKey::keyword("PaymentState");
pub const NEXT_CHARGE_AT: SearchAttributeKey<Timestamp> =
    SearchAttributeKey::datetime("NextChargeAt");
pub const FAILED_ATTEMPTS: SearchAttributeKey<i64> = SearchAttributeKey::int("FailedAttempts");
pub const LAST_DECLINE_CODE: SearchAttributeKey<String> =
    SearchAttributeKey::keyword("LastDeclineCode");
pub const BILLING_PERIOD: SearchAttributeKey<i64> = SearchAttributeKey::int("BillingPeriod");
pub const CANCEL_AT_PERIOD_END: SearchAttributeKey<bool> =
    SearchAttributeKey::bool("CancelAtPeriodEnd");

/// Upserts the subscription's search attributes from its state (a repeat of the last upsert is
/// skipped).
pub(crate) fn publish(ctx: &Ctx) {
    let (status, payment, a, failed, code, config) = ctx.state(|s| {
        (
            s.status,
            s.payment_state,
            s.active.clone(),
            s.failed_attempts,
            s.last_decline_code,
            s.input.config.clone(),
        )
    });
    let mut attrs = vec![
        SUBSCRIPTION_STATUS.value_set(status.as_str().to_string()),
        PAYMENT_STATE.value_set(payment.as_str().to_string()),
        FAILED_ATTEMPTS.value_set(i64::from(failed)),
        LAST_DECLINE_CODE.value_set(code.map(|c| c.to_string()).unwrap_or_default()),
    ];
    if let Some(a) = &a {
        attrs.push(TARIFF_CODE.value_set(a.tariff.code.to_string()));
        attrs.push(BILLING_PERIOD.value_set(i64::from(a.renewals)));
        attrs.push(CANCEL_AT_PERIOD_END.value_set(a.cancel_at_period_end));
        if let Some(t) = next_charge(a, &config).filter(|_| !status.is_terminal()) {
            attrs.push(NEXT_CHARGE_AT.value_set(ts(t)));
        }
    }
    if patched(ctx, patches::QUIET_UPSERTS) {
        // Every upsert is a history event and a visibility write: skip a repeat of the last.
        let key = format!("{attrs:?}");
        if ctx.state(|s| s.published.as_deref() == Some(key.as_str())) {
            return;
        }
        ctx.state_mut(|s| s.published = Some(key));
    }
    ctx.upsert_search_attributes(attrs);
}
