//! The one place that moves money: the charge by cryptogram (first payment), by saved token
//! (renewals and retries), `post3ds` (finishing a 3-D Secure payment), reconciling an unknown
//! outcome, and the classification of what the gateway said into a [`ChargeFate`]. Each call
//! carries the `X-Request-ID` derived from the invoice and attempt
//! (`InvoiceId::charge_request_key`), so a retry is a replay at the gateway.
//!
//! **The invariant: an invoice is charged at most once, whatever fails and for however long.**
//! Since the money-safety patch ([`settle`]):
//! - every money-moving call is an ordinary activity (`step::money_step`): its result is in the
//!   history before the next step, so a workflow task that keeps failing never re-runs it;
//! - an unknown outcome (timeout, 5xx, 429, a cut connection) stays unknown: the call is sent
//!   again, with the same `X-Request-ID`, after a durable back-off, and the activity first asks
//!   the gateway about the invoice (`check_first`) and adopts a final answer, so neither a slow
//!   bank nor the end of the gateway's one-hour idempotency window charges twice. "Not found"
//!   or a payment still being settled never reads as "not charged";
//! - a gateway outage never becomes the customer's decline: the attempt waits for the gateway;
//! - what cannot be learned within `reconcile_window`, or a charge the gateway refuses when it
//!   is sent again, parks the subscription for an operator (`attention`).
//!
//! Histories recorded before the patch keep the old path (`legacy_*`): one reconcile with
//! `/payments/find`, whose "not found" meant "not charged".

use crate::attention;
use crate::cancel;
use crate::patches::{self, patched};
use crate::search::{publish, PAYMENT_STATE};
use crate::sleep::sleep;
use crate::state::{now, set_status, Ctx, Resolution};
use crate::step::{money_step, step, step_failure, StepOptions};
use billing_activities::BillingActivities;
use billing_domain::decline::describe;
use billing_domain::messages::{
    BillingConfig, ChargeResult, CryptogramCharge, FindPayment, FirstPaymentRequest,
    GatewayTransaction, PaymentState, Post3ds, SubscriptionInput, TokenCharge, CARD_DECLINED,
    GATEWAY_REJECTED,
};
use billing_domain::{GatewayTransactionId, InvoiceId, Money};
use chrono::Duration as ChronoDuration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityExecutionError, ApplicationFailure, TimerResult, WorkflowResult};

