//! `BillingActivities`: thin adapters from Temporal activities to the clients. Each one is
//! idempotent by a business key (invoice id, gateway transaction id, transaction UUID).

use crate::gateway::{GatewayClient, GatewayError};
use crate::peers::{PeerError, Peers};
use billing_domain::messages::{
    ChargeResult, CloseUnpaid, CryptogramCharge, FindPayment, FoundPayment, GatewayTransaction,
    GetPayment, GrantAccess, Notify, OpenInvoice, Post3ds, RecordTransaction, RevokeAccess,
    SaveStartOutcome, SyncSubscription, ThreeDsChallenge, TokenCharge, CARD_DECLINED,
    GATEWAY_REJECTED, GATEWAY_UNAVAILABLE,
};
use billing_domain::{Currency, InvoiceId, TransactionUuid};
use billing_store::{Store, StoreError};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::ApplicationFailure;
use tracing::{info, instrument, warn};

/// Failure type of a store error that retrying cannot fix (a conflicting repeat of a write, a
/// refused or corrupt row): the workflow parks the subscription for an operator.
pub const STORE_CONFLICT: &str = "StoreConflict";

pub struct BillingActivities {
    pub store: Store,
    pub gateway: GatewayClient,
    pub peers: Peers,
}

fn fail(type_name: &str, non_retryable: bool, msg: String) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(msg)
            .type_name(type_name.to_string())
            .non_retryable(non_retryable)
            .build(),
    )
}

fn store_err(e: StoreError) -> ActivityError {
    if e.is_transient() {
        fail("StoreUnavailable", false, e.to_string())
    } else {
        fail(STORE_CONFLICT, true, e.to_string())
    }
}

fn peer_err(e: PeerError) -> ActivityError {
    match e {
        PeerError::BadEndpoint(_) => fail("PeerMisconfigured", false, e.to_string()),
        PeerError::Call { .. } => fail("PeerUnavailable", false, e.to_string()),
    }
}

fn gateway_err(e: GatewayError) -> ActivityError {
    match e {
        GatewayError::Declined(t) => {
            let msg = format!("card declined: {} ({})", t.reason, t.reason_code);
            ActivityError::application(
                ApplicationFailure::builder(msg)
                    .type_name(CARD_DECLINED.to_string())
                    .non_retryable(true)
                    .details(*t)
                    .build(),
            )
        }
        GatewayError::Rejected(m) => fail(GATEWAY_REJECTED, true, m),
        GatewayError::Unavailable(m) => fail(GATEWAY_UNAVAILABLE, false, m),
        // Retryable like an unknown outcome for now; the message says "rate limited" (a later
        // change gives 429s their own failure type and back-off).
        GatewayError::RateLimited { .. } => fail(GATEWAY_UNAVAILABLE, false, e.to_string()),
        GatewayError::Unauthorized { .. } => fail(GATEWAY_UNAVAILABLE, false, e.to_string()),
    }
}

impl BillingActivities {
    /// The latest final transaction of `invoice` at the gateway, if any. A transaction still
    /// being settled (not final) is an unknown outcome: nothing may be charged meanwhile.
    async fn settled(
        &self,
        invoice: InvoiceId,
        currency: Currency,
    ) -> Result<Option<GatewayTransaction>, ActivityError> {
        match self
            .gateway
            .find_by_invoice(invoice, currency)
            .await
            .map_err(gateway_err)?
        {
            Some(t) if !t.is_final() => {
                info!(gateway_transaction_id = %t.gateway_transaction_id, status = %t.status, "an earlier charge of this invoice is not final yet");
                Err(fail(
                    GATEWAY_UNAVAILABLE,
                    false,
                    format!(
                        "gateway transaction {} of this invoice is {} (not final yet)",
                        t.gateway_transaction_id, t.status
                    ),
                ))
            }
            Some(t) => {
                info!(gateway_transaction_id = %t.gateway_transaction_id, status = %t.status, "found an earlier charge of this invoice");
                Ok(Some(t))
            }
            None => Ok(None),
        }
    }
}

