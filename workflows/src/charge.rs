//! The one place that moves money: the charge by cryptogram (first payment), by saved token
//! (renewals and retries), `post3ds` (finishing a 3-D Secure payment), reconciling an unknown
//! outcome with `/payments/find`, and the classification of what the gateway said into a
//! [`ChargeFate`]. Each call carries the `X-Request-ID` derived from the invoice and attempt
//! (`InvoiceId::charge_request_key`), so a retry is a replay at the gateway.

use crate::patches::patched;
use crate::search::{PAYMENT_STATE, QUIET_UPSERTS_PATCH};
use crate::state::{set_status, Ctx};
use crate::step::{step, step_failure, StepOptions};
use billing_activities::BillingActivities;
use billing_domain::decline::describe;
use billing_domain::messages::{
    BillingConfig, ChargeResult, CryptogramCharge, FindPayment, FirstPaymentRequest,
    GatewayTransaction, PaymentState, Post3ds, SubscriptionInput, TokenCharge, CARD_DECLINED,
    GATEWAY_REJECTED,
};
use billing_domain::{GatewayTransactionId, InvoiceId, Money};
use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityExecutionError, ApplicationFailure, WorkflowResult};

/// What the workflow learned from the gateway about one invoice charge.
pub(crate) enum ChargeFate {
    Approved(GatewayTransaction),
    Declined(Option<GatewayTransaction>, i32, String),
    /// Nothing was charged and the gateway could not be reached in time.
    NotCharged(String),
    /// The bank asks for 3-D Secure.
    ThreeDs {
        gateway_transaction_id: GatewayTransactionId,
        acs_url: String,
        pa_req: String,
    },
    /// The 3-D Secure challenge was not answered in time.
    Expired,
    /// A Temporal cancellation request arrived before anything was charged.
    Cancelled,
}

/// Options of a money-moving gateway call (charge, post3ds): bounded attempts and retry window;
/// declines and rejections are final. The gateway deduplicates retries by `X-Request-ID`.
pub(crate) fn gateway_call_opts(c: &BillingConfig, summary: String) -> StepOptions {
    StepOptions {
        start_to_close: c.charge_attempt_timeout,
        schedule_to_close: Some(c.charge_retry_window),
        retry: RetryPolicy::builder()
            .initial_interval(c.retry_initial_interval)
            .maximum_interval(c.retry_max_interval)
            .non_retryable_error_types([CARD_DECLINED, GATEWAY_REJECTED])
            .build(),
        summary,
    }
}

/// Charges the first invoice by the cryptogram; on an unknown outcome asks the gateway before
/// giving up.
pub(crate) async fn by_cryptogram(
    ctx: &Ctx,
    input: &SubscriptionInput,
    invoice_id: InvoiceId,
    payment: FirstPaymentRequest,
) -> WorkflowResult<ChargeFate> {
    let charge_opts = gateway_call_opts(
        &input.config,
        format!("charge invoice {invoice_id} by cryptogram"),
    );
    let charge = CryptogramCharge {
        invoice_id,
        account_id: input.account_id,
        amount: input.tariff.price,
        request_key: invoice_id.charge_request_key(1),
        description: format!("{} subscription", input.tariff.name),
        payment,
    };
    match step(
        ctx,
        BillingActivities::charge_cryptogram,
        charge,
        charge_opts,
    )
    .await
    {
        Ok(ChargeResult::Approved { transaction }) => Ok(ChargeFate::Approved(transaction)),
        Ok(ChargeResult::ThreeDsRequired {
            gateway_transaction_id,
            acs_url,
            pa_req,
        }) => Ok(ChargeFate::ThreeDs {
            gateway_transaction_id,
            acs_url,
            pa_req,
        }),
        Err(err) => match classify(&err) {
            Some(fate) => Ok(fate),
            // Unknown outcome: the gateway may have charged. Ask before giving up.
            None => reconcile(ctx, input, invoice_id, err.to_string()).await,
        },
    }
}

/// Charges `invoice` by saved token, attempt `attempt`; unknown outcomes are reconciled.
pub(crate) async fn by_token(
    ctx: &Ctx,
    invoice_id: InvoiceId,
    amount: Money,
    attempt: u32,
) -> WorkflowResult<ChargeFate> {
    let (input, a) = ctx.state(|s| (s.input.clone(), s.active.clone()));
    let a = a.ok_or_else(|| ApplicationFailure::non_retryable("no active billing state"))?;
    let Some(token) = a.token.clone() else {
        return Ok(ChargeFate::Declined(
            None,
            0,
            "no saved card to charge".into(),
        ));
    };
    set_status(ctx, ctx.state(|s| s.status), PaymentState::Charging);
    if !patched(ctx, QUIET_UPSERTS_PATCH) {
        ctx.upsert_search_attributes([
            PAYMENT_STATE.value_set(PaymentState::Charging.as_str().to_string())
        ]);
    }
    ctx.set_current_details(format!("charging invoice {invoice_id}, attempt {attempt}"));
    let opts = gateway_call_opts(
        &input.config,
        format!("charge invoice {invoice_id} by token, attempt {attempt}"),
    );
    let req = TokenCharge {
        invoice_id,
        account_id: input.account_id,
        amount,
        token,
        request_key: invoice_id.charge_request_key(attempt),
        description: format!("{} renewal", a.tariff.name),
        email: a.email.clone(),
    };
    Ok(
        match step(ctx, BillingActivities::charge_token, req, opts).await {
            Ok(t) if t.is_completed() => ChargeFate::Approved(t),
            Ok(t) => {
                let code = t.reason_code;
                ChargeFate::Declined(Some(t), code, describe(code).to_string())
            }
            Err(err) => match classify(&err) {
                Some(f) => f,
                None => reconcile(ctx, &input, invoice_id, err.to_string()).await?,
            },
        },
    )
}

