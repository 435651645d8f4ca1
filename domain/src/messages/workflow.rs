//! What the workflow is started with and keeps: its input (also each continued run's), the
//! configuration and tariff it copied, the paid subscription's state carried across
//! continue-as-new, and the payloads of the updates that feed it (first payment, 3-D Secure
//! answer).
//!
//! Changing a field here changes recorded histories: add fields with `#[serde(default)]`.

use super::api::PaymentOutcome;
use crate::secret::{CardToken, Cryptogram, PaRes};
use crate::{
    AccountId, BillingPeriod, GatewayTransactionId, InvoiceId, Money, RequestId, SubscriptionId,
    TariffCode,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A tariff as it was when copied into a subscription (price changes do not touch live ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffSnapshot {
    pub code: TariffCode,
    pub name: String,
    pub price: Money,
    pub period: BillingPeriod,
}

/// Durations and limits of the workflow. All configuration, so tests can shrink them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingConfig {
    /// Longest a single gateway call may take before the activity attempt is abandoned.
    pub charge_attempt_timeout: Duration,
    /// How long transient gateway failures (5xx, 429, timeouts, connection errors) are retried
    /// before the first payment reports `Unavailable`.
    pub charge_retry_window: Duration,
    /// First retry delay of gateway calls; doubles up to `retry_max_interval`.
    pub retry_initial_interval: Duration,
    pub retry_max_interval: Duration,
    /// Timeout of database and access/notification activities (they retry without limit).
    pub side_effect_timeout: Duration,
    /// How long a 3-D Secure challenge waits for the bank's answer before the payment expires.
    #[serde(default = "default_three_ds_expiry")]
    pub three_ds_expiry: Duration,
    /// Dunning: what happens after a renewal is declined.
    #[serde(default)]
    pub dunning: DunningPolicy,
    /// Test mode only: lets the `advance_clock` update move this subscription's clock.
    #[serde(default)]
    pub test_clock: bool,
    /// Paid renewals per workflow run: the run continues as new at the period boundary after this
    /// many (or earlier when Temporal suggests it). 12 = one run per year of monthly billing,
    /// ~15 history events per renewal; 1 = a fresh run every period.
    #[serde(default = "default_renewals_per_run")]
    pub renewals_per_run: u32,
}

/// One policy for failed renewals. Times count from the due date of the unpaid period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningPolicy {
    /// Retries of a retryable decline, each counted from the due date (e.g. 1, 3 and 5 days).
    pub retry_after: Vec<Duration>,
    /// Access is kept this long after the due date; then it is suspended (revoked).
    pub grace: Duration,
}

impl Default for DunningPolicy {
    fn default() -> Self {
        let day = Duration::from_secs(86_400);
        Self {
            retry_after: vec![day, 3 * day, 5 * day],
            grace: 7 * day,
        }
    }
}

fn default_renewals_per_run() -> u32 {
    12
}

fn default_three_ds_expiry() -> Duration {
    Duration::from_secs(15 * 60)
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            charge_attempt_timeout: Duration::from_secs(30),
            charge_retry_window: Duration::from_secs(60),
            retry_initial_interval: Duration::from_millis(500),
            retry_max_interval: Duration::from_secs(10),
            side_effect_timeout: Duration::from_secs(15),
            three_ds_expiry: default_three_ds_expiry(),
            dunning: DunningPolicy::default(),
            test_clock: false,
            renewals_per_run: default_renewals_per_run(),
        }
    }
}

/// Input of `SubscriptionWorkflow` (and of each continued run).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionInput {
    /// Set on continued runs (continue-as-new): the live billing state to resume.
    #[serde(default)]
    pub resume: Option<ActiveState>,
    pub subscription_id: SubscriptionId,
    pub account_id: AccountId,
    /// The request id that created this subscription: any other request id is a duplicate start.
    pub request_id: RequestId,
    pub tariff: TariffSnapshot,
    pub email: String,
    pub config: BillingConfig,
    /// Workflow code versions that apply to this whole run (`billing_workflows::patches`): set
    /// by the workflow itself (0 from callers; histories recorded before it have none).
    #[serde(default)]
    pub patch_baseline: u32,
}

/// The first payment: the update sent together with the workflow start.
#[derive(Clone, Serialize, Deserialize)]
pub struct FirstPaymentRequest {
    pub request_id: RequestId,
    /// Single-use card packet from the gateway's checkout script. Never logged or stored in SQL.
    pub cryptogram: Cryptogram,
    pub cardholder_name: String,
    pub payer_ip: String,
    pub email: String,
}

impl std::fmt::Debug for FirstPaymentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstPaymentRequest")
            .field("request_id", &self.request_id)
            .field("cryptogram", &self.cryptogram)
            .field("payer_ip", &self.payer_ip)
            .finish_non_exhaustive()
    }
}

/// The bank's answer to a 3-D Secure challenge, as the ACS posted it back.
#[derive(Clone, Serialize, Deserialize)]
pub struct ThreeDsAnswer {
    pub gateway_transaction_id: GatewayTransactionId,
    pub pa_res: PaRes,
}

impl std::fmt::Debug for ThreeDsAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreeDsAnswer")
            .field("gateway_transaction_id", &self.gateway_transaction_id)
            .field("pa_res", &self.pa_res)
            .finish()
    }
}

/// A failed renewal being dunned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dunning {
    pub invoice_id: InvoiceId,
    /// Index (from the anchor) of the unpaid period.
    pub period_index: u32,
    /// Start of the unpaid period (its due date).
    pub due_at: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub amount: Money,
    /// Charge attempts made for this invoice (1 = the renewal itself).
    pub attempts: u32,
    /// A hard decline (expired, lost, stolen card...): no more retries, wait for a new card.
    pub hard: bool,
    pub suspended: bool,
    pub last_code: Option<i32>,
}

/// The state of a paid subscription, carried across continue-as-new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveState {
    /// Start of period 0 of the current tariff's schedule.
    pub anchor: DateTime<Utc>,
    /// Index of the current (last paid) period from `anchor`.
    pub period_index: u32,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// Saved card (gateway token) for renewals.
    pub token: Option<CardToken>,
    pub tariff: TariffSnapshot,
    pub pending_tariff: Option<TariffSnapshot>,
    pub cancel_at_period_end: bool,
    pub dunning: Option<Dunning>,
    /// Renewals paid so far (the first payment not counted).
    pub renewals: u32,
    /// Test clock: seconds this subscription's clock is ahead of real time.
    pub clock_offset_secs: i64,
    /// The first payment's answer, so a retried start still gets it after continue-as-new.
    pub start_answer: Option<PaymentOutcome>,
    pub email: String,
}
