//! What the edge (gRPC / REST) and the workflow say to each other: the start answer, the
//! subscription's view (the `state` query), its status names (also search attributes), cancel
//! modes, and the prefixes by which update rejections are mapped to status codes.
//!
//! Changing a field here changes recorded histories: add fields with `#[serde(default)]`.

use crate::{
    AccountId, GatewayTransactionId, InvoiceId, Money, SubscriptionId, TariffCode, TransactionUuid,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    /// Parked: something the workflow cannot resolve by itself (a charge outcome unknown for
    /// too long, a ledger conflict, a step that keeps failing permanently after money may have
    /// moved). It keeps running; access follows the last paid period; an operator repairs it.
    NeedsAttention,
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
            Self::NeedsAttention => "needs_attention",
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
    /// Why the subscription needs an operator (status `needs_attention`).
    #[serde(default)]
    pub attention: Option<String>,
    /// What the last change did, when it is not what was asked (e.g. a cancel that arrived while
    /// a renewal was being paid: the paid period is kept).
    #[serde(default)]
    pub note: Option<String>,
}

/// Failure type of `confirm_3ds` validation: the subscription is not waiting for this answer.
pub const NOT_AWAITING_3DS: &str = "FAILED_PRECONDITION";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelMode {
    /// Access is kept until the period end; nothing is charged afterwards.
    AtPeriodEnd,
    /// Access is revoked now.
    Now,
}

/// Prefix of the first-payment validator's rejection when the account already has a live
/// subscription; the API maps it to `ALREADY_EXISTS`.
pub const ALREADY_EXISTS_PREFIX: &str = "ALREADY_EXISTS";

/// Prefix of update-validator rejections the API maps to `FAILED_PRECONDITION`.
pub const REJECTED_PREFIX: &str = "FAILED_PRECONDITION";