/// What the workflow learned from the gateway about one invoice charge.
pub(crate) enum ChargeFate {
    Approved(GatewayTransaction),
    Declined(Option<GatewayTransaction>, i32, String),
    /// Nothing was charged and the gateway could not be reached in time (histories recorded
    /// before the money-safety patch only: since then an unknown outcome is never "not charged").
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

/// One money-moving call.
enum MoneyCall {
    Cryptogram(CryptogramCharge),
    Token(TokenCharge),
    Post3ds(Post3ds),
}

/// What one call told.
pub(crate) enum Sent {
    Fate(ChargeFate),
    /// The gateway refused the request before processing it (malformed, a PaRes that is not
    /// this transaction's): nothing happened.
    Refused(String),
    /// The outcome is unknown: the gateway may have charged.
    Unknown(String),
}

/// Sends `money` once (the activity retries within `charge_retry_window`).
async fn send(ctx: &Ctx, money: &MoneyCall, opts: StepOptions) -> Sent {
    let result = match money {
        MoneyCall::Cryptogram(c) => {
            match money_step(ctx, BillingActivities::charge_cryptogram, c.clone(), opts).await {
                Ok(ChargeResult::Approved { transaction }) => {
                    return Sent::Fate(ChargeFate::Approved(transaction))
                }
                Ok(ChargeResult::ThreeDsRequired {
                    gateway_transaction_id,
                    acs_url,
                    pa_req,
                }) => {
                    return Sent::Fate(ChargeFate::ThreeDs {
                        gateway_transaction_id,
                        acs_url,
                        pa_req,
                    })
                }
                Err(e) => Err(e),
            }
        }
        MoneyCall::Token(t) => {
            money_step(ctx, BillingActivities::charge_token, t.clone(), opts).await
        }
        MoneyCall::Post3ds(p) => money_step(ctx, BillingActivities::post3ds, p.clone(), opts).await,
    };
    match result {
        Ok(t) if t.is_completed() => Sent::Fate(ChargeFate::Approved(t)),
        Ok(t) => {
            // A 3-D Secure payment declined at post3ds without a code: authentication failed.
            let code = match (money, t.reason_code) {
                (MoneyCall::Post3ds(_), 0) => 5207,
                (_, c) => c,
            };
            Sent::Fate(ChargeFate::Declined(
                Some(t),
                code,
                describe(code).to_string(),
            ))
        }
        Err(err) => match step_failure(&err) {
            Some(f) if f.type_name.as_deref() == Some(GATEWAY_REJECTED) => Sent::Refused(f.message),
            _ => match classify(&err) {
                Some(fate) => Sent::Fate(fate),
                None => Sent::Unknown(err.to_string()),
            },
        },
    }
}

impl MoneyCall {
    /// The call to send again after an unknown outcome: it asks the gateway first.
    fn checking_first(&mut self) {
        match self {
            MoneyCall::Cryptogram(c) => c.check_first = true,
            MoneyCall::Token(t) => t.check_first = true,
            MoneyCall::Post3ds(_) => {}
        }
    }
}

/// Sends `money` until the gateway gives a definitive answer (see the module docs); parks the
/// subscription when it cannot be learned. Never returns [`Sent::Unknown`]; returns
/// [`Sent::Refused`] only for a first send.
async fn settle(
    ctx: &Ctx,
    input: &SubscriptionInput,
    invoice_id: InvoiceId,
    amount: Money,
    mut money: MoneyCall,
    summary: String,
) -> WorkflowResult<Sent> {
    let c = &input.config;
    let mut since = now(ctx)?;
    let mut interval = c.reconcile_interval;
    let mut resent = false;
    loop {
        let sent = send(ctx, &money, gateway_call_opts(c, summary.clone())).await;
        let unresolved = match sent {
            Sent::Unknown(err) => {
                let waited = now(ctx)? - since;
                if waited < ChronoDuration::from_std(c.reconcile_window).unwrap_or(ChronoDuration::MAX) {
                    ctx.state_mut(|s| s.payment_state = PaymentState::Reconciling);
                    publish(ctx);
                    ctx.set_current_details(format!(
                        "charge outcome unknown ({err}); asking the gateway about invoice {invoice_id} again in {} s",
                        interval.as_secs()
                    ));
                    let wait = sleep(
                        ctx,
                        interval,
                        format!("reconcile invoice {invoice_id}"),
                    );
                    if wait.await == TimerResult::Cancelled {
                        return cancel::bug(ctx, "the reconcile timer was cancelled".into()).await;
                    }
                    interval = (interval * 2).min(c.reconcile_max_interval.max(c.reconcile_interval));
                    money.checking_first();
                    resent = true;
                    continue;
                }
                format!(
                    "the outcome of the charge of invoice {invoice_id} is still unknown after {} min ({err})",
                    waited.num_minutes()
                )
            }
            Sent::Refused(reason) if resent => format!(
                "the gateway refused the charge of invoice {invoice_id} when it was sent again after an unknown outcome: {reason}"
            ),
            other => {
                ctx.state_mut(|s| s.payment_state = PaymentState::Charging);
                return Ok(other);
            }
        };
        match attention::park(ctx, unresolved, Some((invoice_id, amount))).await? {
            Resolution::Retry => {
                since = now(ctx)?;
                interval = c.reconcile_interval;
                money.checking_first();
                resent = true;
            }
            Resolution::Adopt(t) => return Ok(Sent::Fate(ChargeFate::Approved(t))),
            Resolution::Void => {
                return Ok(Sent::Fate(ChargeFate::Declined(
                    None,
                    0,
                    "closed by an operator: nothing was charged".into(),
                )))
            }
        }
    }
}

/// Charges the first invoice by the cryptogram.
pub(crate) async fn by_cryptogram(
    ctx: &Ctx,
    input: &SubscriptionInput,
    invoice_id: InvoiceId,
    payment: FirstPaymentRequest,
) -> WorkflowResult<ChargeFate> {
    let summary = format!("charge invoice {invoice_id} by cryptogram");
    let charge = CryptogramCharge {
        check_first: false,
        invoice_id,
        account_id: input.account_id,
        amount: input.tariff.price,
        request_key: invoice_id.charge_request_key(1),
        description: format!("{} subscription", input.tariff.name),
        payment,
    };
    if !patched(ctx, patches::MONEY_SAFETY) {
        return legacy(
            ctx,
            input,
            invoice_id,
            MoneyCall::Cryptogram(charge),
            summary,
        )
        .await;
    }
    let amount = charge.amount;
    charge_settled(
        ctx,
        input,
        invoice_id,
        amount,
        MoneyCall::Cryptogram(charge),
        summary,
    )
    .await
}

/// Sends a charge and waits until its outcome is known (`settle`); a charge the gateway
/// refused outright (nothing moved) is a decline.
async fn charge_settled(
    ctx: &Ctx,
    input: &SubscriptionInput,
    invoice_id: InvoiceId,
    amount: Money,
    call: MoneyCall,
    summary: String,
) -> WorkflowResult<ChargeFate> {
    Ok(
        match settle(ctx, input, invoice_id, amount, call, summary).await? {
            Sent::Fate(f) => f,
            Sent::Refused(reason) => ChargeFate::Declined(
                None,
                0,
                format!("the gateway rejected the payment: {reason}"),
            ),
            Sent::Unknown(_) => unreachable_unknown(),
        },
    )
}

/// Charges `invoice` by saved token, attempt `attempt` (a dunning retry asks the gateway first:
/// a slow bank may have completed an earlier attempt).
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
    if !patched(ctx, patches::QUIET_UPSERTS) {
        ctx.upsert_search_attributes([
            PAYMENT_STATE.value_set(PaymentState::Charging.as_str().to_string())
        ]);
    }
    ctx.set_current_details(format!("charging invoice {invoice_id}, attempt {attempt}"));
    let summary = format!("charge invoice {invoice_id} by token, attempt {attempt}");
    let safe = patched(ctx, patches::MONEY_SAFETY);
    let req = TokenCharge {
        check_first: safe && attempt > 1,
        invoice_id,
        account_id: input.account_id,
        amount,
        token,
        request_key: invoice_id.charge_request_key(attempt),
        description: format!("{} renewal", a.tariff.name),
        email: a.email.clone(),
    };
    if !safe {
        return legacy(ctx, &input, invoice_id, MoneyCall::Token(req), summary).await;
    }
    charge_settled(
        ctx,
        &input,
        invoice_id,
        amount,
        MoneyCall::Token(req),
        summary,
    )
    .await
}