/// What `post3ds` told: a fate, a PaRes the gateway refused (nothing happened; the challenge stays
/// open), or an unknown outcome (reconcile before anything else).
pub(crate) enum Post3dsAnswer {
    Fate(ChargeFate),
    Refused(String),
    Unknown(String),
}

/// Finishes a 3-D Secure payment with the bank's answer.
pub(crate) async fn post3ds(ctx: &Ctx, post: Post3ds, opts: StepOptions) -> Post3dsAnswer {
    match step(ctx, BillingActivities::post3ds, post, opts).await {
        Ok(t) if t.is_completed() => Post3dsAnswer::Fate(ChargeFate::Approved(t)),
        Ok(t) => {
            let code = if t.reason_code == 0 {
                5207
            } else {
                t.reason_code
            };
            Post3dsAnswer::Fate(ChargeFate::Declined(
                Some(t),
                code,
                describe(code).to_string(),
            ))
        }
        Err(err) => match step_failure(&err)
            .filter(|f| f.type_name.as_deref() == Some(GATEWAY_REJECTED))
            .map(|f| f.message)
        {
            // The gateway refused this PaRes (not this transaction's, forged, malformed).
            Some(reason) => Post3dsAnswer::Refused(reason),
            None => match classify(&err) {
                Some(fate) => Post3dsAnswer::Fate(fate),
                None => Post3dsAnswer::Unknown(err.to_string()),
            },
        },
    }
}

/// After an unknown outcome: asks the gateway (`/payments/find` by InvoiceId) and adopts its
/// answer.
pub(crate) async fn reconcile(
    ctx: &Ctx,
    input: &SubscriptionInput,
    invoice_id: InvoiceId,
    last_error: String,
) -> WorkflowResult<ChargeFate> {
    ctx.state_mut(|s| {
        s.payment_state = PaymentState::Reconciling;
        s.published = None;
    });
    ctx.upsert_search_attributes([
        PAYMENT_STATE.value_set(PaymentState::Reconciling.as_str().to_string())
    ]);
    ctx.set_current_details(format!(
        "charge outcome unknown ({last_error}); asking the gateway about invoice {invoice_id}"
    ));
    let c = &input.config;
    // Retried without limit: we must learn the truth before voiding an invoice.
    let opts = StepOptions {
        start_to_close: c.charge_attempt_timeout,
        schedule_to_close: None,
        retry: RetryPolicy::builder()
            .initial_interval(c.retry_initial_interval)
            .maximum_interval(c.retry_max_interval)
            .non_retryable_error_types([GATEWAY_REJECTED])
            .build(),
        summary: format!("find payment of invoice {invoice_id}"),
    };
    let found = step(
        ctx,
        BillingActivities::find_payment,
        FindPayment {
            invoice_id,
            currency: input.tariff.price.currency,
        },
        opts,
    )
    .await?;
    ctx.state_mut(|s| s.payment_state = PaymentState::Charging);
    Ok(match found {
        Some(t) if t.is_completed() => ChargeFate::Approved(t),
        Some(t) if t.status == "Declined" => {
            let code = t.reason_code;
            ChargeFate::Declined(Some(t), code, describe(code).to_string())
        }
        Some(t) => ChargeFate::Declined(
            None,
            5207,
            format!(
                "gateway transaction {} is {}",
                t.gateway_transaction_id, t.status
            ),
        ),
        None => ChargeFate::NotCharged(format!("payment gateway unavailable: {last_error}")),
    })
}

/// A decline or a rejection is final; anything else leaves the outcome unknown (`None`).
pub(crate) fn classify(err: &ActivityExecutionError) -> Option<ChargeFate> {
    let f = step_failure(err)?;
    match f.type_name.as_deref() {
        Some(CARD_DECLINED) => {
            let code = f
                .transaction
                .as_ref()
                .map(|t| t.reason_code)
                .unwrap_or(5005);
            Some(ChargeFate::Declined(
                f.transaction,
                code,
                describe(code).to_string(),
            ))
        }
        Some(GATEWAY_REJECTED) => Some(ChargeFate::Declined(
            None,
            0,
            format!("the gateway rejected the payment: {}", f.message),
        )),
        _ => None,
    }
}
