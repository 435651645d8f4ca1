//! Search attributes (registered by `temporal/search-attributes.txt`). No personal data here:
//! they are stored in plain text.

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