/// What `post3ds` told: a fate, a PaRes the gateway refused (nothing happened; the challenge stays
/// open), or (before the money-safety patch only) an unknown outcome to reconcile.
pub(crate) enum Post3dsAnswer {
    Fate(ChargeFate),
    Refused(String),
    Unknown(String),
}

/// Finishes a 3-D Secure payment with the bank's answer.
pub(crate) async fn post3ds(
    ctx: &Ctx,
    input: &SubscriptionInput,
    post: Post3ds,
    opts: StepOptions,
) -> WorkflowResult<Post3dsAnswer> {
    let invoice_id = post.invoice_id;
    if !patched(ctx, patches::MONEY_SAFETY) {
        return Ok(match send(ctx, &MoneyCall::Post3ds(post), opts).await {
            Sent::Fate(f) => Post3dsAnswer::Fate(f),
            Sent::Refused(r) => Post3dsAnswer::Refused(r),
            Sent::Unknown(e) => Post3dsAnswer::Unknown(e),
        });
    }
    Ok(
        match settle(
            ctx,
            input,
            invoice_id,
            input.tariff.price,
            MoneyCall::Post3ds(post),
            opts.summary,
        )
        .await?
        {
            Sent::Fate(f) => Post3dsAnswer::Fate(f),
            Sent::Refused(r) => Post3dsAnswer::Refused(r),
            Sent::Unknown(_) => Post3dsAnswer::Fate(unreachable_unknown()),
        },
    )
}

/// `settle` resolves every unknown outcome (or parks); reaching this is a bug in it.
fn unreachable_unknown() -> ChargeFate {
    ChargeFate::Declined(
        None,
        0,
        "internal: an unknown outcome escaped settle".into(),
    )
}

/// The path of histories recorded before the money-safety patch: one call (a local step), then
/// one `/payments/find` on an unknown outcome.
async fn legacy(
    ctx: &Ctx,
    input: &SubscriptionInput,
    invoice_id: InvoiceId,
    money: MoneyCall,
    summary: String,
) -> WorkflowResult<ChargeFate> {
    match send(ctx, &money, gateway_call_opts(&input.config, summary)).await {
        Sent::Fate(f) => Ok(f),
        Sent::Refused(reason) => Ok(ChargeFate::Declined(
            None,
            0,
            format!("the gateway rejected the payment: {reason}"),
        )),
        Sent::Unknown(err) => legacy_reconcile(ctx, input, invoice_id, err).await,
    }
}

/// Before the money-safety patch: after an unknown outcome, asks the gateway once
/// (`/payments/find` by InvoiceId) and adopts its answer; "not found" meant "not charged".
pub(crate) async fn legacy_reconcile(
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
