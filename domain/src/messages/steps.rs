//! Requests and results of the workflow's steps (activities in `billing-activities`): each
//! request carries the business key that makes the step idempotent. Declines travel as typed
//! activity failures ([`CARD_DECLINED`] …) with a [`GatewayTransaction`] as details.
//!
//! Changing a field here changes recorded histories: add fields with `#[serde(default)]`.

use super::api::{PaymentOutcome, SubscriptionStatus};
use super::workflow::{FirstPaymentRequest, TariffSnapshot, ThreeDsAnswer};
use crate::secret::CardToken;
use crate::{
    AccountId, GatewayTransactionId, InvoiceId, Money, RequestId, SubscriptionId, TransactionUuid,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    /// Ask the gateway about the invoice before charging, and adopt a final answer: set when the
    /// charge is sent again after an unknown outcome (the activity also does it on its own
    /// retries).
    #[serde(default)]
    pub check_first: bool,
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
    pub token: Option<CardToken>,
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
            .field("token", &self.token)
            .field("card_mask", &self.card_mask)
            .finish_non_exhaustive()
    }
}

impl GatewayTransaction {
    pub fn is_completed(&self) -> bool {
        self.status == "Completed"
    }

    /// Whether the gateway has decided this transaction (paid, declined or voided); anything
    /// else (awaiting 3-D Secure, authorised, a status unknown to billing) may still change.
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "Completed" | "Declined" | "Cancelled")
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

/// A gateway transaction looked up by id, with what it was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundPayment {
    pub transaction: GatewayTransaction,
    pub invoice_id: Option<String>,
    pub account_id: Option<String>,
}

/// Look a gateway transaction up by id (an operator's repair adopts it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetPayment {
    pub gateway_transaction_id: GatewayTransactionId,
    pub currency: crate::Currency,
}

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

/// A renewal charge by saved token.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenCharge {
    /// Ask the gateway about the invoice before charging and adopt a completed payment: set for
    /// every dunning retry and when the charge is sent again after an unknown outcome.
    #[serde(default)]
    pub check_first: bool,
    pub invoice_id: InvoiceId,
    pub account_id: AccountId,
    pub amount: Money,
    pub token: CardToken,
    pub request_key: String,
    pub description: String,
    pub email: String,
}

impl std::fmt::Debug for TokenCharge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCharge")
            .field("invoice_id", &self.invoice_id)
            .field("amount", &self.amount)
            .field("token", &self.token)
            .field("request_key", &self.request_key)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeAccess {
    pub account_id: AccountId,
    pub subscription_id: SubscriptionId,
    pub transaction_id: TransactionUuid,
    pub reason: String,
}

/// Mirror the workflow's view of a subscription into SQL (status and, after a tariff change
/// took effect, the tariff).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncSubscription {
    pub subscription_id: SubscriptionId,
    pub status: SubscriptionStatus,
    pub tariff: Option<TariffSnapshot>,
}