#[activities]
impl BillingActivities {
    /// Registers the account, the subscription row and the period's invoice; returns the
    /// invoice status (`open` normally, `paid` if an earlier attempt already paid it).
    #[activity]
    #[instrument(skip_all, fields(invoice_id = %req.invoice_id, subscription_id = %req.subscription_id))]
    pub async fn open_invoice(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: OpenInvoice,
    ) -> Result<String, ActivityError> {
        let inv = self.store.open_invoice(&req).await.map_err(store_err)?;
        Ok(inv.status)
    }

    /// Charges a card cryptogram once per `request_key` (the gateway deduplicates by
    /// `X-Request-ID`). Declines fail non-retryably with the transaction as details.
    ///
    /// A re-run (this activity's retry, or `check_first`: the workflow sends it again after an
    /// unknown outcome) first asks the gateway about the invoice and adopts a final answer: the
    /// first attempt may have been charged, and after the gateway's one-hour `X-Request-ID`
    /// window the same cryptogram would be declined as reused although it was paid. A first
    /// payment's invoice has one attempt only, so a decline found is this cryptogram's.
    #[activity]
    #[instrument(skip_all, fields(invoice_id = %req.invoice_id, amount_minor = req.amount.minor, cryptogram = %req.payment.cryptogram))]
    pub async fn charge_cryptogram(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: CryptogramCharge,
    ) -> Result<ChargeResult, ActivityError> {
        if req.check_first || ctx.info().attempt > 1 {
            match self.settled(req.invoice_id, req.amount.currency).await? {
                Some(t) if t.is_completed() => {
                    return Ok(ChargeResult::Approved { transaction: t })
                }
                Some(t) if t.status == "Declined" => {
                    return Err(gateway_err(GatewayError::Declined(Box::new(t))))
                }
                _ => {}
            }
        }
        let started = std::time::Instant::now();
        let result = self.gateway.charge_cryptogram(&req).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(ChargeResult::Approved { transaction }) => {
                info!(latency_ms, gateway_transaction_id = %transaction.gateway_transaction_id, "charge approved")
            }
            Ok(ChargeResult::ThreeDsRequired {
                gateway_transaction_id,
                ..
            }) => info!(latency_ms, %gateway_transaction_id, "3-D Secure required"),
            Err(e) => warn!(latency_ms, attempt = ctx.info().attempt, error = %e, "charge failed"),
        }
        result.map_err(gateway_err)
    }

    /// Looks a gateway transaction up by id (an operator's repair adopts it only if it is this
    /// invoice's); `None` if the terminal has none with that id.
    #[activity]
    #[instrument(skip_all, fields(gateway_transaction_id = %req.gateway_transaction_id))]
    pub async fn get_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: GetPayment,
    ) -> Result<Option<FoundPayment>, ActivityError> {
        self.gateway
            .get_payment(req.gateway_transaction_id, req.currency)
            .await
            .map_err(gateway_err)
    }

    /// Asks the gateway for the latest transaction of an invoice (unknown-outcome recovery).
    #[activity]
    #[instrument(skip_all, fields(invoice_id = %req.invoice_id))]
    pub async fn find_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: FindPayment,
    ) -> Result<Option<GatewayTransaction>, ActivityError> {
        self.gateway
            .find_by_invoice(req.invoice_id, req.currency)
            .await
            .map_err(gateway_err)
    }

    /// Records a gateway transaction (and, if paid, the card, the paid invoice and the active
    /// subscription) in one SQL transaction. Idempotent by gateway transaction id.
    #[activity]
    #[instrument(skip_all, fields(invoice_id = %req.invoice_id, gateway_transaction_id = %req.transaction.gateway_transaction_id))]
    pub async fn record_transaction(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: RecordTransaction,
    ) -> Result<TransactionUuid, ActivityError> {
        self.store.record_transaction(&req).await.map_err(store_err)
    }

    /// Voids (or marks uncollectible) an unpaid invoice and sets the subscription status.
    #[activity]
    #[instrument(skip_all, fields(invoice_id = %req.invoice_id))]
    pub async fn close_unpaid(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: CloseUnpaid,
    ) -> Result<(), ActivityError> {
        self.store.close_unpaid(&req).await.map_err(store_err)
    }

    /// Tells the access service until when the user may watch. Idempotent by transaction id.
    #[activity]
    #[instrument(skip_all, fields(subscription_id = %req.subscription_id, transaction_id = %req.transaction_id))]
    pub async fn grant_access(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: GrantAccess,
    ) -> Result<(), ActivityError> {
        self.peers.grant(&req).await.map_err(peer_err)
    }

    /// Sends one notification event. Idempotent by (kind, transaction id) on the receiver.
    #[activity]
    #[instrument(skip_all, fields(subscription_id = %req.subscription_id, kind = ?req.kind))]
    pub async fn notify(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: Notify,
    ) -> Result<(), ActivityError> {
        self.peers.notify(&req).await.map_err(peer_err)
    }

    /// Stores the final answer of a start request so a retry after the workflow closed gets it.
    #[activity]
    #[instrument(skip_all, fields(account_id = %req.account_id))]
    pub async fn save_start_outcome(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: SaveStartOutcome,
    ) -> Result<(), ActivityError> {
        let subscription = req.outcome.subscription_id();
        let json = serde_json::to_value(&req.outcome)
            .map_err(|e| fail(STORE_CONFLICT, true, e.to_string()))?;
        self.store
            .save_start_outcome(req.account_id, req.request_id.as_str(), subscription, &json)
            .await
            .map_err(store_err)
    }

    /// Records a pending 3-D Secure challenge so the TermUrl can route the bank's answer.
    #[activity]
    #[instrument(skip_all, fields(gateway_transaction_id = %req.gateway_transaction_id))]
    pub async fn record_3ds_challenge(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: ThreeDsChallenge,
    ) -> Result<(), ActivityError> {
        self.store
            .record_3ds_challenge(&req)
            .await
            .map_err(store_err)
    }

    /// Finishes a 3-D Secure payment (`post3ds`). Declines fail non-retryably like charges.
    #[activity]
    #[instrument(skip_all, fields(invoice_id = %req.invoice_id, gateway_transaction_id = %req.answer.gateway_transaction_id))]
    pub async fn post3ds(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: Post3ds,
    ) -> Result<GatewayTransaction, ActivityError> {
        self.gateway.post3ds(&req).await.map_err(gateway_err)
    }

    /// Charges a saved card (renewal); `request_key` makes retries replay instead of re-charging.
    ///
    /// A re-run (this activity's retry, a dunning retry, or `check_first` after an unknown
    /// outcome) first asks the gateway about the invoice and adopts a completed payment: a slow
    /// bank may have completed an earlier attempt, and after the gateway's one-hour
    /// `X-Request-ID` window the same key would charge again. A decline found is an earlier
    /// attempt's: this attempt is still made.
    #[activity]
    #[instrument(skip_all, fields(invoice_id = %req.invoice_id, amount_minor = req.amount.minor, request_key = %req.request_key))]
    pub async fn charge_token(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: TokenCharge,
    ) -> Result<GatewayTransaction, ActivityError> {
        if req.check_first || ctx.info().attempt > 1 {
            if let Some(t) = self
                .settled(req.invoice_id, req.amount.currency)
                .await?
                .filter(|t| t.is_completed())
            {
                return Ok(t);
            }
        }
        let result = self.gateway.charge_token(&req).await;
        if let Err(e) = &result {
            warn!(attempt = ctx.info().attempt, error = %e, "token charge failed");
        }
        result.map_err(gateway_err)
    }

    /// Revokes access now. Idempotent by transaction id.
    #[activity]
    #[instrument(skip_all, fields(subscription_id = %req.subscription_id, transaction_id = %req.transaction_id))]
    pub async fn revoke_access(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: RevokeAccess,
    ) -> Result<(), ActivityError> {
        self.peers
            .revoke(billing_proto::access::v1::RevokeAccessRequest {
                user_id: req.account_id.to_string(),
                subscription_id: req.subscription_id.to_string(),
                transaction_id: req.transaction_id.to_string(),
                reason: req.reason.clone(),
            })
            .await
            .map_err(peer_err)
    }

    /// Mirrors status (and an applied tariff change) into SQL.
    #[activity]
    #[instrument(skip_all, fields(subscription_id = %req.subscription_id, status = ?req.status))]
    pub async fn sync_subscription(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: SyncSubscription,
    ) -> Result<(), ActivityError> {
        self.store.sync_subscription(&req).await.map_err(store_err)
    }
}
