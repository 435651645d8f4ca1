//! Types that cross the API → workflow → activity boundary (serde JSON payloads in Temporal).
//!
//! Changing a field here changes recorded histories: add fields with `#[serde(default)]`.

use crate::{
    AccountId, BillingPeriod, GatewayTransactionId, InvoiceId, Money, RequestId, SubscriptionId,
    TariffCode, TransactionUuid,
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
    pub cryptogram: String,
    pub cardholder_name: String,
    pub payer_ip: String,
    pub email: String,
}

impl std::fmt::Debug for FirstPaymentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstPaymentRequest")
            .field("request_id", &self.request_id)
            .field("cryptogram", &crate::mask::mask(&self.cryptogram))
            .field("payer_ip", &self.payer_ip)
            .finish_non_exhaustive()
    }
}

/// What `StartSubscription` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PaymentOutcome {
    Paid {
        subscription_id: SubscriptionId,
        invoice_id: InvoiceId,
        transaction_id: TransactionUuid,
        gateway_transaction_id: GatewayTransactionId,
        amount: Money,
        access_until: DateTime<Utc>,
    },
    Declined {
        subscription_id: SubscriptionId,
        invoice_id: InvoiceId,
        gateway_transaction_id: Option<GatewayTransactionId>,
        reason_code: i32,
        message: String,
    },
    /// The gateway could not be reached within the retry window and nothing was charged.
    Unavailable {
        subscription_id: SubscriptionId,
        message: String,
    },
    /// The bank asks for 3-D Secure: the browser must post `pa_req` to `acs_url` (MD = the
    /// gateway transaction id); the answer comes back through `Confirm3ds` / the TermUrl.
    ThreeDsRequired {
        subscription_id: SubscriptionId,
        invoice_id: InvoiceId,
        gateway_transaction_id: GatewayTransactionId,
        acs_url: String,
        pa_req: String,
    },
    /// Nobody answered the 3-D Secure challenge in time: nothing was charged.
    Expired {
        subscription_id: SubscriptionId,
        invoice_id: InvoiceId,
        message: String,
    },
}

impl PaymentOutcome {
    pub fn subscription_id(&self) -> SubscriptionId {
        match self {
            Self::Paid {
                subscription_id, ..
            }
            | Self::Declined {
                subscription_id, ..
            }
            | Self::Unavailable {
                subscription_id, ..
            }
            | Self::ThreeDsRequired {
                subscription_id, ..
            }
            | Self::Expired {
                subscription_id, ..
            } => *subscription_id,
        }
    }

    /// Whether this answer ends the first payment (paid, declined, expired).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Paid { .. } | Self::Declined { .. } | Self::Expired { .. }
        )
    }
}

/// Lifecycle status of a subscription (also the `SubscriptionStatus` search attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Pending,
    AwaitingPayment,
    Active,
    PastDue,
    Cancelled,
    /// Renewal unpaid past the grace period: access revoked, retries may still run.
    Suspended,
    Declined,
    /// The first payment's 3-D Secure challenge was never answered.
    Expired,
    Ended,
}

impl SubscriptionStatus {
    /// The subscription is over; nothing more will be charged.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Cancelled | Self::Declined | Self::Expired | Self::Ended
        )
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Pending => "pending",
            Self::AwaitingPayment => "awaiting_payment",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Cancelled => "cancelled",
            Self::Suspended => "suspended",
            Self::Declined => "declined",
            Self::Ended => "ended",
        }
    }
}

/// The `PaymentState` search attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    Idle,
    Charging,
    Reconciling,
    Awaiting3ds,
    Failed,
}

impl PaymentState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Charging => "charging",
            Self::Reconciling => "reconciling",
            Self::Awaiting3ds => "awaiting_3ds",
            Self::Failed => "failed",
        }
    }
}

/// The live state behind the `state` query and gRPC `GetSubscription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionView {
    pub subscription_id: SubscriptionId,
    pub account_id: AccountId,
    pub status: SubscriptionStatus,
    pub payment_state: PaymentState,
    pub tariff_code: TariffCode,
    pub price: Money,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub next_charge_at: Option<DateTime<Utc>>,
    pub failed_attempts: u32,
    pub last_decline_code: Option<i32>,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    /// Tariff that takes effect at the next renewal.
    #[serde(default)]
    pub pending_tariff_code: Option<TariffCode>,
    #[serde(default)]
    pub renewals: u32,
    /// Test clock offset (test mode only).
    #[serde(default)]
    pub clock_offset_secs: i64,
}

// ---------- activity messages ----------

/// Open (idempotently) the account, subscription row and the invoice of one period.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenInvoice {
    pub subscription_id: SubscriptionId,
    pub account_id: AccountId,
    pub email: String,
    pub tariff: TariffSnapshot,
    pub invoice_id: InvoiceId,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
}

/// A cryptogram charge of one invoice.
#[derive(Clone, Serialize, Deserialize)]
pub struct CryptogramCharge {
    pub invoice_id: InvoiceId,
    pub account_id: AccountId,
    pub amount: Money,
    pub request_key: String,
    pub description: String,
    pub payment: FirstPaymentRequest,
}

impl std::fmt::Debug for CryptogramCharge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptogramCharge")
            .field("invoice_id", &self.invoice_id)
            .field("amount", &self.amount)
            .field("request_key", &self.request_key)
            .field("payment", &self.payment)
            .finish()
    }
}

/// A gateway transaction as billing records it (no card number, no cryptogram).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayTransaction {
    pub gateway_transaction_id: GatewayTransactionId,
    pub status: String,
    pub reason_code: i32,
    pub reason: String,
    pub amount: Money,
    /// Saved-card token; present on approved cryptogram payments with an AccountId.
    pub token: Option<String>,
    pub card_mask: Option<String>,
    pub card_exp: Option<String>,
    pub card_type: Option<String>,
}

