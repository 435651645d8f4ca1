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
    /// How long one charge is retried with the same `X-Request-ID` on transient gateway failures
    /// (5xx, 429, timeouts, connection errors) before its outcome counts as unknown and the
    /// workflow reconciles (`reconcile_*`).
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
    /// After an unknown charge outcome: first wait before asking the gateway again (and, if it
    /// knows nothing, sending the same charge again); doubles up to `reconcile_max_interval`.
    #[serde(default = "default_reconcile_interval")]
    pub reconcile_interval: Duration,
    #[serde(default = "default_reconcile_max_interval")]
    pub reconcile_max_interval: Duration,
    /// How long an unknown outcome is reconciled before the subscription is parked in
    /// `needs_attention` for an operator. "Not found" is never taken as "not charged".
    #[serde(default = "default_reconcile_window")]
    pub reconcile_window: Duration,
    /// Test mode only (with `test_clock`): after each money-moving call answered, every workflow
    /// task fails for this long (zero: never), as a task that keeps failing after the money
    /// moved (a bug, a bad deploy). Tests and the chaos run use it to prove such failures never
    /// charge twice, even past the gateway's idempotency window.
    #[serde(default)]
    pub test_fail_tasks_after_charge: Duration,
    /// The share of money-moving calls (per cent, chosen by a hash of the subscription and the
    /// call, so a run is reproducible) that `test_fail_tasks_after_charge` applies to.
    #[serde(default = "all_percent")]
    pub test_fail_tasks_after_charge_percent: u32,
}

/// One policy for failed renewals, in phases. Times count from the due date of the unpaid
/// period: retries at `retry_after`; access kept until `grace` (the grace phase); then
/// suspended (access revoked; the retries left still run); cancelled for non-payment at
/// `cancel_after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningPolicy {
    /// Retries of a retryable decline, each counted from the due date (e.g. 1, 3 and 5 days).
    pub retry_after: Vec<Duration>,
    /// Access is kept this long after the due date; then it is suspended (revoked).
    pub grace: Duration,
    /// The subscription is cancelled for non-payment this long after the due date. `None`
    /// (subscriptions started before the phases existed): as soon as it is suspended and no
    /// retry is left.
    #[serde(default)]
    pub cancel_after: Option<Duration>,
}

impl Default for DunningPolicy {
    fn default() -> Self {
        let day = Duration::from_secs(86_400);
        Self {
            retry_after: vec![day, 3 * day, 5 * day],
            grace: 7 * day,
            cancel_after: Some(14 * day),
        }
    }
}

impl DunningPolicy {
    /// Checks the phases: retries in ascending order, each before the cancellation, the grace
    /// not longer than the whole dunning. The message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.retry_after.windows(2).any(|w| w[0] >= w[1]) {
            return Err(
                "dunning retries must be in ascending order (BILLING_DUNNING_RETRY_AFTER_SECS)"
                    .into(),
            );
        }
        if self.retry_after.first().is_some_and(|d| d.is_zero()) {
            return Err(
                "a dunning retry must come after the due date (BILLING_DUNNING_RETRY_AFTER_SECS)"
                    .into(),
            );
        }
        if let Some(cancel) = self.cancel_after {
            if self.grace > cancel {
                return Err(format!(
                    "the dunning grace ({} s) must not be longer than the time to cancellation ({} s): BILLING_DUNNING_GRACE_SECS <= BILLING_DUNNING_CANCEL_AFTER_SECS",
                    self.grace.as_secs(),
                    cancel.as_secs()
                ));
            }
            if let Some(last) = self.retry_after.last().filter(|r| **r >= cancel) {
                return Err(format!(
                    "the last dunning retry ({} s) must come before the cancellation ({} s)",
                    last.as_secs(),
                    cancel.as_secs()
                ));
            }
        }
        Ok(())
    }
}

fn default_renewals_per_run() -> u32 {
    12
}

fn default_three_ds_expiry() -> Duration {
    Duration::from_secs(15 * 60)
}

fn all_percent() -> u32 {
    100
}

fn default_reconcile_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_reconcile_max_interval() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_reconcile_window() -> Duration {
    Duration::from_secs(24 * 3600)
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
            reconcile_interval: default_reconcile_interval(),
            reconcile_max_interval: default_reconcile_max_interval(),
            reconcile_window: default_reconcile_window(),
            test_fail_tasks_after_charge: Duration::ZERO,
            test_fail_tasks_after_charge_percent: 100,
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

/// An operator's repair of a subscription in `needs_attention` (the `repair` update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairRequest {
    pub action: RepairAction,
    /// Why (required; kept in the workflow's history and, with the audit log, shown to
    /// operators).
    pub reason: String,
}

/// What the operator decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RepairAction {
    /// Run the step that failed again (after fixing its cause, e.g. the database).
    RetryStep,
    /// The charge was made: adopt this gateway transaction (it must exist, be completed, carry
    /// this invoice and the invoice's amount).
    AdoptTransaction {
        gateway_transaction_id: GatewayTransactionId,
    },
    /// Nothing was charged: close the open invoice as void (the renewal counts as declined).
    VoidInvoice,
}

impl RepairRequest {
    /// Checks what can be checked without the gateway.
    pub fn validate(&self) -> Result<(), String> {
        let reason = self.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err("a repair needs a reason (1..500 characters)".into());
        }
        if let RepairAction::AdoptTransaction {
            gateway_transaction_id,
        } = self.action
        {
            if gateway_transaction_id.0 <= 0 {
                return Err(
                    "gateway_transaction_id must be the positive id of a gateway transaction"
                        .into(),
                );
            }
        }
        Ok(())
    }
}