impl std::fmt::Debug for GatewayTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayTransaction")
            .field("gateway_transaction_id", &self.gateway_transaction_id)
            .field("status", &self.status)
            .field("reason_code", &self.reason_code)
            .field("amount", &self.amount)
            .field("token", &self.token.as_deref().map(crate::mask::mask))
            .field("card_mask", &self.card_mask)
            .finish_non_exhaustive()
    }
}

impl GatewayTransaction {
    pub fn is_completed(&self) -> bool {
        self.status == "Completed"
    }
}

/// Result of a charge activity. Declines are *not* here: they fail the activity non-retryably
/// (type [`CARD_DECLINED`]) with a [`GatewayTransaction`] as details.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChargeResult {
    Approved {
        transaction: GatewayTransaction,
    },
    ThreeDsRequired {
        gateway_transaction_id: GatewayTransactionId,
        acs_url: String,
        pa_req: String,
    },
}

/// Failure type names of charge activities.
pub const CARD_DECLINED: &str = "CardDeclined";
/// Transient: 5xx, 429, timeout, connection error. Retried within the window.
pub const GATEWAY_UNAVAILABLE: &str = "GatewayUnavailable";
/// The gateway rejected the request as malformed (Success:false + Message). A bug or bad input.
pub const GATEWAY_REJECTED: &str = "GatewayRejected";

/// Ask the gateway what happened to an invoice's charge (after an unknown outcome).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindPayment {
    pub invoice_id: InvoiceId,
    pub currency: crate::Currency,
}

/// Record a gateway transaction; if approved also: payment method, invoice paid, subscription
/// active until `period_end`. One SQL transaction; idempotent by gateway transaction id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordTransaction {
    pub subscription_id: SubscriptionId,
    pub account_id: AccountId,
    pub invoice_id: InvoiceId,
    pub transaction: GatewayTransaction,
    pub period_end: DateTime<Utc>,
}

/// Close an invoice without payment and set the subscription's status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloseUnpaid {
    pub subscription_id: SubscriptionId,
    pub invoice_id: InvoiceId,
    /// `void` (nothing owed: first payment failed) or `uncollectible`.
    pub invoice_status: String,
    pub subscription_status: SubscriptionStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantAccess {
    pub account_id: AccountId,
    pub subscription_id: SubscriptionId,
    pub until: DateTime<Utc>,
    pub transaction_id: TransactionUuid,
}

/// Kinds of notification events (mirrors `notification.v1.EventKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    PaymentSucceeded,
    PaymentDeclined,
    ThreeDsRequired,
    PaymentExpired,
    RenewalSucceeded,
    RenewalFailed,
    AccessSuspended,
    SubscriptionCancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notify {
    pub kind: NotificationKind,
    pub account_id: AccountId,
    pub subscription_id: SubscriptionId,
    pub transaction_id: TransactionUuid,
    pub amount: Option<Money>,
    pub email: String,
    pub reason_code: Option<i32>,
    pub message: String,
    pub access_until: Option<DateTime<Utc>>,
}

/// Remember the final answer of a start request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SaveStartOutcome {
    pub account_id: AccountId,
    pub request_id: RequestId,
    pub outcome: PaymentOutcome,
}

/// The bank's answer to a 3-D Secure challenge, as the ACS posted it back.
#[derive(Clone, Serialize, Deserialize)]
pub struct ThreeDsAnswer {
    pub gateway_transaction_id: GatewayTransactionId,
    pub pa_res: String,
}

impl std::fmt::Debug for ThreeDsAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreeDsAnswer")
            .field("gateway_transaction_id", &self.gateway_transaction_id)
            .field("pa_res", &crate::mask::mask(&self.pa_res))
            .finish()
    }
}

/// Finish a 3-D Secure payment at the gateway (`post3ds`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Post3ds {
    pub invoice_id: InvoiceId,
    pub currency: crate::Currency,
    pub answer: ThreeDsAnswer,
}

/// A pending 3-D Secure challenge, recorded so the TermUrl can find the subscription by MD.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreeDsChallenge {
    pub gateway_transaction_id: GatewayTransactionId,
    pub subscription_id: SubscriptionId,
    pub account_id: AccountId,
    pub invoice_id: InvoiceId,
}

/// Failure type of `confirm_3ds` validation: the subscription is not waiting for this answer.
pub const NOT_AWAITING_3DS: &str = "FAILED_PRECONDITION";

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
    pub token: Option<String>,
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

/// A renewal charge by saved token.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenCharge {
    pub invoice_id: InvoiceId,
    pub account_id: AccountId,
    pub amount: Money,
    pub token: String,
    pub request_key: String,
    pub description: String,
    pub email: String,
}

impl std::fmt::Debug for TokenCharge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCharge")
            .field("invoice_id", &self.invoice_id)
            .field("amount", &self.amount)
            .field("token", &crate::mask::mask(&self.token))
            .field("request_key", &self.request_key)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelMode {
    /// Access is kept until the period end; nothing is charged afterwards.
    AtPeriodEnd,
    /// Access is revoked now.
    Now,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeAccess {
    pub account_id: AccountId,
    pub subscription_id: SubscriptionId,
    pub transaction_id: TransactionUuid,
    pub reason: String,
}

/// Prefix of update-validator rejections the API maps to `FAILED_PRECONDITION`.
pub const REJECTED_PREFIX: &str = "FAILED_PRECONDITION";

/// Mirror the workflow's view of a subscription into SQL (status and, after a tariff change
/// took effect, the tariff).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncSubscription {
    pub subscription_id: SubscriptionId,
    pub status: SubscriptionStatus,
    pub tariff: Option<TariffSnapshot>,
}
